//! The storage contract, once for every backend: each check takes a store
//! made fresh by the backend's own test file (SQLite; PostgreSQL runs
//! the same checks against a server of its own). What a relay relies on:
//!
//! - a repeated envelope id is recognised and acknowledged once (its first
//!   sequence number, nothing added); the same id with other bytes is
//!   refused;
//! - a snapshot replaces the changes it covers, and what it covers only
//!   rises (an older snapshot changes nothing); a change it replaced is
//!   still recognised when retried;
//! - a log append at a position already taken is refused, whole;
//! - a fetch pages, never splits an envelope, always makes progress, and
//!   pages end to end to exactly what was stored, in order;
//! - what was acknowledged is there after the store is closed and opened
//!   again, with its heads, cursor and sizes;
//! - a disposal keeps itself alone (see `disposal_contract.rs`);
//! - an envelope is stored only if the access log and the author's account
//!   log are as long as when it was checked (its fence), so an access
//!   change or a revocation that another node stored first wins;
//! - one account's log and one document's record read back as stored.

#![allow(dead_code)]

use casebook_relay::storage::{Fence, NewEnvelope, Storage, StoreError, WriteJob, Written};
use casebook_shared::crypto::Sig;
use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;

pub fn doc(n: u8) -> DocId {
    DocId([n; 16])
}

pub fn env_id(n: u8) -> EnvelopeId {
    EnvelopeId([n; 24])
}

/// The author of every envelope here, whose account log is empty unless a
/// check writes one.
pub const AUTHOR: AccountId = AccountId([0xaa; 32]);

/// The owner who signs access entries here, whose account log is empty
/// unless a check writes one.
pub const OWNER: AccountId = AccountId([0xbb; 32]);

/// Checked against an empty access log and an empty account log.
pub fn unfenced() -> Fence {
    Fence {
        access_len: 0,
        account: AUTHOR,
        account_len: 0,
    }
}

pub fn change(d: u8, id: u8, bytes: &[u8]) -> NewEnvelope {
    NewEnvelope {
        doc: doc(d),
        id: env_id(id),
        snapshot_covers: None,
        bytes: bytes.to_vec(),
        fence: unfenced(),
        wants_prev: false,
    }
}

pub fn fenced(mut e: NewEnvelope, access_len: u64, account_len: u64) -> NewEnvelope {
    e.fence.access_len = access_len;
    e.fence.account_len = account_len;
    e
}

pub fn entry(n: u8) -> Signed {
    Signed {
        body: vec![n; 40],
        signer: DeviceId([n; 32]),
        sig: Sig([n; 64]),
    }
}

pub async fn write(s: &impl Storage, job: WriteJob) -> Vec<Result<Written, StoreError>> {
    s.submit(job).await.expect("the writer answers")
}

pub async fn put(s: &impl Storage, envs: Vec<NewEnvelope>) -> Vec<Result<Written, StoreError>> {
    write(s, WriteJob::Envelopes(envs.into())).await
}

pub async fn all(s: &impl Storage, d: u8) -> Vec<Stored> {
    s.fetch(vec![(doc(d), 0)], usize::MAX)
        .await
        .expect("fetch")
        .0
}

pub async fn a_repeated_envelope_is_acknowledged_once(s: &impl Storage) {
    let first = put(s, vec![change(1, 1, b"one")]).await;
    let Ok(w) = first[0] else { panic!("{first:?}") };
    assert!(w.seq > 0);
    assert_eq!(w.added, 3);
    // Again, alone and within a batch: the same number, nothing added.
    let again = put(s, vec![change(1, 2, b"two"), change(1, 1, b"one")]).await;
    assert!(
        matches!(again[1], Ok(Written { seq, added: 0, .. }) if seq == w.seq),
        "{again:?}"
    );
    assert!(again[0].as_ref().is_ok_and(|x| x.seq > w.seq));
    // The same id with other bytes: refused, the first kept.
    let other = put(s, vec![change(1, 1, b"forged")]).await;
    assert!(matches!(other[0], Err(StoreError::Conflict)), "{other:?}");
    let stored = all(s, 1).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].envelope, b"one");
    // An id is a document's own: another document may use it.
    assert!(put(s, vec![change(2, 1, b"elsewhere")]).await[0].is_ok());
}

