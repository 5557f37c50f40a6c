//! The pull's rules, driven without a relay or a store: each test hands
//! [`Pulling`] what the store holds, a listing, access entries and pages,
//! and reads the steps it yields.

use casebook_shared::access::{DocEntry, DocOp, SIG_LABEL};
use casebook_shared::crypto::DeviceSigner;
use casebook_shared::frames::Request;
use casebook_shared::ids::AccountId;

use super::*;

fn doc(n: u8) -> DocId {
    DocId([n; 16])
}

const AUDIT: u8 = 99;

fn head(d: u8, access_len: u64, seq: u64) -> DocHead {
    DocHead {
        doc: doc(d),
        access_len,
        access_head: casebook_shared::ids::Hash([0; 32]),
        seq,
    }
}

fn held(access_len: u64, seen: u64, owned: bool) -> HeldDoc {
    HeldDoc {
        sync: DocSync {
            seen,
            access_len,
            ..DocSync::default()
        },
        owned,
        ..HeldDoc::default()
    }
}

fn here(docs: impl IntoIterator<Item = (u8, HeldDoc)>) -> Here {
    Here {
        docs: docs.into_iter().map(|(d, h)| (doc(d), h)).collect(),
        disposed: BTreeSet::new(),
        audit: doc(AUDIT),
        audit_held: true,
    }
}

fn entry(d: u8, seq: u64, op: DocOp) -> Signed {
    Signed::sign(
        &DeviceSigner::generate(),
        SIG_LABEL,
        &DocEntry {
            doc: doc(d),
            seq,
            prev: None,
            at: 1,
            account: AccountId([1; 32]),
            account_len: 1,
            op,
        },
    )
}

fn entries(d: u8, from: u64, n: u64) -> Vec<Signed> {
    (from..from + n)
        .map(|seq| {
            entry(
                d,
                seq,
                DocOp::RemoveMember {
                    member: AccountId([2; 32]),
                },
            )
        })
        .collect()
}

fn stored(d: u8, seq: u64) -> Stored {
    Stored {
        doc: doc(d),
        seq,
        envelope: vec![0; 10],
    }
}

/// Steps until one that awaits an answer (or `Done`), named.
fn until_asked(p: &mut Pulling) -> (Vec<String>, Step) {
    let mut names = Vec::new();
    loop {
        let step = p.poll();
        let name = format!("{step:?}");
        match step {
            Step::List
            | Step::GetAccess { .. }
            | Step::TakeDisposal { .. }
            | Step::Signers { .. }
            | Step::TakeAccess(_)
            | Step::Fetch(_)
            | Step::Done => return (names, step),
            _ => names.push(name.split([' ', '(']).next().unwrap().to_string()),
        }
    }
}

/// The documents held back and everything refused.
fn finish(mut p: Pulling) -> (BTreeSet<DocId>, Vec<RefusedEnvelope>) {
    let refused = std::mem::take(p.refused());
    (p.finish(), refused)
}

fn fetch_docs(step: &Step) -> Vec<(DocId, u64)> {
    match step {
        Step::Fetch(Request::Fetch { docs, .. }) => docs.clone(),
        s => panic!("expected a fetch, got {s:?}"),
    }
}

#[test]
fn what_is_new_is_fetched_and_nothing_else() {
    let mut p = Pulling::new(here([(1, held(1, 5, true)), (2, held(1, 9, true))]));
    assert_eq!(p.poll(), Step::List);
    p.listed(&[head(1, 1, 5), head(2, 1, 12), head(AUDIT, 0, 0)])
        .unwrap();
    let (_, step) = until_asked(&mut p);
    assert_eq!(fetch_docs(&step), [(doc(2), 9)]);
    p.page(vec![stored(2, 10), stored(2, 12)], false).unwrap();
    let (names, step) = until_asked(&mut p);
    assert_eq!(names, ["Take", "Fetched", "Apply"]);
    assert_eq!(step, Step::Done);
    let (held_back, refused) = finish(p);
    assert!(held_back.is_empty() && refused.is_empty());
}

