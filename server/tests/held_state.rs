//! A relay holds in memory only the verified logs that requests need, up
//! to a bound: started over a store it holds nothing, reads an account
//! and its documents when a device of it asks, and never holds more than
//! its bound while it serves more accounts than that.

#[path = "common/logs.rs"]
mod logs;

use std::sync::Arc;

use casebook_relay::limits::Limits;
use casebook_relay::relay::{Relay, Session};
use casebook_relay::sqlite::SqliteStore;
use casebook_relay::state::Capacity;
use casebook_relay::storage::Storage;
use casebook_shared::account::AccountState;
use casebook_shared::crypto::DeviceSigner;
use casebook_shared::frames::{self, Request, Response};
use casebook_shared::ids::DocId;

const FINGERPRINT: [u8; 32] = [7; 32];

/// An account with one device and `docs` documents, written straight to
/// the store: its device and the documents' ids.
async fn practice(store: &SqliteStore, docs: usize) -> (DeviceSigner, AccountState, Vec<DocId>) {
    let (signer, state, job) = logs::an_account();
    assert!(store.submit(job).await.unwrap()[0].is_ok());
    let mut ids = Vec::new();
    for _ in 0..docs {
        let (doc, job) = logs::a_document(&signer, &state);
        assert!(store.submit(job).await.unwrap()[0].is_ok());
        ids.push(doc);
    }
    (signer, state, ids)
}

/// What a device of `state` is listed.
async fn listed(
    relay: &Relay<SqliteStore>,
    signer: &DeviceSigner,
    state: &AccountState,
) -> Vec<DocId> {
    let mut session = Session::default();
    let Response::Challenge { nonce } = relay.handle(&mut session, Request::Challenge).await else {
        panic!("no challenge")
    };
    let msg = frames::auth_message(&FINGERPRINT, &nonce, Some(&state.id), &signer.device_id());
    let auth = Request::Auth {
        account: Some(state.id),
        device: signer.device_id(),
        sig: signer.sign(frames::AUTH_LABEL, &msg),
    };
    let answer = relay.handle(&mut session, auth).await;
    assert!(
        matches!(answer, Response::Authenticated { .. }),
        "{answer:?}"
    );
    match relay
        .handle(&mut session, Request::ListDocs { since: 0 })
        .await
    {
        Response::Docs { docs, .. } => docs.into_iter().map(|h| h.doc).collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_relay_holds_what_requests_need_and_no_more_than_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
    let mut practices = Vec::new();
    for _ in 0..4 {
        practices.push(practice(&store, 3).await);
    }
    let cap = Capacity {
        accounts: 2,
        docs: 4,
    };
    let relay = Relay::load(store.clone(), FINGERPRINT, Limits::default(), cap)
        .await
        .unwrap();
    assert_eq!(relay.held(), (0, 0), "nothing is read at start");
    let (signer, state, docs) = &practices[0];
    let mut got = listed(&relay, signer, state).await;
    got.sort();
    let mut want = docs.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(relay.held(), (1, 3), "one account and its documents");
    // Every practice twice over: each is read again once dropped, and the
    // relay never holds more than its bound.
    for _ in 0..2 {
        for (signer, state, docs) in &practices {
            assert_eq!(listed(&relay, signer, state).await.len(), docs.len());
            let (accounts, held_docs) = relay.held();
            assert!(
                accounts <= cap.accounts && held_docs <= cap.docs,
                "{:?}",
                relay.held()
            );
        }
    }
}
