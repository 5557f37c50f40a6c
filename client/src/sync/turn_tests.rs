use casebook_shared::account::{AccountState, DeviceKind, genesis};
use casebook_shared::crypto::{DeviceSigner, DhSecret};

use super::*;

/// An account's first device and its log, from which turns are made.
struct Account {
    signer: DeviceSigner,
    key: DhSecret,
    log: Vec<Signed>,
}

fn device() -> DeviceInfo {
    signing_device().1
}

/// A device and the signer it signs with (one that signs a turn's entry).
fn signing_device() -> (DeviceSigner, DeviceInfo) {
    let signer = DeviceSigner::generate();
    let info = DeviceInfo {
        id: signer.device_id(),
        dh: DhSecret::generate().public(),
        kind: DeviceKind::Device,
    };
    (signer, info)
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

/// Whether `judged` is a refusal of the turn for `why`.
fn refused_for(judged: std::result::Result<Turn, RollbackError>, why: &str) -> bool {
    matches!(judged, Err(RollbackError::AccountLogTurned { why: w, .. }) if w == why)
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

/// `log` with `device` revoked on top of it to `key`, by `signer`.
fn revoke_to(
    a: &Account,
    log: &[Signed],
    device: DeviceId,
    key: &DhSecret,
    current: &DhSecret,
) -> Vec<Signed> {
    let state = AccountState::verify_log(log).unwrap();
    let e = account::revoke_device_to(&state, &a.signer, current, device, key, 3).unwrap();
    let mut log = log.to_vec();
    log.push(e);
    log
}

#[test]
fn a_revocation_held_here_is_made_again_and_what_the_device_paired_there_cut() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let base = a.add(&a.log, phone.clone());
    let new_key = DhSecret::generate();
    let held = revoke_to(&a, &base, phone.id, &new_key, &a.key);
    let key = AccountKeyPub {
        generation: 1,
        public: new_key.public(),
    };
    let watch = device();
    let theirs = a.add(&base, watch.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.common, 2);
    assert_eq!(
        turn.lost,
        vec![Lost::Revocation {
            device: phone.id,
            key
        }]
    );
    assert!(turn.same_keys);
    assert_eq!(turn.revoked_again, vec![phone.id]);
    // Made again, to the same key or another, nothing is lost: what another
    // device of the account, or a colleague, holding the log held here
    // judges.
    for key in [&new_key, &DhSecret::generate()] {
        let remade = revoke_to(&a, &theirs, phone.id, key, &a.key);
        let turn = judge(&a, &held, &remade).unwrap();
        assert!(turn.lost.is_empty(), "{turn:?}");
    }
    // The relay's turn revoking another device: made again, to a new key.
    let another = revoke_to(&a, &theirs, watch.id, &DhSecret::generate(), &a.key);
    let turn = judge(&a, &held, &another).unwrap();
    assert!(!turn.same_keys);
    assert_eq!(turn.lost.len(), 1);
    // The phone, a device again on the restored relay, pairs a tablet
    // there: cut before the phone's revocation is made again, to new keys.
    let state = AccountState::verify_log(&base).unwrap();
    let tablet = device();
    let by_phone = account::add_device(&state, &phone_signer, &a.key, tablet.clone(), 2).unwrap();
    let mut paired = base.clone();
    paired.push(by_phone);
    let turn = judge(&a, &held, &paired).unwrap();
    assert!(!turn.same_keys);
    assert_eq!(
        turn.lost,
        vec![
            Lost::Cut(tablet.id),
            Lost::Revocation {
                device: phone.id,
                key
            }
        ]
    );
    assert_eq!(turn.revoked_again, vec![phone.id, tablet.id]);
    // The phone revoking a device there: it stays revoked (a revocation is
    // not undone), and the phone's is made again, to a new key.
    let state = AccountState::verify_log(&theirs).unwrap();
    let (by_phone, _) = account::revoke_device(&state, &phone_signer, &a.key, watch.id, 3).unwrap();
    let mut revoking = theirs.clone();
    revoking.push(by_phone);
    let turn = judge(&a, &held, &revoking).unwrap();
    assert_eq!(turn.stay_revoked, vec![watch.id]);
    assert!(!turn.same_keys);
    assert!(matches!(&turn.lost[..], [Lost::Revocation { device, .. }] if *device == phone.id));
    // Revoking the device that revoked it here: refused (that one could
    // not make the revocation again).
    let (by_phone, _) =
        account::revoke_device(&state, &phone_signer, &a.key, a.signer.device_id(), 3).unwrap();
    let mut revoking = theirs.clone();
    revoking.push(by_phone);
    assert!(refused_for(judge(&a, &held, &revoking), REVOKED_SIGNS));
}

#[test]
fn a_revocation_in_the_relays_turn_is_taken_and_what_the_device_paired_here_left_out() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let base = a.add(&a.log, phone.clone());
    let theirs = a.revoke(&base, phone.id);
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.lost, vec![Lost::Device(tablet.clone())]);
    assert_eq!(turn.distrusted, vec![phone.id]);
    // The tablet the phone paired, and a watch the tablet paired, are left
    // out: with the phone revoked they may be a thief's.
    let state = AccountState::verify_log(&base).unwrap();
    let (tablet_signer, tablet) = signing_device();
    let by_phone = account::add_device(&state, &phone_signer, &a.key, tablet.clone(), 2).unwrap();
    let mut held = base.clone();
    held.push(by_phone);
    let with_tablet = AccountState::verify_log(&held).unwrap();
    let watch = device();
    let by_tablet = account::add_device(&with_tablet, &tablet_signer, &a.key, watch.clone(), 2);
    held.push(by_tablet.unwrap());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.dropped, vec![tablet.id, watch.id]);
    assert_eq!(turn.distrusted, vec![phone.id, tablet.id, watch.id]);
    assert!(
        turn.lost.is_empty() && turn.added_here.is_empty(),
        "{turn:?}"
    );
    // Anything else the phone signed here is refused: a revocation.
    let (by_phone, _) =
        account::revoke_device(&state, &phone_signer, &a.key, a.signer.device_id(), 3).unwrap();
    let mut held = base.clone();
    held.push(by_phone);
    assert!(refused_for(judge(&a, &held, &theirs), REVOKED_SIGNS));
}

