//! What the held state keeps when loads, commits and uploads overlap.

use super::*;
use casebook_shared::access::{self, DocOp};
use casebook_shared::account;
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};

fn an_account() -> (DeviceSigner, Signed, AccountState) {
    let signer = DeviceSigner::generate();
    let (genesis, _) = account::genesis(&signer, &DhSecret::generate(), 0);
    let state = AccountState::from_genesis(&genesis).unwrap();
    (signer, genesis, state)
}

/// A log read before a commit (or a reread) is answered, never held: it
/// may be older than what was held and dropped meanwhile.
#[test]
fn a_log_read_before_a_commit_is_not_held() {
    let mut st = State::new(Capacity {
        accounts: 4,
        docs: 4,
    });
    let (_, genesis, state) = an_account();
    let seen = st.generation();
    let (_, other, other_state) = an_account();
    st.commit_account(None, other_state, vec![other]);
    let answered = st
        .hold_account(state.id, vec![genesis.clone()], Some(seen))
        .unwrap();
    assert_eq!(answered.state.id, state.id);
    assert!(st.account_entry(&state.id).is_none(), "held a stale read");
    let seen = st.generation();
    st.hold_account(state.id, vec![genesis], Some(seen))
        .unwrap();
    assert!(st.account_entry(&state.id).is_some());
}

/// An upload that lands after an access change made a new version of its
/// document moves the head and bytes of the version held now.
#[test]
fn an_upload_in_flight_counts_into_the_version_held_when_it_lands() {
    let mut st = State::new(Capacity {
        accounts: 4,
        docs: 4,
    });
    let (signer, genesis, state) = an_account();
    st.commit_account(None, state.clone(), vec![genesis]);
    let doc = DocId::random();
    let entry = DocEntry {
        doc,
        seq: 0,
        prev: None,
        at: 0,
        account: state.id,
        account_len: state.len,
        op: DocOp::Genesis {
            key: access::key_envelope(&doc, 0, &SecretKey::random(), &state).unwrap(),
        },
    };
    let signed = Signed::sign(&signer, access::SIG_LABEL, &entry);
    let (checked, missing) =
        st.check_access(&doc, None, std::slice::from_ref(&signed), &Fetched::new());
    assert!(missing.is_empty());
    let first = st.commit_access(None, checked.unwrap(), vec![signed.clone()]);
    // An upload checked against `first`; an access change lands first.
    let second = st.commit_access(Some(&first), first.state.clone(), vec![signed]);
    assert!(!Arc::ptr_eq(&first, &second));
    st.advance(Some(&first), 9);
    st.add_bytes(&first, 1000);
    let held = st.doc(&doc).unwrap();
    assert_eq!(held.head(), 9);
    assert_eq!(held.bytes(), 1000);
}