#[test]
fn a_shared_case_shown_with_fewer_access_entries_than_seen_is_held_back() {
    let mut p = Pulling::new(here([(1, held(2, 5, false)), (2, held(1, 5, true))]));
    p.poll();
    p.listed(&[head(1, 1, 5), head(2, 1, 7), head(AUDIT, 0, 0)])
        .unwrap();
    let (_, step) = until_asked(&mut p);
    assert_eq!(fetch_docs(&step), [(doc(2), 5)], "the rest goes on");
    let (held_back, refused) = finish(p);
    assert_eq!(held_back, BTreeSet::from([doc(1)]));
    assert!(
        refused[0].doc == doc(1) && refused[0].reason.contains("the case waits"),
        "{refused:?}"
    );
}

#[test]
fn an_owned_log_shown_shorter_is_fetched_whole_and_taken_as_a_fork() {
    let mut p = Pulling::new(here([(1, held(2, 5, true))]));
    p.poll();
    p.listed(&[head(1, 1, 5), head(AUDIT, 0, 0)]).unwrap();
    assert_eq!(
        p.poll(),
        Step::GetAccess {
            doc: doc(1),
            from: 0
        }
    );
    let entries = entries(1, 0, 1);
    p.access(doc(1), 0, entries.clone()).unwrap();
    assert!(matches!(p.poll(), Step::Signers { .. }));
    p.signers(doc(1), entries, Ok(()));
    match p.poll() {
        Step::TakeAccess(take) => assert!(take[0].fork && take[0].confirmed == 0),
        s => panic!("{s:?}"),
    }
}

#[test]
fn unsent_entries_of_its_own_are_not_counted_against_the_relay() {
    let mut mine = held(3, 5, true);
    mine.unsent = 1;
    let mut p = Pulling::new(here([(1, mine)]));
    p.poll();
    // The relay has the two entries it was sent; another device added one.
    p.listed(&[head(1, 3, 5), head(AUDIT, 0, 0)]).unwrap();
    assert_eq!(
        p.poll(),
        Step::GetAccess {
            doc: doc(1),
            from: 2
        }
    );
    p.access(doc(1), 2, entries(1, 2, 1)).unwrap();
    let Step::Signers { entries: e, .. } = p.poll() else {
        panic!()
    };
    p.signers(doc(1), e, Ok(()));
    let Step::TakeAccess(take) = p.poll() else {
        panic!()
    };
    assert_eq!(take.len(), 1);
    assert_eq!(take[0].confirmed, 2);
    assert!(take[0].rebase, "its own unsent entries are replayed on top");
}

#[test]
fn a_disposal_done_here_is_carried_out_once_sent() {
    let mut gone = held(2, 5, true);
    gone.disposed = true;
    let mut waiting = gone;
    waiting.unsent = 1;
    let mut p = Pulling::new(here([(1, gone), (2, waiting)]));
    assert_eq!(p.poll(), Step::Purge(doc(1)));
    assert_eq!(p.poll(), Step::List);
    // A purged document is no longer held: its absence is no rollback.
    p.listed(&[head(2, 2, 5), head(AUDIT, 0, 0)]).unwrap();
}

/// A pull with no audit document on either side, up to where it asks for
/// one to be created.
fn creating_the_audit_document() -> Pulling {
    let mut h = here([]);
    h.audit_held = false;
    let mut p = Pulling::new(h);
    assert_eq!(p.poll(), Step::List);
    p.listed(&[]).unwrap();
    assert_eq!(p.poll(), Step::EnsureAudit);
    p
}

#[test]
fn the_audit_document_is_created_once_when_neither_side_has_it() {
    let mut p = creating_the_audit_document();
    assert_eq!(p.poll(), Step::List);
    // Still not listed: not tried again.
    p.listed(&[]).unwrap();
    let (names, _) = until_asked(&mut p);
    assert!(!names.contains(&"EnsureAudit".to_string()), "{names:?}");
}