#[test]
fn a_device_added_and_revoked_here_is_not_signed_in_again() {
    let a = Account::new();
    let phone = device();
    let base = a.add(&a.log, phone.clone());
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let held = revoke_to(&a, &held, tablet.id, &DhSecret::generate(), &a.key);
    // The desk revoked the phone on the restored relay: signed in again,
    // the tablet would be wrapped a key it never had.
    let theirs = revoke_to(&a, &base, phone.id, &DhSecret::generate(), &a.key);
    let turn = judge(&a, &held, &theirs).unwrap();
    assert!(turn.lost.is_empty(), "{turn:?}");
    assert!(turn.added_here.is_empty());
    // Where the relay's turn made no key (the desk paired a watch), it is
    // signed in and revoked again: the key it is wrapped is one it held.
    let theirs = a.add(&base, device());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert!(
        matches!(&turn.lost[..], [Lost::Device(d), Lost::Revocation { device, .. }] if d.id == tablet.id && *device == tablet.id),
        "{turn:?}"
    );
}

#[test]
fn a_device_revoked_here_that_the_relays_turn_signed_in_again_is_revoked_again() {
    let a = Account::new();
    let base = a.add(&a.log, device());
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let key = DhSecret::generate();
    let held = revoke_to(&a, &held, tablet.id, &key, &a.key);
    // The desk, holding the pairing but not the revocation, signed the
    // tablet in again on the restored relay.
    let theirs = a.add(&a.add(&base, device()), tablet.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(
        turn.lost,
        vec![Lost::Revocation {
            device: tablet.id,
            key: AccountKeyPub {
                generation: 1,
                public: key.public()
            }
        }]
    );
}

#[test]
fn a_device_revoked_here_that_the_revoked_phone_paired_again_there_is_cut_once() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let base = a.add(&a.log, phone.clone());
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let held = revoke_to(&a, &held, tablet.id, &DhSecret::generate(), &a.key);
    let key = DhSecret::generate();
    let held = revoke_to(&a, &held, phone.id, &key, &a.key);
    let state = AccountState::verify_log(&base).unwrap();
    let by_phone = account::add_device(&state, &phone_signer, &a.key, tablet.clone(), 2).unwrap();
    let mut theirs = base.clone();
    theirs.push(by_phone);
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(
        turn.lost,
        vec![
            Lost::Cut(tablet.id),
            Lost::Revocation {
                device: phone.id,
                key: AccountKeyPub {
                    generation: 2,
                    public: key.public()
                }
            }
        ]
    );
}

