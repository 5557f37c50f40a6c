//! Tests of the access log: rotation and history, disposal.
use super::*;
use crate::account;
use crate::crypto::DeviceSigner;

#[test]
fn genesis_rotate_and_history() {
    let s = DeviceSigner::generate();
    let d = DhSecret::generate();
    let (g, ak) = account::genesis(&s, &d, 0);
    let acct = AccountState::from_genesis(&g).unwrap();
    let doc = DocId::random();
    let k0 = SecretKey::random();
    let e0 = Signed::sign(
        &s,
        SIG_LABEL,
        &DocEntry {
            doc,
            seq: 0,
            prev: None,
            at: 0,
            account: acct.id,
            account_len: acct.len,
            op: DocOp::Genesis {
                key: key_envelope(&doc, 0, &k0, &acct).unwrap(),
            },
        },
    );
    let lookup = |a: &AccountId| (*a == acct.id).then_some(&acct);
    let mut st = DocState::from_genesis(&e0, &lookup).unwrap();
    let k1 = SecretKey::random();
    let e1 = Signed::sign(
        &s,
        SIG_LABEL,
        &DocEntry {
            doc,
            seq: 1,
            prev: Some(st.head),
            at: 0,
            account: acct.id,
            account_len: acct.len,
            op: DocOp::Rotate {
                epoch: 1,
                keys: vec![key_envelope(&doc, 1, &k1, &acct).unwrap()],
                previous: seal_previous(&doc, 1, &k1, &k0),
            },
        },
    );
    st.apply(&e1, &lookup).unwrap();
    assert_eq!(st.epoch, 1);
    let keys = doc_keys(
        &[e0.clone(), e1.clone()],
        &acct.id,
        std::slice::from_ref(&ak),
    )
    .unwrap();
    assert_eq!(keys[&0].expose(), k0.expose());
    assert_eq!(keys[&1].expose(), k1.expose());
    // The genesis sealed to another key of generation 0 (one of a history
    // of the account's log left behind): its envelope no longer opens, the
    // rotation's does, and its previous key still reaches epoch 0.
    let mut left = acct.clone();
    left.key.public = DhSecret::generate().public();
    let mut entry: DocEntry = e0.open(SIG_LABEL).unwrap();
    entry.op = DocOp::Genesis {
        key: key_envelope(&doc, 0, &k0, &left).unwrap(),
    };
    let e0 = Signed::sign(&s, SIG_LABEL, &entry);
    let mut entry: DocEntry = e1.open(SIG_LABEL).unwrap();
    entry.prev = Some(e0.hash(HASH_LABEL));
    let e1 = Signed::sign(&s, SIG_LABEL, &entry);
    let keys = doc_keys(&[e0.clone(), e1], &acct.id, std::slice::from_ref(&ak)).unwrap();
    assert_eq!(keys[&0].expose(), k0.expose());
    assert_eq!(keys[&1].expose(), k1.expose());
    // A stranger's device cannot sign for the owner.
    let m = DeviceSigner::generate();
    let forged = Signed {
        signer: m.device_id(),
        sig: m.sign(SIG_LABEL, &e0.body),
        body: e0.body.clone(),
    };
    assert!(matches!(
        DocState::from_genesis(&forged, &lookup),
        Err(AccessError::NotOwner(0))
    ));
}

#[test]
fn a_disposal_ends_the_log_and_verifies_alone() {
    let s = DeviceSigner::generate();
    let d = DhSecret::generate();
    let (g, _) = account::genesis(&s, &d, 0);
    let acct = AccountState::from_genesis(&g).unwrap();
    let doc = DocId::random();
    let k0 = SecretKey::random();
    let entry = |seq: u64, prev: Option<Hash>, op: DocOp| {
        Signed::sign(
            &s,
            SIG_LABEL,
            &DocEntry {
                doc,
                seq,
                prev,
                at: 0,
                account: acct.id,
                account_len: acct.len,
                op,
            },
        )
    };
    let e0 = entry(
        0,
        None,
        DocOp::Genesis {
            key: key_envelope(&doc, 0, &k0, &acct).unwrap(),
        },
    );
    let lookup = |a: &AccountId| (*a == acct.id).then_some(&acct);
    let mut st = DocState::from_genesis(&e0, &lookup).unwrap();
    let gone = entry(1, Some(st.head), DocOp::Dispose);
    st.apply(&gone, &lookup).unwrap();
    assert!(st.disposed);
    let after = entry(2, Some(st.head), DocOp::RemoveMember { member: acct.id });
    assert!(matches!(
        st.apply(&after, &lookup),
        Err(AccessError::Invalid(2, _))
    ));
    // Alone, once the log before it is gone: for this document only,
    // from its owner only, and only a disposal.
    assert_eq!(DocState::verify_disposal(&gone, &doc, &acct).unwrap(), 1);
    assert!(DocState::verify_disposal(&gone, &DocId::random(), &acct).is_err());
    assert!(DocState::verify_disposal(&e0, &doc, &acct).is_err());
    let m = DeviceSigner::generate();
    let forged = Signed {
        signer: m.device_id(),
        sig: m.sign(SIG_LABEL, &gone.body),
        body: gone.body.clone(),
    };
    assert!(DocState::verify_disposal(&forged, &doc, &acct).is_err());
    let (g2, _) = account::genesis(&m, &DhSecret::generate(), 0);
    let other = AccountState::from_genesis(&g2).unwrap();
    assert!(matches!(
        DocState::verify_disposal(&gone, &doc, &other),
        Err(AccessError::NotOwner(1))
    ));
}

