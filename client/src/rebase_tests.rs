//! Which of the relay's entries stand in for this device's own unsent ones
//! in [`Home::rebase_access`].

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, DocState, HASH_LABEL, SIG_LABEL};
use casebook_shared::account::{self, AccountState, DeviceInfo, DeviceKind};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use crate::home::Home;
use crate::rebase::stands_in;
use crate::sync::Undo;

/// Dr. Rivera's home, with a case whose genesis is not sent yet, her
/// account log after she paired a phone and a desk computer and revoked
/// the phone, and both devices' signers.
fn rivera() -> (
    tempfile::TempDir,
    Home,
    DocId,
    AccountState,
    DeviceSigner,
    DeviceSigner,
) {
    let dir = tempfile::tempdir().unwrap();
    let (mut home, _) = Home::init(
        dir.path(),
        b"passphrase",
        "Dr. Rivera",
        "127.0.0.1:1",
        [0; 32],
    )
    .unwrap();
    let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
    let mut state = home.account_state().unwrap();
    let key = DhSecret::from_bytes(*home.account_keys[0].expose());
    let (phone, desk) = (DeviceSigner::generate(), DeviceSigner::generate());
    for device in [&phone, &desk] {
        let info = DeviceInfo {
            id: device.device_id(),
            dh: DhSecret::generate().public(),
            kind: DeviceKind::Device,
        };
        let added = account::add_device(&state, &home.id.signer, &key, info, 2).unwrap();
        state.apply(&added).unwrap();
    }
    let (revoked, _) =
        account::revoke_device(&state, &home.id.signer, &key, phone.device_id(), 3).unwrap();
    state.apply(&revoked).unwrap();
    (dir, home, case, state, phone, desk)
}

/// `held`'s genesis signed again by `by` at account log length `len`, and
/// an entry after it that adds a stranger to the case.
fn signed_again_with_a_stranger(held: &Signed, by: &DeviceSigner, len: u64) -> Vec<Signed> {
    let mut genesis: DocEntry = held.open(SIG_LABEL).unwrap();
    genesis.account_len = len;
    let genesis = Signed::sign(by, SIG_LABEL, &genesis);
    let (stranger, _) = account::genesis(&DeviceSigner::generate(), &DhSecret::generate(), 1);
    let stranger = AccountState::from_genesis(&stranger).unwrap();
    let entry: DocEntry = held.open(SIG_LABEL).unwrap();
    let key = SecretKey::random();
    let add = DocEntry {
        seq: 1,
        prev: Some(genesis.hash(HASH_LABEL)),
        account_len: len,
        op: DocOp::AddMember {
            member: stranger.id,
            role: access::Role::Read,
            expires: None,
            details: access::seal_details(&entry.doc, 0, &key, b"consultation"),
            key: access::key_envelope(&entry.doc, 0, &key, &stranger).unwrap(),
        },
        ..entry
    };
    let add = Signed::sign(by, SIG_LABEL, &add);
    vec![genesis, add]
}

/// A revoked device could sign this device's genesis again (as another
/// device of the owner's would after a turn, see `sync::resign`) at a
/// length of the account log from before its revocation, and go on from
/// there dated back: adding a stranger, to whom the case's next key would
/// be sealed. Its twin does not stand in: the case is refused, and
/// nothing here changes.
#[test]
fn a_twin_a_revoked_device_signed_does_not_stand_in() {
    let (_dir, mut home, case, state, phone, _) = rivera();
    let held = home.access().access_log(&case).unwrap();
    let before = members(&home, &case);
    let accounts = BTreeMap::from([(state.id, state.clone())]);
    let forged = signed_again_with_a_stranger(&held[0], &phone, before_revoked(&state, &phone));
    let taken = home.rebase_access(&case, 0, &forged, &accounts, &Undo::default());
    assert!(matches!(taken, Ok(Some(_))), "{taken:?}");
    assert_eq!(members(&home, &case), before);
    assert_eq!(home.access().access_log(&case).unwrap(), held);
}

/// The same, signed before the phone's revocation and built on past it
/// by a device active then (as the desk moves each case on as it revokes
/// a device), which no revoked device can sign: it stands.
#[test]
fn a_twin_a_device_revoked_since_signed_before_stands_once_built_on_past_it() {
    let (_dir, mut home, case, state, phone, desk) = rivera();
    let held = home.access().access_log(&case).unwrap();
    let before = members(&home, &case);
    let accounts = BTreeMap::from([(state.id, state.clone())]);
    let mut theirs = signed_again_with_a_stranger(&held[0], &phone, before_revoked(&state, &phone));
    let added: DocEntry = theirs[1].open(SIG_LABEL).unwrap();
    let DocOp::AddMember { member, .. } = added.op else {
        panic!("an addition")
    };
    let removed = DocEntry {
        seq: 2,
        prev: Some(theirs[1].hash(HASH_LABEL)),
        account_len: state.len,
        op: DocOp::RemoveMember { member },
        ..added
    };
    theirs.push(Signed::sign(&desk, SIG_LABEL, &removed));
    let taken = home.rebase_access(&case, 0, &theirs, &accounts, &Undo::default());
    assert!(matches!(taken, Ok(None)), "{taken:?}");
    assert_eq!(home.access().access_log(&case).unwrap(), theirs);
    assert_eq!(members(&home, &case), before);
}