/// What the revoked phone may not revoke on the restored relay, where the
/// laptop revoked it: itself (the newest key would be its own, and no
/// revocation made again after it), the paper device of the recovery
/// words, or the laptop that revoked it. Each is refused, named.
#[test]
fn the_revoked_device_revoking_itself_the_paper_or_its_revoker_there_is_refused() {
    let a = Account::new();
    let (phone_signer, phone) = signing_device();
    let paper = DeviceInfo {
        kind: DeviceKind::Paper,
        ..device()
    };
    let base = a.add(&a.add(&a.log, phone.clone()), paper.clone());
    let held = a.revoke(&base, phone.id);
    let state = AccountState::verify_log(&base).unwrap();
    for target in [phone.id, paper.id, a.signer.device_id()] {
        let (by_phone, _) =
            account::revoke_device(&state, &phone_signer, &a.key, target, 3).unwrap();
        let mut theirs = base.clone();
        theirs.push(by_phone);
        assert!(
            refused_for(judge(&a, &held, &theirs), REVOKED_SIGNS),
            "{target:?}"
        );
    }
    // Another device it may: that one stays revoked, and the key it made
    // there is one the log taken must end above.
    let desk = device();
    let with_desk = a.add(&base, desk.clone());
    let held = a.revoke(&with_desk, phone.id);
    let state = AccountState::verify_log(&with_desk).unwrap();
    let (by_phone, _) = account::revoke_device(&state, &phone_signer, &a.key, desk.id, 3).unwrap();
    let mut theirs = with_desk.clone();
    theirs.push(by_phone);
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.stay_revoked, vec![desk.id]);
    // The desk is the therapist's: a share it granted stands.
    assert!(turn.distrusted.is_empty(), "{turn:?}");
    assert_eq!(turn.tainted_key, Some(1));
    assert!(turn.keys_parted);
    // Nor a device that signed anything here (the laptop pairing a
    // tablet, where the desk revoked the phone): the tablet would be left
    // out at the phone's word.
    let (desk_signer, desk) = signing_device();
    let with_desk = a.add(&base, desk.clone());
    let paired = a.add(&with_desk, device());
    let state = AccountState::verify_log(&paired).unwrap();
    let (by_desk, _) = account::revoke_device(&state, &desk_signer, &a.key, phone.id, 3).unwrap();
    let mut held = paired.clone();
    held.push(by_desk);
    let state = AccountState::verify_log(&with_desk).unwrap();
    let (by_phone, _) =
        account::revoke_device(&state, &phone_signer, &a.key, a.signer.device_id(), 3).unwrap();
    let mut theirs = with_desk.clone();
    theirs.push(by_phone);
    assert!(refused_for(judge(&a, &held, &theirs), REVOKED_SIGNS));
    // Nor a device it paired there (cut with it).
    let (watch_signer, watch) = signing_device();
    let by_phone = account::add_device(&state, &phone_signer, &a.key, watch.clone(), 2).unwrap();
    let mut theirs = with_desk.clone();
    theirs.push(by_phone);
    let with_watch = AccountState::verify_log(&theirs).unwrap();
    let (by_watch, _) =
        account::revoke_device(&with_watch, &watch_signer, &a.key, watch.id, 3).unwrap();
    theirs.push(by_watch);
    let held = a.revoke(&with_desk, phone.id);
    assert!(refused_for(judge(&a, &held, &theirs), REVOKED_SIGNS));
}