/// Found by following the README: a new device's first sync created the
/// audit document, then took the relay's listing of it as news, fetched
/// its log from the first entry and refused that entry, which did not
/// continue the log it had just written ("refused envelope 0").
#[test]
fn the_audit_document_created_here_is_not_fetched_back() {
    let mut p = creating_the_audit_document();
    p.audit_created(Some(held(1, 0, true)));
    assert_eq!(p.poll(), Step::List);
    p.listed(&[head(AUDIT, 1, 0)]).unwrap();
    let (names, step) = until_asked(&mut p);
    assert!(
        !matches!(step, Step::GetAccess { .. }),
        "{names:?} then {step:?}"
    );
    let (held_back, refused) = finish(p);
    assert!(held_back.is_empty() && refused.is_empty(), "{refused:?}");
}

#[test]
fn shares_not_listed_end_and_owned_documents_are_left_alone() {
    let mut p = Pulling::new(here([
        (1, held(1, 0, false)),
        (2, held(1, 0, false)),
        (3, held(0, 0, true)),
    ]));
    p.poll();
    p.listed(&[head(2, 1, 0), head(3, 0, 0), head(AUDIT, 0, 0)])
        .unwrap();
    assert_eq!(
        p.poll(),
        Step::Shares {
            ended: vec![doc(1)],
            listed: vec![doc(2)]
        }
    );
}

#[test]
fn entries_that_end_short_of_the_listing_are_a_rollback() {
    let mut p = Pulling::new(here([(1, held(1, 0, true))]));
    p.poll();
    p.listed(&[head(1, 3, 0), head(AUDIT, 0, 0)]).unwrap();
    p.poll();
    assert!(matches!(
        p.access(doc(1), 1, entries(1, 1, 1)),
        Err(RollbackError::AccessEntries {
            listed: 3,
            sent: 2,
            ..
        })
    ));
}

#[test]
fn a_log_that_does_not_check_holds_its_document_back_and_the_rest_go_on() {
    let mut p = Pulling::new(here([(1, held(1, 4, true)), (2, held(1, 4, true))]));
    p.poll();
    p.listed(&[head(1, 2, 6), head(2, 2, 6), head(AUDIT, 0, 0)])
        .unwrap();
    for d in [1, 2] {
        assert_eq!(
            p.poll(),
            Step::GetAccess {
                doc: doc(d),
                from: 1
            }
        );
        p.access(doc(d), 1, entries(d, 1, 1)).unwrap();
        let Step::Signers { doc: sd, entries } = p.poll() else {
            panic!()
        };
        assert_eq!(sd, doc(d));
        let verdict = if d == 1 {
            Err("entry 1 signed for account x, which the relay does not have".into())
        } else {
            Ok(())
        };
        p.signers(sd, entries, verdict);
    }
    let Step::TakeAccess(take) = p.poll() else {
        panic!()
    };
    assert_eq!(take.iter().map(|t| t.doc).collect::<Vec<_>>(), [doc(2)]);
    assert!(!take[0].rebase);
    p.access_taken(vec![]);
    assert_eq!(p.poll(), Step::MemberLogs(vec![doc(2)]));
    assert_eq!(fetch_docs(&p.poll()), [(doc(2), 4)]);
    p.page(vec![], false).unwrap();
    until_asked(&mut p);
    let (held_back, refused) = finish(p);
    assert_eq!(held_back, BTreeSet::from([doc(1)]));
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].seq, 1);
    assert!(refused[0].reason.starts_with("access log: entry 1"));
}

#[test]
fn entries_refused_when_taken_hold_their_document_back() {
    let mut p = Pulling::new(here([(1, held(1, 4, true))]));
    p.poll();
    p.listed(&[head(1, 2, 6), head(AUDIT, 0, 0)]).unwrap();
    p.poll();
    p.access(doc(1), 1, entries(1, 1, 1)).unwrap();
    let Step::Signers { entries, .. } = p.poll() else {
        panic!()
    };
    p.signers(doc(1), entries, Ok(()));
    p.poll();
    p.access_taken(vec![(doc(1), "does not verify".into())]);
    let (names, step) = until_asked(&mut p);
    assert_eq!(names, ["Apply"]);
    assert_eq!(step, Step::Done, "nothing of it is fetched");
    assert_eq!(finish(p).0, BTreeSet::from([doc(1)]));
}

