use casebook_shared::account::{DeviceKind, genesis};
use casebook_shared::crypto::{DeviceSigner, DhSecret};

use super::*;

/// An account's first device and its log, from which turns are made.
struct Account {
    signer: DeviceSigner,
    key: DhSecret,
    log: Vec<Signed>,
}

fn device() -> DeviceInfo {
    DeviceInfo {
        id: DeviceSigner::generate().device_id(),
        dh: DhSecret::generate().public(),
        kind: DeviceKind::Device,
    }
}

impl Account {
    fn new() -> Account {
        let signer = DeviceSigner::generate();
        let (first, key) = genesis(&signer, &DhSecret::generate(), 1);
        Account {
            signer,
            key,
            log: vec![first],
        }
    }

    /// `log` with `info` added on top of it.
    fn add(&self, log: &[Signed], info: DeviceInfo) -> Vec<Signed> {
        let state = AccountState::verify_log(log).unwrap();
        let e = account::add_device(&state, &self.signer, &self.key, info, 2).unwrap();
        let mut log = log.to_vec();
        log.push(e);
        log
    }

    /// `log` with `device` revoked on top of it.
    fn revoke(&self, log: &[Signed], device: DeviceId) -> Vec<Signed> {
        let state = AccountState::verify_log(log).unwrap();
        let (e, _) = account::revoke_device(&state, &self.signer, &self.key, device, 3).unwrap();
        let mut log = log.to_vec();
        log.push(e);
        log
    }

    fn id(&self) -> AccountId {
        AccountState::verify_log(&self.log).unwrap().id
    }
}

fn judge(
    a: &Account,
    held: &[Signed],
    theirs: &[Signed],
) -> std::result::Result<Turn, RollbackError> {
    judge_turn(
        &a.id(),
        held,
        theirs,
        RollbackError::AccountLogDiffers(a.id()),
    )
}

#[test]
fn two_turns_that_only_add_devices_part_where_they_differ() {
    let a = Account::new();
    let phone = device();
    let base = a.add(&a.log, phone.clone());
    let tablet = device();
    let watch = device();
    let held = a.add(&base, tablet.clone());
    let theirs = a.add(&base, watch.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.common, 2);
    assert_eq!(turn.added_here, vec![tablet.id]);
    assert_eq!(turn.lost, vec![Lost::Device(tablet.clone())]);
    // Once the tablet is signed in again on the relay's, nothing is lost.
    let healed = a.add(&theirs, tablet.clone());
    let turn = judge(&a, &held, &healed).unwrap();
    assert_eq!(turn.added_here, vec![tablet.id]);
    assert!(turn.lost.is_empty());
}

#[test]
fn a_rollback_or_another_genesis_is_not_a_turn() {
    let a = Account::new();
    let longer = a.add(&a.log, device());
    let not_a_turn = |r| matches!(r, Err(RollbackError::AccountLogDiffers(_)));
    // Shorter: the relay's is the held one's beginning.
    assert!(not_a_turn(judge(&a, &longer, &a.log)));
    // Longer: the held one is the relay's beginning (no refusal to judge).
    assert!(not_a_turn(judge(&a, &a.log, &longer)));
    // Another genesis.
    let b = Account::new();
    assert!(not_a_turn(judge(&a, &longer, &b.add(&b.log, device()))));
}

/// A device with its own signer, to sign entries of its account's log.
fn signing_device() -> (DeviceSigner, DeviceInfo) {
    let signer = DeviceSigner::generate();
    let info = DeviceInfo {
        id: signer.device_id(),
        dh: DhSecret::generate().public(),
        kind: DeviceKind::Device,
    };
    (signer, info)
}

/// `log` with an entry `signer` signed on top of it, adding `info`.
fn add_by(a: &Account, signer: &DeviceSigner, log: &[Signed], info: DeviceInfo) -> Vec<Signed> {
    let state = AccountState::verify_log(log).unwrap();
    let e = account::add_device(&state, signer, &a.key, info, 2).unwrap();
    let mut log = log.to_vec();
    log.push(e);
    log
}

/// `log` with `device` revoked on top of it to `key`.
fn revoke_to(a: &Account, log: &[Signed], device: DeviceId, key: &DhSecret) -> Vec<Signed> {
    let state = AccountState::verify_log(log).unwrap();
    let e = account::revoke_device_to(&state, &a.signer, &a.key, device, key, None, 3).unwrap();
    let mut log = log.to_vec();
    log.push(e);
    log
}

fn refused(r: std::result::Result<Turn, RollbackError>, why: &str) -> bool {
    matches!(r, Err(RollbackError::AccountLogTurned { why: w, .. }) if w == why)
}

#[test]
fn a_revocation_the_relay_lacks_is_made_again_to_the_same_key() {
    let a = Account::new();
    let phone = device();
    let base = a.add(&a.log, phone.clone());
    let k1 = DhSecret::generate();
    let held = revoke_to(&a, &base, phone.id, &k1);
    let theirs = a.add(&base, device());
    let turn = judge(&a, &held, &theirs).unwrap();
    let key = AccountState::verify_log(&held).unwrap().key;
    assert_eq!(
        turn.lost,
        vec![Lost::Revocation {
            device: phone.id,
            key,
            since: 2
        }]
    );
    assert!(turn.cut.is_empty() && turn.added_here.is_empty());
    // Made again to the same key, nothing is lost; it and more after it
    // are what a device that joined it wrote.
    let joined = revoke_to(&a, &theirs, phone.id, &k1);
    let turn = judge(&a, &held, &joined).unwrap();
    assert!(turn.lost.is_empty(), "{turn:?}");
    let more = a.revoke(
        &joined,
        AccountState::verify_log(&theirs)
            .unwrap()
            .devices
            .keys()
            .copied()
            .find(|d| *d != phone.id && *d != a.signer.device_id())
            .unwrap(),
    );
    assert!(judge(&a, &held, &more).unwrap().lost.is_empty());
}

