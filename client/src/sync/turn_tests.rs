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
    assert_eq!(turn.lost, vec![tablet.clone()]);
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

#[test]
fn a_turn_held_here_that_revokes_a_device_is_refused() {
    let a = Account::new();
    let phone = device();
    let base = a.add(&a.log, phone.clone());
    let revoked = a.revoke(&base, phone.id);
    let added = a.add(&base, device());
    assert!(matches!(
        judge(&a, &revoked, &added),
        Err(RollbackError::AccountLogTurned {
            after: 2,
            why: REVOKES,
            ..
        })
    ));
}

#[test]
fn a_revocation_in_the_relays_turn_is_taken_unless_the_device_signed_here() {
    let a = Account::new();
    let phone_signer = DeviceSigner::generate();
    let phone = DeviceInfo {
        id: phone_signer.device_id(),
        dh: DhSecret::generate().public(),
        kind: DeviceKind::Device,
    };
    let base = a.add(&a.log, phone.clone());
    let theirs = a.revoke(&base, phone.id);
    let tablet = device();
    let held = a.add(&base, tablet.clone());
    let turn = judge(&a, &held, &theirs).unwrap();
    assert_eq!(turn.lost, vec![tablet.clone()]);
    // The tablet the phone paired would come back with the phone revoked.
    let state = AccountState::verify_log(&base).unwrap();
    let by_phone = account::add_device(&state, &phone_signer, &a.key, tablet, 2).unwrap();
    let mut held = base.clone();
    held.push(by_phone);
    assert!(matches!(
        judge(&a, &held, &theirs),
        Err(RollbackError::AccountLogTurned {
            why: REVOKED_SIGNS,
            ..
        })
    ));
}
