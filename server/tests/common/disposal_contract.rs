//! The storage contract's disposals, once for every backend (see
//! `contract.rs`):
//!
//! - a disposal deletes every envelope, snapshot and earlier access entry
//!   of its document, keeps itself with its readers and the document's
//!   head, and refuses anything stored for the document afterwards;
//! - a disposal given back alone (a relay restored from an older copy lost
//!   it) replaces whatever log is held, however long, is kept at its own
//!   position, and lists the document to its readers whether the store
//!   held it or not; unless the store holds it disposed of already, or
//!   as another owner's (written by another relay node since the relay
//!   checked).

#![allow(dead_code)]

use casebook_relay::storage::{Storage, StoreError, WriteJob, Written};
use casebook_shared::ids::AccountId;

use super::contract::{OWNER, all, change, doc, entry, fenced, put, write};

pub async fn a_disposal_keeps_itself_alone(s: &impl Storage) {
    for i in 1..=3u8 {
        put(s, vec![change(30, i, &[i; 50])]).await;
    }
    let head = all(s, 30).await.last().unwrap().seq;
    let access = WriteJob::Access {
        doc: doc(30),
        first_seq: 0,
        entries: vec![entry(1), entry(2)],
        owner: OWNER,
        members: vec![OWNER],
        signer: (OWNER, 0),
    };
    assert!(write(s, access).await[0].is_ok());
    let readers = vec![AccountId([1; 32]), AccountId([2; 32])];
    let done = write(
        s,
        WriteJob::Dispose {
            doc: doc(30),
            first_seq: 2,
            entries: vec![entry(3)],
            readers: readers.clone(),
            // Lower than the document's: the store keeps the higher.
            head: 0,
            signer: (OWNER, 0),
            alone: false,
        },
    )
    .await;
    assert!(
        matches!(done[0], Ok(Written { added: -150, seq, .. }) if seq == head),
        "{done:?}"
    );
    assert!(all(s, 30).await.is_empty());
    let late = put(s, vec![fenced(change(30, 9, b"too late"), 3, 0)]).await;
    assert!(matches!(late[0], Err(StoreError::Disposed)), "{late:?}");
    let loaded = s.load().await.unwrap();
    let log = &loaded.docs.iter().find(|(d, _)| *d == doc(30)).unwrap().1;
    assert_eq!(log, &vec![entry(3)], "the disposal alone");
    assert_eq!(
        loaded
            .disposed
            .iter()
            .find(|(d, _)| *d == doc(30))
            .map(|d| &d.1),
        Some(&readers)
    );
    assert!(loaded.heads.contains(&(doc(30), head)));
    assert!(loaded.cursor >= head);
}

pub async fn a_disposal_given_back_alone_replaces_any_log(s: &impl Storage) {
    let reader = AccountId([5; 32]);
    let back = |d: u8, seq: u64, e: u8| WriteJob::Dispose {
        doc: doc(d),
        first_seq: seq,
        entries: vec![entry(e)],
        readers: vec![OWNER, reader],
        head: 0,
        signer: (OWNER, 0),
        alone: true,
    };
    // Held, with a log that went on past where the disposal was signed.
    let access = WriteJob::Access {
        doc: doc(31),
        first_seq: 0,
        entries: vec![entry(1), entry(2), entry(3)],
        owner: OWNER,
        members: vec![OWNER],
        signer: (OWNER, 0),
    };
    assert!(write(s, access).await[0].is_ok());
    let stored = put(s, vec![fenced(change(31, 1, &[1; 20]), 3, 0)]).await;
    let head = stored[0].as_ref().unwrap().seq;
    let done = write(s, back(31, 1, 9)).await;
    assert!(
        matches!(done[0], Ok(Written { added: -20, seq, .. }) if seq == head),
        "{done:?}"
    );
    assert!(all(s, 31).await.is_empty());
    let rec = s.doc_record(doc(31)).await.unwrap().expect("kept");
    assert_eq!(rec.log, vec![entry(9)], "the disposal alone");
    assert_eq!(rec.disposed, Some(vec![OWNER, reader]));
    assert_eq!(rec.head, head, "the head never goes back");
    let late = put(s, vec![fenced(change(31, 2, b"too late"), 2, 0)]).await;
    assert!(matches!(late[0], Err(StoreError::Disposed)), "{late:?}");

    // Not held at all: kept all the same, and listed to its readers.
    let done = write(s, back(32, 4, 8)).await;
    assert!(matches!(done[0], Ok(Written { added: 0, .. })), "{done:?}");
    let rec = s.doc_record(doc(32)).await.unwrap().expect("kept");
    assert_eq!(rec.log, vec![entry(8)]);
    let mut listed = s.member_docs(reader).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec![doc(31), doc(32)]);
    // Stored since as disposed of, or as another's (by another relay
    // node): refused, nothing changed.
    let again = write(s, back(31, 2, 7)).await;
    assert!(
        matches!(again[0], Err(StoreError::LogConflict)),
        "{again:?}"
    );
    let theirs = WriteJob::Access {
        doc: doc(33),
        first_seq: 0,
        entries: vec![entry(1)],
        owner: reader,
        members: vec![reader],
        signer: (OWNER, 0),
    };
    assert!(write(s, theirs).await[0].is_ok());
    let taken = write(s, back(33, 1, 6)).await;
    assert!(
        matches!(taken[0], Err(StoreError::LogConflict)),
        "{taken:?}"
    );
    let rec = s.doc_record(doc(33)).await.unwrap().expect("kept");
    assert_eq!((rec.log, rec.disposed), (vec![entry(1)], None));
    let loaded = s.load().await.unwrap();
    for (d, e) in [(31, 9), (32, 8)] {
        let log = &loaded.docs.iter().find(|(x, _)| *x == doc(d)).unwrap().1;
        assert_eq!(log, &vec![entry(e)]);
        assert!(loaded.disposed.iter().any(|(x, _)| *x == doc(d)));
    }
}