/// A device paired in a history of the account log a restored relay lost,
/// and paired again later in the one taken: what it signed then claims a
/// length at which it is not yet a device, and verifies only where a vouch
/// in the log names it, for it.
#[test]
fn an_entry_signed_in_a_lost_history_verifies_where_a_vouch_names_it() {
    let info = |s: &DeviceSigner| account::DeviceInfo {
        id: s.device_id(),
        dh: DhSecret::generate().public(),
        kind: account::DeviceKind::Device,
    };
    let (laptop, tablet, watch) = (
        DeviceSigner::generate(),
        DeviceSigner::generate(),
        DeviceSigner::generate(),
    );
    let (g, ak) = account::genesis(&laptop, &DhSecret::generate(), 0);
    let base = AccountState::from_genesis(&g).unwrap();
    // Held: the tablet at entry 1; it opens a case at length 2.
    let mut held = base.clone();
    held.apply(&account::add_device(&held, &laptop, &ak, info(&tablet), 1).unwrap())
        .unwrap();
    let doc = DocId::random();
    let opened = |signer: &DeviceSigner, acct: &AccountState| {
        Signed::sign(
            signer,
            SIG_LABEL,
            &DocEntry {
                doc,
                seq: 0,
                prev: None,
                at: 0,
                account: acct.id,
                account_len: 2,
                op: DocOp::Genesis {
                    key: key_envelope(&doc, 0, &SecretKey::random(), acct).unwrap(),
                },
            },
        )
    };
    let e0 = opened(&tablet, &held);
    let held_lookup = |a: &AccountId| (*a == held.id).then_some(&held);
    DocState::from_genesis(&e0, &held_lookup).unwrap();
    // Taken: a watch at entry 1, the tablet again at entry 2.
    let mut taken = base.clone();
    for d in [&watch, &tablet] {
        let add = account::add_device(&taken, &laptop, &ak, info(d), 1).unwrap();
        taken.apply(&add).unwrap();
    }
    let verifies = |acct: &AccountState, e: &Signed| {
        DocState::from_genesis(e, &|a: &AccountId| (*a == acct.id).then_some(acct)).is_ok()
    };
    assert!(!verifies(&taken, &e0), "not yet a device at length 2");
    let hash = e0.hash(HASH_LABEL);
    // A vouch naming it for another device does not do.
    let mut wrong = taken.clone();
    wrong
        .apply(&account::vouch(
            &wrong,
            &laptop,
            watch.device_id(),
            vec![hash],
            2,
        ))
        .unwrap();
    assert!(!verifies(&wrong, &e0));
    // Nor one signed by a device not in the log.
    let stranger = DeviceSigner::generate();
    let forged = account::vouch(&taken, &stranger, tablet.device_id(), vec![hash], 2);
    assert!(taken.clone().apply(&forged).is_err());
    // One naming it for the tablet does; not another entry the tablet
    // signed there, and each entry is named once.
    let mut vouched = taken.clone();
    let vouch = account::vouch(&vouched, &laptop, tablet.device_id(), vec![hash], 2);
    vouched.apply(&vouch).unwrap();
    assert!(verifies(&vouched, &e0));
    assert!(!verifies(&vouched, &opened(&tablet, &vouched)));
    let again = account::vouch(&vouched, &laptop, tablet.device_id(), vec![hash], 2);
    assert!(vouched.clone().apply(&again).is_err());
    let none = account::vouch(&vouched, &laptop, tablet.device_id(), vec![], 2);
    assert!(vouched.clone().apply(&none).is_err());
    // A tablet (a thief holding it) vouching for an entry of its own that
    // claims a length past its revocation gains nothing: a vouch counts
    // only below where the log lists the device.
    let ahead = |acct: &AccountState| {
        let mut entry: DocEntry = opened(&tablet, acct).open(SIG_LABEL).unwrap();
        entry.account_len = acct.len + 2;
        Signed::sign(&tablet, SIG_LABEL, &entry)
    };
    let dated_ahead = ahead(&vouched);
    let mut stolen = vouched.clone();
    let own = account::vouch(
        &stolen,
        &tablet,
        tablet.device_id(),
        vec![dated_ahead.hash(HASH_LABEL)],
        3,
    );
    stolen.apply(&own).unwrap();
    let (revoke, _) = account::revoke_device(&stolen, &laptop, &ak, tablet.device_id(), 4).unwrap();
    stolen.apply(&revoke).unwrap();
    assert_eq!(stolen.len, 6);
    assert!(
        !verifies(&stolen, &dated_ahead),
        "signed after its revocation"
    );
    assert!(
        verifies(&stolen, &e0),
        "what it was vouched for still stands"
    );
    // A device revoked is not vouched for.
    let (revoke, _) = account::revoke_device(&taken, &laptop, &ak, watch.device_id(), 2).unwrap();
    let mut revoked = taken.clone();
    revoked.apply(&revoke).unwrap();
    let late = account::vouch(&revoked, &laptop, watch.device_id(), vec![hash], 3);
    assert!(revoked.apply(&late).is_err());
}