#[test]
fn a_disposal_is_taken_alone_and_its_document_is_not_fetched() {
    let mut p = Pulling::new(here([
        (1, held(1, 4, false)),
        (2, held(1, 4, false)),
        (3, held(1, 4, false)),
    ]));
    p.poll();
    p.listed(&[
        head(1, 5, 9),
        head(2, 3, 9),
        head(3, 5, 9),
        head(AUDIT, 0, 0),
    ])
    .unwrap();
    let (names, _) = until_asked(&mut p);
    assert_eq!(names, ["Shares"]);
    let disposal = entry(1, 4, DocOp::Dispose);
    // Only the disposal is sent: the log before it is gone, and its
    // length is not held against it.
    p.access(doc(1), 1, vec![disposal.clone()]).unwrap();
    assert_eq!(
        p.poll(),
        Step::TakeDisposal {
            doc: doc(1),
            entry: disposal
        }
    );
    p.disposal_taken(doc(1), Taken::Purged);
    p.poll();
    p.access(doc(2), 1, vec![entry(2, 1, DocOp::Dispose)])
        .unwrap();
    p.poll();
    p.disposal_taken(doc(2), Taken::Refused("signed by a revoked device".into()));
    // One kept under a legal hold is neither fetched nor refused.
    assert_eq!(
        p.poll(),
        Step::GetAccess {
            doc: doc(3),
            from: 1
        }
    );
    p.access(doc(3), 1, vec![entry(3, 4, DocOp::Dispose)])
        .unwrap();
    assert!(matches!(p.poll(), Step::TakeDisposal { .. }));
    p.disposal_taken(doc(3), Taken::KeptUnderHold);
    let (_, step) = until_asked(&mut p);
    assert_eq!(step, Step::Done, "none is fetched");
    let (held_back, refused) = finish(p);
    assert_eq!(held_back, BTreeSet::from([doc(2)]));
    assert_eq!(refused.len(), 1);
}

#[test]
fn access_entries_are_taken_a_few_dozen_documents_at_a_time() {
    let n = APPLY_CHUNK as u8 + 3;
    let mut p = Pulling::new(here((1..=n).map(|d| (d, held(1, 0, true)))));
    p.poll();
    let mut heads: Vec<DocHead> = (1..=n).map(|d| head(d, 2, 0)).collect();
    heads.push(head(AUDIT, 0, 0));
    p.listed(&heads).unwrap();
    for d in 1..=n {
        p.poll();
        p.access(doc(d), 1, entries(d, 1, 1)).unwrap();
        let Step::Signers { entries, .. } = p.poll() else {
            panic!()
        };
        p.signers(doc(d), entries, Ok(()));
    }
    let Step::TakeAccess(first) = p.poll() else {
        panic!()
    };
    assert_eq!(first.len(), APPLY_CHUNK);
    p.access_taken(vec![]);
    let Step::TakeAccess(second) = p.poll() else {
        panic!()
    };
    assert_eq!(second.len(), 3);
    p.access_taken(vec![]);
    assert!(matches!(p.poll(), Step::MemberLogs(docs) if docs.len() == n as usize));
}

#[test]
fn a_page_out_of_order_is_refused_and_one_not_asked_for_fails() {
    let mut p = Pulling::new(here([(1, held(1, 4, true))]));
    p.poll();
    p.listed(&[head(1, 1, 8), head(AUDIT, 0, 0)]).unwrap();
    until_asked(&mut p);
    p.page(vec![stored(1, 3), stored(1, 6)], true).unwrap();
    let (names, step) = until_asked(&mut p);
    assert_eq!(names, ["Take", "Fetched"]);
    assert_eq!(fetch_docs(&step), [(doc(1), 6)]);
    assert_eq!(
        p.page(vec![stored(7, 9)], false),
        Err(PageFault::NotAskedFor(doc(7)))
    );
    let (_, refused) = finish(p);
    assert_eq!(refused[0].seq, 3);
}

