use super::*;

fn dev() -> (DeviceSigner, DhSecret) {
    (DeviceSigner::generate(), DhSecret::generate())
}

fn info(s: &DeviceSigner, d: &DhSecret) -> DeviceInfo {
    DeviceInfo {
        id: s.device_id(),
        dh: d.public(),
        kind: DeviceKind::Device,
    }
}

#[test]
fn chain_add_revoke_and_key_history() {
    let (s1, d1) = dev();
    let (s2, d2) = dev();
    let (g, k0) = genesis(&s1, &d1, 1);
    let mut st = AccountState::from_genesis(&g).unwrap();
    let add = add_device(&st, &s1, &k0, info(&s2, &d2), 2).unwrap();
    st.apply(&add).unwrap();
    let (rev, k1) = revoke_device(&st, &s2, &k0, s1.device_id(), 3).unwrap();
    st.apply(&rev).unwrap();
    assert!(!st.is_active(&s1.device_id()));
    assert_eq!(st.key.generation, 1);
    let log = vec![g, add, rev];
    let again = AccountState::verify_log(&log).unwrap();
    assert_eq!(again, st);
    let keys = account_keys(&log, &st.id, &s2.device_id(), &d2).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expose(), k0.expose());
    assert_eq!(keys[1].expose(), k1.expose());
    // The revoked device reaches generation 0 only.
    let old = account_keys(&log, &st.id, &s1.device_id(), &d1).unwrap();
    assert_eq!(old.len(), 1);
}

#[test]
fn revoked_device_cannot_sign_and_chain_must_link() {
    let (s1, d1) = dev();
    let (s2, d2) = dev();
    let (g, k0) = genesis(&s1, &d1, 1);
    let mut st = AccountState::from_genesis(&g).unwrap();
    let add = add_device(&st, &s1, &k0, info(&s2, &d2), 2).unwrap();
    // Replaying genesis's position or skipping fails.
    let mut wrong = st.clone();
    wrong.len = 5;
    assert!(matches!(wrong.apply(&add), Err(AccountError::Broken(_))));
    st.apply(&add).unwrap();
    let (rev, _) = revoke_device(&st, &s2, &k0, s1.device_id(), 3).unwrap();
    st.apply(&rev).unwrap();
    let (s3, d3) = dev();
    let bad = add_device(&st, &s1, &k0, info(&s3, &d3), 4).unwrap();
    assert_eq!(st.apply(&bad), Err(AccountError::NotActive(3)));
}

#[test]
fn a_stranger_cannot_extend_the_log() {
    let (s1, d1) = dev();
    let (g, k0) = genesis(&s1, &d1, 1);
    let mut st = AccountState::from_genesis(&g).unwrap();
    let (mallory, md) = dev();
    let forged = add_device(&st, &mallory, &k0, info(&mallory, &md), 2).unwrap();
    assert_eq!(st.apply(&forged), Err(AccountError::NotActive(1)));
    let mut tampered = add_device(&st, &s1, &k0, info(&mallory, &md), 2).unwrap();
    tampered.body[3] ^= 1;
    assert!(st.apply(&tampered).is_err());
}

/// A revocation whose wrap hands a device a key other than the one it
/// names (an active device, a stolen one, making it up): the device
/// recovering its keys refuses it rather than take a key no other device
/// holds.
#[test]
fn a_wrapped_key_that_is_not_the_one_named_is_refused() {
    let (s1, d1) = dev();
    let (s2, d2) = dev();
    let (s3, d3) = dev();
    let (g, k0) = genesis(&s1, &d1, 1);
    let mut st = AccountState::from_genesis(&g).unwrap();
    let mut log = vec![g];
    for (s, d) in [(&s2, &d2), (&s3, &d3)] {
        let add = add_device(&st, &s1, &k0, info(s, d), 2).unwrap();
        st.apply(&add).unwrap();
        log.push(add);
    }
    let named = DhSecret::generate();
    let honest = revoke_device_to(&st, &s1, &k0, s3.device_id(), &named, 3).unwrap();
    let mut entry: AccountEntry = honest.open(SIG_LABEL).unwrap();
    let AccountOp::RevokeDevice {
        wraps, previous, ..
    } = &mut entry.op
    else {
        unreachable!("a revocation")
    };
    // Another key wrapped to the second device, the previous one sealed
    // to it, so that its chain of keys holds together.
    let other = DhSecret::generate();
    for (d, w) in wraps.iter_mut() {
        if *d == s2.device_id() {
            *w = crypto::wrap(&d2.public(), &wrap_info(&st.id, d, 1), other.expose()).unwrap();
        }
    }
    *previous = crypto::wrap(&other.public(), &prev_info(&st.id, 1), k0.expose()).unwrap();
    let forged = Signed::sign(&s1, SIG_LABEL, &entry);
    st.apply(&forged).unwrap();
    log.push(forged);
    assert!(account_keys(&log, &st.id, &s2.device_id(), &d2).is_err());
}