pub async fn a_snapshot_replaces_what_it_covers_and_covers_only_rise(s: &impl Storage) {
    let mut seqs = Vec::new();
    for i in 1..=4u8 {
        let r = put(s, vec![change(3, i, &[i; 10])]).await;
        seqs.push(r[0].as_ref().expect("stored").seq);
    }
    let snap = |covers: u64, bytes: &[u8], id: u8| NewEnvelope {
        doc: doc(3),
        id: env_id(100 + id),
        snapshot_covers: Some(covers),
        bytes: bytes.to_vec(),
        fence: unfenced(),
        wants_prev: false,
    };
    let r = put(s, vec![snap(seqs[2], b"snapshot-upto-3", 1)]).await;
    let w = r[0].as_ref().expect("stored");
    assert_eq!(w.seq, seqs[2]);
    assert_eq!(
        w.added,
        15 - 30,
        "the snapshot's size less the changes it freed"
    );
    let got = all(s, 3).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].seq, got[0].envelope.as_slice()),
        (seqs[2], &b"snapshot-upto-3"[..])
    );
    assert_eq!(got[1].seq, seqs[3]);
    // An older snapshot changes nothing.
    let older = put(s, vec![snap(seqs[1], b"older", 2)]).await;
    assert!(older[0].as_ref().is_ok_and(|w| w.added == 0), "{older:?}");
    assert_eq!(all(s, 3).await[0].envelope, b"snapshot-upto-3");
    // A change it replaced, retried: recognised, not stored again.
    let retried = put(s, vec![change(3, 1, &[1; 10])]).await;
    assert!(
        matches!(retried[0], Ok(Written { seq, added: 0, .. }) if seq == seqs[0]),
        "{retried:?}"
    );
    // Fetching from past the snapshot skips it.
    let after = s
        .fetch(vec![(doc(3), seqs[2])], usize::MAX)
        .await
        .unwrap()
        .0;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, seqs[3]);
    // What precedes a change, said only when asked (it is pushed with the
    // change to watching devices): a number the snapshot replaced too,
    // nothing before a document's first, an earlier one of the same batch,
    // never another document's, and for a repeat what precedes the first.
    let asked = |d: u8, id: u8, bytes: &[u8]| NewEnvelope {
        wants_prev: true,
        ..change(d, id, bytes)
    };
    let covering = put(s, vec![snap(seqs[3], b"snapshot-upto-4", 3)]).await;
    assert!(covering[0].is_ok(), "{covering:?}");
    let r = put(
        s,
        vec![
            asked(3, 20, b"after the snapshot"),
            asked(77, 1, b"first"),
            change(3, 21, b"not asked"),
            asked(77, 2, b"second"),
            asked(3, 1, &[1; 10]),
        ],
    )
    .await;
    let w: Vec<Written> = r.into_iter().map(|w| w.expect("stored")).collect();
    assert_eq!(w[0].prev, Some(seqs[3]), "{w:?}");
    assert_eq!(w[1].prev, Some(0), "{w:?}");
    assert_eq!(w[2].prev, None, "{w:?}");
    assert_eq!(w[3].prev, Some(w[1].seq), "{w:?}");
    assert_eq!((w[4].seq, w[4].prev), (seqs[0], Some(0)), "{w:?}");
}

pub async fn a_log_append_at_a_taken_position_is_refused_whole(s: &impl Storage) {
    let account = AccountId([9; 32]);
    let job = |first_seq, entries| WriteJob::Account {
        account,
        first_seq,
        entries,
        devices: Vec::new(),
    };
    assert!(write(s, job(0, vec![entry(1), entry(2)])).await[0].is_ok());
    let taken = write(s, job(1, vec![entry(7), entry(8)])).await;
    assert!(
        matches!(taken[0], Err(StoreError::LogConflict)),
        "{taken:?}"
    );
    assert!(write(s, job(2, vec![entry(3)])).await[0].is_ok());
    let access = |first_seq, entries| WriteJob::Access {
        doc: doc(4),
        first_seq,
        entries,
        owner: OWNER,
        members: vec![OWNER],
        signer: (OWNER, 0),
    };
    assert!(write(s, access(0, vec![entry(5)])).await[0].is_ok());
    let taken = write(s, access(0, vec![entry(6)])).await;
    assert!(
        matches!(taken[0], Err(StoreError::LogConflict)),
        "{taken:?}"
    );
    let loaded = s.load().await.unwrap();
    let log = &loaded
        .accounts
        .iter()
        .find(|(a, _)| *a == account)
        .unwrap()
        .1;
    assert_eq!(
        log,
        &vec![entry(1), entry(2), entry(3)],
        "nothing of the refused append"
    );
    let log = &loaded.docs.iter().find(|(d, _)| *d == doc(4)).unwrap().1;
    assert_eq!(log, &vec![entry(5)]);
}

