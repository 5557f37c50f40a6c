//! Real signed logs written straight to a store, as a relay would have
//! written them: a new account with one device, and a new document of it.

#![allow(dead_code)]

use casebook_relay::storage::WriteJob;
use casebook_shared::access::{self, DocEntry, DocOp};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};
use casebook_shared::ids::DocId;
use casebook_shared::signed::Signed;

/// A new account with one device: its device, its state, and the job that
/// stores its log.
pub fn an_account() -> (DeviceSigner, AccountState, WriteJob) {
    let signer = DeviceSigner::generate();
    let (genesis, _) = account::genesis(&signer, &DhSecret::generate(), 0);
    let state = AccountState::from_genesis(&genesis).unwrap();
    let job = WriteJob::Account {
        account: state.id,
        first_seq: 0,
        entries: vec![genesis],
        devices: state.devices.keys().copied().collect(),
    };
    (signer, state, job)
}

/// A new document of `state`, made by its device `signer`: its id and the
/// job that stores its access log.
pub fn a_document(signer: &DeviceSigner, state: &AccountState) -> (DocId, WriteJob) {
    let doc = DocId::random();
    let entry = DocEntry {
        doc,
        seq: 0,
        prev: None,
        at: 0,
        account: state.id,
        account_len: state.len,
        op: DocOp::Genesis {
            key: access::key_envelope(&doc, 0, &SecretKey::random(), state).unwrap(),
        },
    };
    let job = WriteJob::Access {
        doc,
        first_seq: 0,
        entries: vec![Signed::sign(signer, access::SIG_LABEL, &entry)],
        owner: state.id,
        members: vec![state.id],
        signer: (state.id, state.len),
    };
    (doc, job)
}