#[test]
fn entries_that_do_not_follow_the_last_held_are_fetched_again_whole() {
    let mut mine = held(2, 5, true);
    mine.head = Some(casebook_shared::ids::Hash([7; 32]));
    let mut p = Pulling::new(here([(1, mine)]));
    p.poll();
    p.listed(&[head(1, 3, 5), head(AUDIT, 0, 0)]).unwrap();
    assert_eq!(
        p.poll(),
        Step::GetAccess {
            doc: doc(1),
            from: 2
        }
    );
    p.access(doc(1), 2, entries(1, 2, 1)).unwrap();
    assert_eq!(
        p.poll(),
        Step::GetAccess {
            doc: doc(1),
            from: 0
        },
        "its first entry names another previous"
    );
    let whole = entries(1, 0, 3);
    p.access(doc(1), 0, whole.clone()).unwrap();
    assert!(matches!(p.poll(), Step::Signers { .. }));
    p.signers(doc(1), whole, Ok(()));
    match p.poll() {
        Step::TakeAccess(take) => assert!(take[0].fork),
        s => panic!("{s:?}"),
    }
}

/// Where the relay showed it lost data, every document held here that it
/// lists with envelopes is fetched whole, however far it was seen; not
/// this account's audit document, one the relay lists empty, nor one not
/// held here (a new share, fetched from its start anyway).
#[test]
fn after_a_loss_every_held_document_is_fetched_whole() {
    let mut p = Pulling::new(here([
        (1, held(1, 5, true)),
        (2, held(1, 9, false)),
        (3, held(1, 0, true)),
        (AUDIT, held(1, 4, true)),
    ]));
    assert_eq!(p.poll(), Step::List);
    p.recheck();
    p.listed(&[
        head(1, 1, 5),
        head(2, 1, 12),
        head(3, 1, 0),
        head(4, 0, 3),
        head(AUDIT, 1, 4),
    ])
    .unwrap();
    assert!(p.rechecking());
    let (_, step) = until_asked(&mut p);
    let mut asked = fetch_docs(&step);
    asked.sort();
    assert_eq!(asked, [(doc(1), 0), (doc(2), 0), (doc(4), 0)]);
    assert_eq!(p.rechecked(), BTreeSet::from([doc(1), doc(2)]));
}

/// A rewind alone fetches no other document whole this pull: it may be
/// held back (its access log refused) and rewound again each round, and
/// the shell asks for the whole fetch only once it was applied.
#[test]
fn a_rewound_document_alone_fetches_no_other_whole() {
    let mut p = Pulling::new(here([(1, held(1, 5, true)), (2, held(1, 9, true))]));
    assert_eq!(p.poll(), Step::List);
    p.listed(&[head(1, 1, 3), head(2, 1, 9), head(AUDIT, 0, 0)])
        .unwrap();
    let (_, step) = until_asked(&mut p);
    assert_eq!(fetch_docs(&step), [(doc(1), 0)]);
    assert_eq!(p.rewound(), [doc(1)]);
    assert!(p.rechecked().is_empty());
}

/// Where a loss was shown and a document is rewound too, the rewound one
/// heals as before and every other is fetched whole.
#[test]
fn a_rewound_document_is_not_fetched_whole_twice() {
    let mut p = Pulling::new(here([(1, held(1, 5, true)), (2, held(1, 9, true))]));
    assert_eq!(p.poll(), Step::List);
    p.recheck();
    p.listed(&[head(1, 1, 3), head(2, 1, 9), head(AUDIT, 0, 0)])
        .unwrap();
    let (_, step) = until_asked(&mut p);
    let mut asked = fetch_docs(&step);
    asked.sort();
    assert_eq!(asked, [(doc(1), 0), (doc(2), 0)]);
    assert_eq!(p.rewound(), [doc(1)]);
    assert_eq!(p.rechecked(), BTreeSet::from([doc(2)]));
}

/// Without a loss shown, nothing is fetched again.
#[test]
fn without_a_loss_nothing_is_fetched_whole() {
    let mut p = Pulling::new(here([(1, held(1, 5, true))]));
    assert_eq!(p.poll(), Step::List);
    p.listed(&[head(1, 1, 5), head(AUDIT, 0, 0)]).unwrap();
    assert!(!p.rechecking());
    assert_eq!(until_asked(&mut p).1, Step::Done);
}