pub async fn a_fetch_pages_end_to_end(s: &impl Storage) {
    let mut want = Vec::new();
    for i in 0..40u8 {
        let d = 10 + i % 3;
        let bytes = vec![i; 100 + usize::from(i)];
        let r = put(s, vec![change(d, i, &bytes)]).await;
        want.push((doc(d), r[0].as_ref().unwrap().seq, bytes));
    }
    let docs: Vec<DocId> = (10..13).map(doc).collect();
    let mut marks: Vec<(DocId, u64)> = docs.iter().map(|d| (*d, 0)).collect();
    let mut got: Vec<(DocId, u64, Vec<u8>)> = Vec::new();
    let mut pages = 0;
    loop {
        let (items, more) = s.fetch(marks.clone(), 450).await.unwrap();
        pages += 1;
        assert!(
            !items.is_empty() || !more,
            "a page that promises more holds something"
        );
        assert!(items.len() <= 4, "about max_bytes a page");
        for it in items {
            let m = marks.iter_mut().find(|(d, _)| *d == it.doc).unwrap();
            assert!(it.seq > m.1, "in order, after the mark");
            m.1 = it.seq;
            got.push((it.doc, it.seq, it.envelope));
        }
        if !more {
            break;
        }
        assert!(pages < 100);
    }
    assert!(pages > 5);
    got.sort_by_key(|(_, seq, _)| *seq);
    want.sort_by_key(|(_, seq, _)| *seq);
    assert_eq!(got, want);
    // One envelope larger than a page still comes, alone, and the page
    // says more follows when it does.
    put(s, vec![change(13, 1, &[1; 5000])]).await;
    let (items, more) = s.fetch(vec![(doc(13), 0)], 10).await.unwrap();
    assert_eq!((items.len(), more), (1, false));
    put(s, vec![change(13, 2, &[2; 20])]).await;
    let (items, more) = s.fetch(vec![(doc(13), 0)], 10).await.unwrap();
    assert_eq!((items.len(), more), (1, true), "a full page promises more");
}

/// Writes, then hands the store back to be closed and opened again by
/// `reopen`, and checks what was acknowledged is all there.
pub async fn acknowledged_writes_survive_a_reopen<S, Fut>(s: S, reopen: impl FnOnce(S) -> Fut)
where
    S: Storage,
    Fut: std::future::Future<Output = S>,
{
    let a = put(
        &s,
        vec![change(20, 1, b"kept"), change(20, 2, b"also kept")],
    )
    .await;
    let top = a[1].as_ref().unwrap().seq;
    write(
        &s,
        WriteJob::Account {
            account: AccountId([20; 32]),
            first_seq: 0,
            entries: vec![entry(20)],
            devices: Vec::new(),
        },
    )
    .await[0]
        .as_ref()
        .unwrap();
    let s = reopen(s).await;
    let loaded = s.load().await.unwrap();
    assert!(loaded.cursor >= top);
    assert_eq!(
        loaded
            .heads
            .iter()
            .find(|(d, _)| *d == doc(20))
            .map(|h| h.1),
        Some(top)
    );
    assert_eq!(
        loaded
            .doc_bytes
            .iter()
            .find(|(d, _)| *d == doc(20))
            .map(|h| h.1),
        Some(4 + 9)
    );
    assert!(
        loaded
            .accounts
            .iter()
            .any(|(a, log)| *a == AccountId([20; 32]) && log.len() == 1)
    );
    let got = all(&s, 20).await;
    assert_eq!(got.len(), 2);
    // Numbers keep rising after a reopen.
    let next = put(&s, vec![change(20, 3, b"after")]).await;
    assert!(next[0].as_ref().unwrap().seq > top);
}