#[test]
fn turns_that_revoke_to_keys_of_their_own_leave_the_keys_made_here_behind() {
    let a = Account::new();
    let phone = device();
    let watch = device();
    let base = a.add(&a.add(&a.log, phone.clone()), watch.clone());
    let held = a.revoke(&base, phone.id);
    // The phone revoked again, to another key: nothing is made again.
    let turn = judge(&a, &held, &a.revoke(&base, phone.id)).unwrap();
    assert!(turn.orphans && turn.lost.is_empty(), "{turn:?}");
    // The watch revoked instead: the phone is revoked again, to a new key.
    let turn = judge(&a, &held, &a.revoke(&base, watch.id)).unwrap();
    assert!(turn.orphans, "{turn:?}");
    assert!(
        matches!(&turn.lost[..], [Lost::Revocation { device, .. }] if *device == phone.id),
        "{turn:?}"
    );
    // Made again to the same key, nothing is left behind.
    let k1 = DhSecret::generate();
    let held = revoke_to(&a, &base, phone.id, &k1);
    let joined = a.revoke(&revoke_to(&a, &base, phone.id, &k1), watch.id);
    assert!(!judge(&a, &held, &joined).unwrap().orphans);
}

#[test]
fn a_device_added_and_revoked_here_is_not_waited_for() {
    let a = Account::new();
    let base = a.add(&a.log, device());
    let paper = device();
    let k1 = DhSecret::generate();
    let held = revoke_to(&a, &a.add(&base, paper.clone()), paper.id, &k1);
    let watch = device();
    let theirs = a.add(&base, watch.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert!(turn.added_here.is_empty(), "{turn:?}");
    // Signed in again and revoked again to the key it made, in order.
    assert!(
        matches!(&turn.lost[..], [Lost::Device(d), Lost::Revocation { .. }] if d.id == paper.id)
    );
    let joined = revoke_to(&a, &a.add(&theirs, paper.clone()), paper.id, &k1);
    let turn = judge(&a, &held, &joined).unwrap();
    assert!(turn.lost.is_empty() && !turn.orphans, "{turn:?}");
    // With the keys made here left behind, it is listed only as revoked.
    let other = a.revoke(&theirs, watch.id);
    let turn = judge(&a, &held, &other).unwrap();
    assert!(turn.orphans, "{turn:?}");
    assert!(
        matches!(&turn.lost[..], [Lost::Revoked(d)] if d.id == paper.id),
        "{turn:?}"
    );
    // A device that holds the log only up to the paper device's addition
    // takes a log that lists it revoked, and signs nothing: it does not
    // wait for a device that will never be added again, nor add it.
    let prefix = a.add(&base, paper.clone());
    let listed = revoke_to(&a, &a.add(&other, paper.clone()), paper.id, &k1);
    let turn = judge(&a, &prefix, &listed).unwrap();
    assert!(turn.lost.is_empty(), "{turn:?}");
    assert_eq!(turn.added_here, vec![paper.id]);
}

#[test]
fn a_revocation_on_the_relay_alone_is_taken_unless_the_device_signed_here() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let base = a.add(&a.log, phone.clone());
    let theirs = a.revoke(&base, phone.id);
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.lost, vec![Lost::Device(tablet.clone())]);
    // The tablet the phone paired would come back with the phone revoked.
    let held = add_by(&a, &phone_signer, &base, tablet);
    assert!(refused(judge(&a, &held, &theirs), REVOKED_SIGNS));
}

#[test]
fn what_a_device_revoked_here_added_on_the_relay_is_cut() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let base = a.add(&a.log, phone.clone());
    let k1 = DhSecret::generate();
    let held = revoke_to(&a, &base, phone.id, &k1);
    let (watch_signer, watch) = signing_device();
    let theirs = add_by(&a, &phone_signer, &base, watch.clone());
    let ring = device();
    let theirs = add_by(&a, &watch_signer, &theirs, ring.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.cut, vec![watch.id, ring.id]);
    // The watch is active when the phone's revocation is made again, so
    // that is made to a new key, not the one the watch would then hold.
    assert!(turn.orphans, "{turn:?}");
    assert_eq!(turn.lost.len(), 1);
    // Revoked there too after the phone, as the device joining it does,
    // nothing is cut.
    let joined = revoke_to(&a, &theirs, phone.id, &k1);
    let cleaned = a.revoke(&a.revoke(&joined, watch.id), ring.id);
    assert!(judge(&a, &held, &cleaned).unwrap().cut.is_empty());
    // Anything else a device it added signs there is refused: the watch
    // revoking the desk after the phone's revocation was made again.
    let desk = device();
    let joined = revoke_to(&a, &a.add(&theirs, desk.clone()), phone.id, &k1);
    let state = AccountState::verify_log(&joined).unwrap();
    let (e, _) = account::revoke_device(&state, &watch_signer, &k1, desk.id, 3).unwrap();
    let mut theirs = joined;
    theirs.push(e);
    assert!(refused(judge(&a, &held, &theirs), REVOKED_SIGNS));
}