/// What a device active past the phone's revocation signed counts only on
/// the chain that goes on from the phone's twin, and only past the
/// revocation: not an entry of another case (or spliced in from another
/// chain), nor one the desk signed at the revocation's own length.
#[test]
fn a_twin_a_device_revoked_since_signed_needs_its_own_chain_built_on_past_it() {
    let (_dir, home, case, state, phone, desk) = rivera();
    let held = home.access().access_log(&case).unwrap();
    let lookup = |a: &AccountId| (*a == state.id).then_some(&state);
    let theirs = signed_again_with_a_stranger(&held[0], &phone, before_revoked(&state, &phone));
    // The desk's entry at `seq` of `doc`, at `len`, on top of `prev`.
    let after = |len: u64, doc: DocId, (seq, prev): (u64, &Signed)| {
        let mut e: DocEntry = theirs[1].open(SIG_LABEL).unwrap();
        (e.seq, e.doc, e.prev, e.account_len) = (seq, doc, Some(prev.hash(HASH_LABEL)), len);
        e.op = DocOp::Dispose;
        Signed::sign(&desk, SIG_LABEL, &e)
    };
    let twin = (&held[0], &theirs[0]);
    let r = state.devices[&phone.device_id()].revoked_seq.unwrap();
    let on_chain = [theirs[1].clone(), after(state.len, case, (2, &theirs[1]))];
    assert!(stands_in(twin, &on_chain, lookup));
    assert!(!stands_in(twin, &on_chain[1..], lookup), "a link left out");
    let at_revocation = [theirs[1].clone(), after(r, case, (2, &theirs[1]))];
    assert!(!stands_in(twin, &at_revocation, lookup));
    let other_case = [
        theirs[1].clone(),
        after(state.len, DocId::random(), (2, &theirs[1])),
    ];
    assert!(!stands_in(twin, &other_case, lookup));
    // On top of the genesis held here, not the phone's twin of it.
    let spliced = [after(state.len, case, (1, &held[0]))];
    assert!(!stands_in(twin, &spliced, lookup));
    assert!(stands_in(
        twin,
        &[after(state.len, case, (1, &theirs[0]))],
        lookup
    ));
}

/// A device not revoked signing it again (another of the owner's after a
/// turn): it stands, and what follows is taken.
#[test]
fn a_twin_a_device_not_revoked_signed_stands_in() {
    let (_dir, mut home, case, state, _, desk) = rivera();
    let held = home.access().access_log(&case).unwrap();
    let before = members(&home, &case);
    let accounts = BTreeMap::from([(state.id, state.clone())]);
    let theirs = signed_again_with_a_stranger(&held[0], &desk, state.len);
    let taken = home.rebase_access(&case, 0, &theirs, &accounts, &Undo::default());
    assert!(matches!(taken, Ok(None)), "{taken:?}");
    assert_eq!(members(&home, &case).len(), before.len() + 1);
    assert_eq!(home.access().access_log(&case).unwrap(), theirs);
}

/// Once a case's log holds an entry signed past the phone's revocation,
/// nothing the phone signs dated back goes on top of it: each entry's
/// claim keeps to the floor of those before (what README's "With a stolen
/// device's help" leans on).
#[test]
fn nothing_dated_back_goes_on_top_of_an_entry_signed_past_a_revocation() {
    let (_dir, home, case, state, phone, desk) = rivera();
    let held = home.access().access_log(&case).unwrap();
    let lookup = |a: &AccountId| (*a == state.id).then_some(&state);
    let log = signed_again_with_a_stranger(&held[0], &desk, state.len);
    let on_top = |by: &DeviceSigner, len: u64| {
        let mut e: DocEntry = log[1].open(SIG_LABEL).unwrap();
        (e.seq, e.prev, e.account_len) = (2, Some(log[1].hash(HASH_LABEL)), len);
        e.op = DocOp::Dispose;
        let mut with = log.clone();
        with.push(Signed::sign(by, SIG_LABEL, &e));
        DocState::verify_log(&with, lookup)
    };
    assert!(on_top(&desk, state.len).is_ok());
    let dated_back = on_top(&phone, before_revoked(&state, &phone));
    assert!(dated_back.is_err(), "{dated_back:?}");
}

/// The members of `case` as `home` has them.
fn members(home: &Home, case: &DocId) -> Vec<(AccountId, access::Role, Option<u64>)> {
    home.access().doc_meta(case).unwrap().unwrap().members
}

/// A length of `state`'s log at which `device` was active.
fn before_revoked(state: &AccountState, device: &DeviceSigner) -> u64 {
    state.devices[&device.device_id()].added_seq + 1
}