pub async fn an_envelope_whose_logs_moved_is_refused_as_stale(s: &impl Storage) {
    let access = |first_seq, entries| WriteJob::Access {
        doc: doc(40),
        first_seq,
        entries,
        owner: OWNER,
        members: vec![OWNER],
        signer: (OWNER, 0),
    };
    assert!(write(s, access(0, vec![entry(1), entry(2)])).await[0].is_ok());
    // Checked when the access log had one entry: another node added one.
    let r = put(s, vec![fenced(change(40, 1, b"behind"), 1, 0)]).await;
    assert!(matches!(r[0], Err(StoreError::Stale)), "{r:?}");
    let r = put(s, vec![fenced(change(40, 1, b"current"), 2, 0)]).await;
    assert!(r[0].is_ok(), "{r:?}");
    // The author's account log grew (a revocation, say) after the check.
    let grew = WriteJob::Account {
        account: AUTHOR,
        first_seq: 0,
        entries: vec![entry(9)],
        devices: Vec::new(),
    };
    assert!(write(s, grew).await[0].is_ok());
    let r = put(
        s,
        vec![
            fenced(change(40, 2, b"before the revocation"), 2, 0),
            fenced(change(40, 3, b"after it"), 2, 1),
        ],
    )
    .await;
    assert!(matches!(r[0], Err(StoreError::Stale)), "{r:?}");
    assert!(r[1].is_ok(), "{r:?}");
    // A snapshot is fenced too, and a stale one replaces nothing.
    let head = r[1].as_ref().unwrap().seq;
    let mut snap = fenced(change(40, 4, b"snapshot"), 1, 1);
    snap.snapshot_covers = Some(head);
    let r = put(s, vec![snap]).await;
    assert!(matches!(r[0], Err(StoreError::Stale)), "{r:?}");
    let got = all(s, 40).await;
    assert_eq!(
        got.iter()
            .map(|g| g.envelope.as_slice())
            .collect::<Vec<_>>(),
        vec![&b"current"[..], b"after it"]
    );
}

pub async fn a_log_and_a_document_read_back_as_stored(s: &impl Storage) {
    assert!(s.account_log(AUTHOR).await.unwrap().is_empty());
    assert!(s.doc_record(doc(50)).await.unwrap().is_none());
    let log = WriteJob::Account {
        account: AUTHOR,
        first_seq: 0,
        entries: vec![entry(1), entry(2)],
        devices: Vec::new(),
    };
    assert!(write(s, log).await[0].is_ok());
    assert_eq!(
        s.account_log(AUTHOR).await.unwrap(),
        vec![entry(1), entry(2)]
    );
    let access = WriteJob::Access {
        doc: doc(50),
        first_seq: 0,
        entries: vec![entry(3)],
        owner: OWNER,
        members: vec![OWNER],
        signer: (OWNER, 0),
    };
    assert!(write(s, access).await[0].is_ok());
    let r = put(
        s,
        vec![
            fenced(change(50, 1, &[1; 30]), 1, 2),
            fenced(change(50, 2, &[2; 12]), 1, 2),
        ],
    )
    .await;
    let rec = s.doc_record(doc(50)).await.unwrap().expect("stored");
    assert_eq!(rec.log, vec![entry(3)]);
    assert_eq!(rec.head, r[1].as_ref().unwrap().seq);
    assert_eq!(rec.bytes, 42);
    assert!(rec.disposed.is_none());
    // Disposed of: the disposal alone, its readers, the head kept.
    let gone = WriteJob::Dispose {
        doc: doc(50),
        first_seq: 1,
        entries: vec![entry(4)],
        readers: vec![AUTHOR],
        head: rec.head,
        signer: (OWNER, 0),
        alone: false,
    };
    assert!(write(s, gone).await[0].is_ok());
    let rec2 = s.doc_record(doc(50)).await.unwrap().expect("kept");
    assert_eq!(rec2.log, vec![entry(4)]);
    assert_eq!(rec2.disposed, Some(vec![AUTHOR]));
    assert_eq!((rec2.head, rec2.bytes), (rec.head, 0));
}

pub async fn a_mailbox_slot_takes_one_message(s: &impl Storage) {
    use casebook_relay::mailbox::{self, MailboxError};
    use std::time::Duration;
    s.mailbox_put([1; 16], 0, b"a".to_vec()).await.unwrap();
    let again = s.mailbox_put([1; 16], 0, b"b".to_vec()).await;
    assert!(matches!(again, Err(MailboxError::Taken)), "{again:?}");
    assert_eq!(
        s.mailbox_take([1; 16], 0).await.unwrap(),
        Some(b"a".to_vec())
    );
    assert_eq!(s.mailbox_take([1; 16], 0).await.unwrap(), None);
    let after = s.mailbox_put([1; 16], 0, b"c".to_vec()).await;
    assert!(
        matches!(after, Err(MailboxError::Taken)),
        "one message ever"
    );
    // A waiter is woken by the put it waits for.
    let (got, ()) = tokio::join!(
        mailbox::take(s, [2; 16], 1, Duration::from_secs(20)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.mailbox_put([2; 16], 1, b"late".to_vec()).await.unwrap();
        }
    );
    assert_eq!(got.unwrap(), Some(b"late".to_vec()));
    let none = mailbox::take(s, [3; 16], 0, Duration::from_millis(20)).await;
    assert_eq!(none.unwrap(), None, "nothing comes: the wait ends empty");
}

/// An account append that lists a device another account's log lists is
/// refused whole; the same account listing it again is not.
pub async fn a_device_is_listed_by_one_account_only(s: &impl Storage) {
    let (first, second) = (AccountId([60; 32]), AccountId([61; 32]));
    let (d1, d2) = (DeviceId([0x61; 32]), DeviceId([0x62; 32]));
    let job = |account, first_seq, devices| WriteJob::Account {
        account,
        first_seq,
        entries: vec![entry(first_seq as u8 + 1)],
        devices,
    };
    assert!(write(s, job(first, 0, vec![d1])).await[0].is_ok());
    let r = write(s, job(second, 0, vec![d2, d1])).await;
    assert!(
        matches!(r[0], Err(StoreError::DeviceClaimed(d)) if d == d1),
        "{r:?}"
    );
    assert!(
        s.account_log(second).await.unwrap().is_empty(),
        "nothing of a refused append is kept"
    );
    assert!(write(s, job(first, 1, vec![d1, d2])).await[0].is_ok());
    let r = write(s, job(second, 0, vec![d2])).await;
    assert!(matches!(r[0], Err(StoreError::DeviceClaimed(_))), "{r:?}");
    assert!(write(s, job(second, 0, vec![DeviceId([0x63; 32])])).await[0].is_ok());
}

/// What the store indexes of the logs: who owns each document and what it
/// stores for its owner, which documents each account is or was a member
/// of, and which account lists each device.
pub async fn the_indexes_answer_from_the_logs(s: &impl Storage) {
    let (owner, member) = (AccountId([70; 32]), AccountId([71; 32]));
    let access = |d: u8, owner: AccountId, members: Vec<AccountId>| WriteJob::Access {
        doc: doc(d),
        first_seq: 0,
        entries: vec![entry(d)],
        owner,
        members,
        signer: (OWNER, 0),
    };
    assert!(write(s, access(70, owner, vec![owner, member])).await[0].is_ok());
    assert!(write(s, access(71, member, vec![member])).await[0].is_ok());
    assert_eq!(s.owner_usage(owner).await.unwrap(), 0);
    // Checked against the one access entry each document has.
    let stored = put(
        s,
        vec![
            fenced(change(70, 1, &[1; 10]), 1, 0),
            fenced(change(70, 2, &[2; 20]), 1, 0),
            fenced(change(71, 1, &[3; 5]), 1, 0),
        ],
    )
    .await;
    assert!(stored.iter().all(Result::is_ok), "{stored:?}");
    assert_eq!(s.owner_usage(owner).await.unwrap(), 30);
    assert_eq!(s.owner_usage(member).await.unwrap(), 5);
    assert_eq!(s.owner_usage(AccountId([72; 32])).await.unwrap(), 0);
    let mut docs = s.member_docs(member).await.unwrap();
    docs.sort();
    assert_eq!(docs, vec![doc(70), doc(71)]);
    assert_eq!(s.member_docs(owner).await.unwrap(), vec![doc(70)]);
    // A member removed later stays listed: it learns of what follows.
    let removed = WriteJob::Access {
        doc: doc(70),
        first_seq: 1,
        entries: vec![entry(99)],
        owner,
        members: vec![owner],
        signer: (OWNER, 0),
    };
    assert!(write(s, removed).await[0].is_ok());
    assert_eq!(s.member_docs(member).await.unwrap().len(), 2);
    let device = DeviceId([73; 32]);
    assert_eq!(s.device_account(device).await.unwrap(), None);
    let job = WriteJob::Account {
        account: member,
        first_seq: 0,
        entries: vec![entry(1)],
        devices: vec![device],
    };
    assert!(write(s, job).await[0].is_ok());
    assert_eq!(s.device_account(device).await.unwrap(), Some(member));
}
