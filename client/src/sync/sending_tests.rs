//! The push half's rules, driven without a relay or a store: each test
//! hands [`Sending`] an outbox, the terms of each document and the relay's
//! answers, and reads what it did.

use super::*;

fn doc(n: u8) -> DocId {
    DocId([n; 16])
}

fn row(id: i64, d: u8, kind: OutKind) -> Outgoing {
    Outgoing {
        id,
        doc: doc(d),
        kind,
        payload: zeroize::Zeroizing::new(vec![]),
        envelope: None,
        env_id: [0; 24],
    }
}

fn writer() -> Option<DocTerms> {
    Some(DocTerms {
        role: Some(Role::Write),
        epoch: 3,
        disposed: false,
    })
}

/// What a run did, step by step, and how the store and relay answered.
#[derive(Default)]
struct Run {
    /// Each upload's rows (by id), in order.
    uploads: Vec<Vec<i64>>,
    /// Access rows sent, retired rows, in order.
    access: Vec<i64>,
    retired: Vec<i64>,
    acked: Vec<i64>,
    moved: usize,
    failed: Option<ErrorCode>,
    last_progress: Option<(usize, usize)>,
    terms_asked: Vec<DocId>,
    /// What went to the relay, in order: `A` access entries, `U` an upload.
    order: String,
}

/// Runs `s` to the end: terms from `terms`, envelopes named by their row
/// id (a row `unsealable` lists fails to seal), and the relay's answer to
/// each envelope from `answer`.
fn drive(
    mut s: Sending,
    terms: impl Fn(DocId) -> Option<DocTerms>,
    unsealable: &[i64],
    answer: impl Fn(i64) -> Result<u64, ErrorCode>,
) -> (Run, Sending) {
    let mut run = Run::default();
    for _ in 0..10_000 {
        match s.poll() {
            Step::Terms(d) => {
                run.terms_asked.push(d);
                s.terms(d, terms(d));
            }
            Step::Seal(r, epoch) => {
                assert_eq!(epoch, 3, "sealed under the newest epoch");
                if unsealable.contains(&r.id) {
                    s.unsealable(r.doc);
                } else {
                    s.sealed(r.id, r.doc, r.id.to_be_bytes().to_vec());
                }
            }
            Step::Retire(id) => run.retired.push(id),
            Step::Access(r) => {
                run.order.push('A');
                run.access.push(r.id);
                s.access_sent(true);
            }
            Step::Upload(envelopes) => {
                let ids: Vec<i64> = envelopes
                    .iter()
                    .map(|e| i64::from_be_bytes(e[..8].try_into().unwrap()))
                    .collect();
                run.order.push('U');
                let results: Vec<_> = ids.iter().map(|id| answer(*id)).collect();
                let up = s.uploaded(&results);
                run.acked.extend(up.acked.iter().map(|(id, _, _)| *id));
                run.moved += up.moved;
                run.uploads.push(ids);
                if up.failed.is_some() {
                    run.failed = up.failed;
                    return (run, s);
                }
            }
            Step::Progress { done, total } => run.last_progress = Some((done, total)),
            Step::Done => return (run, s),
        }
    }
    panic!("sending never finished");
}

fn held_reasons(s: &Sending) -> Vec<(DocId, usize, String)> {
    s.held()
        .iter()
        .map(|h| (h.doc, h.edits, h.reason.clone()))
        .collect()
}

#[test]
fn access_entries_go_first_then_changes_in_one_upload() {
    let rows = vec![
        row(1, 1, OutKind::Change),
        row(2, 1, OutKind::Access),
        row(3, 2, OutKind::Comment),
        row(4, 1, OutKind::Change),
    ];
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, s) = drive(s, |_| writer(), &[], |id| Ok(100 + id as u64));
    assert_eq!(run.access, vec![2]);
    assert_eq!(run.order, "AU", "the access entries before the changes");
    assert_eq!(run.uploads, vec![vec![1, 3, 4]]);
    assert_eq!(run.acked, vec![1, 3, 4]);
    assert_eq!(s.acknowledged(), 4);
    assert_eq!(
        run.last_progress,
        Some((4, 4)),
        "the last progress comes after the upload"
    );
    // Each document's terms are read once, after its access entries went.
    assert_eq!(run.terms_asked, vec![doc(1), doc(2)]);
}

#[test]
fn a_document_whose_log_did_not_verify_keeps_all_it_queued() {
    let rows = vec![
        row(1, 1, OutKind::Access),
        row(2, 1, OutKind::Change),
        row(3, 2, OutKind::Change),
    ];
    let s = Sending::new(Mode::Round, rows, [doc(1)].into());
    let (run, s) = drive(s, |_| writer(), &[], |id| Ok(id as u64));
    assert!(run.access.is_empty());
    assert_eq!(run.uploads, vec![vec![3]]);
    assert_eq!(
        held_reasons(&s),
        vec![(
            doc(1),
            2,
            "the relay's access log for it, or an account log it rests on, was refused this round"
                .into()
        )]
    );
}

#[test]
fn what_a_role_no_longer_allows_is_held_with_all_that_builds_on_it() {
    let comment_only = |d: DocId| {
        Some(DocTerms {
            role: if d == doc(1) {
                Some(Role::Comment)
            } else {
                None
            },
            epoch: 3,
            disposed: false,
        })
    };
    let rows = vec![
        row(1, 1, OutKind::Comment),
        row(2, 1, OutKind::Change),
        row(3, 1, OutKind::Comment),
        row(4, 2, OutKind::Change),
    ];
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, s) = drive(s, comment_only, &[], |id| Ok(id as u64));
    // The comment before the edit goes; the one after builds on the edit.
    assert_eq!(run.uploads, vec![vec![1]]);
    assert_eq!(
        held_reasons(&s),
        vec![
            (
                doc(1),
                2,
                "it is an edit, and this account may now only comment".into()
            ),
            (doc(2), 1, "this account may no longer write it".into()),
        ]
    );
}

#[test]
fn changes_to_a_document_disposed_of_here_are_dropped() {
    let rows = vec![row(1, 1, OutKind::Change), row(2, 2, OutKind::Change)];
    let terms = |d: DocId| {
        Some(DocTerms {
            disposed: d == doc(1),
            ..writer().unwrap()
        })
    };
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, _) = drive(s, terms, &[], |id| Ok(id as u64));
    assert_eq!(run.retired, vec![1]);
    assert_eq!(run.uploads, vec![vec![2]]);
}

#[test]
fn the_relay_forbidding_holds_a_change_and_any_other_refusal_fails_the_round() {
    let rows = (1..=3).map(|i| row(i, i as u8, OutKind::Change)).collect();
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, s) = drive(
        s,
        |_| writer(),
        &[],
        |id| match id {
            1 => Err(ErrorCode::Forbidden),
            2 => Err(ErrorCode::BadRequest),
            _ => Ok(9),
        },
    );
    assert_eq!(run.acked, vec![3], "what was stored is still recorded");
    assert_eq!(run.failed, Some(ErrorCode::BadRequest));
    assert_eq!(
        held_reasons(&s),
        vec![(
            doc(1),
            1,
            "the relay says this account may not write it".into()
        )]
    );
}

#[test]
fn a_long_outbox_goes_in_uploads_of_at_most_max_upload() {
    let n = MAX_UPLOAD as i64 * 2 + 5;
    let rows = (1..=n).map(|i| row(i, 1, OutKind::Change)).collect();
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, s) = drive(s, |_| writer(), &[], |id| Ok(id as u64));
    let sizes: Vec<usize> = run.uploads.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![MAX_UPLOAD, MAX_UPLOAD, 5]);
    assert_eq!(s.acknowledged(), n as usize);
    assert_eq!(run.last_progress, Some((n as usize, n as usize)));
}

#[test]
fn early_sending_leaves_to_the_round_whatever_it_cannot_judge() {
    let rows = vec![
        row(1, 1, OutKind::Change),
        row(2, 2, OutKind::Change),
        row(3, 3, OutKind::Change),
        row(4, 3, OutKind::Change),
        row(5, 4, OutKind::Change),
        row(6, 5, OutKind::Change),
        row(7, 2, OutKind::Change),
    ];
    // Document 1: terms not known well enough; 2: its first row does not
    // seal; 4: read-only; 5: held last round.
    let terms = |d: DocId| match d.0[0] {
        1 => None,
        4 => Some(DocTerms {
            role: Some(Role::Read),
            ..writer().unwrap()
        }),
        _ => writer(),
    };
    let s = Sending::new(Mode::Early, rows, BTreeSet::new()).skip([doc(5)]);
    let (run, s) = drive(s, terms, &[2], |id| match id {
        4 => Err(ErrorCode::AccessMoved),
        _ => Ok(id as u64),
    });
    assert_eq!(run.uploads, vec![vec![3, 4]]);
    assert_eq!(run.acked, vec![3]);
    assert_eq!(run.moved, 1);
    assert!(
        held_reasons(&s).is_empty(),
        "nothing is reported held early"
    );
    assert_eq!(run.last_progress, None);
}

#[test]
fn early_sending_is_one_upload_and_never_sends_access_entries() {
    let n = MAX_UPLOAD as i64 + 3;
    let rows = (1..=n).map(|i| row(i, 1, OutKind::Change)).collect();
    let (run, _) = drive(
        Sending::new(Mode::Early, rows, BTreeSet::new()),
        |_| writer(),
        &[],
        |id| Ok(id as u64),
    );
    assert_eq!(run.uploads.len(), 1);
    assert_eq!(run.uploads[0].len(), MAX_UPLOAD);

    let rows = vec![row(1, 1, OutKind::Access), row(2, 2, OutKind::Change)];
    let (run, _) = drive(
        Sending::new(Mode::Early, rows, BTreeSet::new()),
        |_| writer(),
        &[],
        |id| Ok(id as u64),
    );
    assert!(run.access.is_empty() && run.uploads.is_empty());
}

#[test]
fn an_access_row_withdrawn_here_is_no_acknowledgement() {
    let rows = vec![row(1, 1, OutKind::Access), row(2, 1, OutKind::Change)];
    let mut s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let mut terms_asked_after_access = false;
    let mut access_done = false;
    loop {
        match s.poll() {
            Step::Access(_) => {
                access_done = true;
                s.access_sent(false);
            }
            Step::Terms(d) => {
                terms_asked_after_access = access_done;
                s.terms(d, writer());
            }
            Step::Seal(r, _) => s.sealed(r.id, r.doc, vec![0; 8]),
            Step::Upload(_) => {
                s.uploaded(&[Ok(1)]);
            }
            Step::Done => break,
            _ => {}
        }
    }
    assert!(
        terms_asked_after_access,
        "terms are read after the access rows"
    );
    assert_eq!(
        s.acknowledged(),
        1,
        "the withdrawn row is no acknowledgement"
    );
}

#[test]
fn a_change_sealed_before_a_new_epoch_landed_stays_queued_with_what_follows() {
    let n = MAX_UPLOAD as i64 + 2;
    let mut rows: Vec<Outgoing> = (1..=n).map(|i| row(i, 1, OutKind::Change)).collect();
    rows.push(row(n + 1, 2, OutKind::Change));
    let s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let (run, s) = drive(
        s,
        |_| writer(),
        &[],
        |id| match id {
            // Another document's change is taken as ever.
            id if id == n + 1 => Ok(1),
            _ => Err(ErrorCode::AccessMoved),
        },
    );
    // The rest of document 1 is not sent after its first batch was refused.
    assert_eq!(run.uploads.len(), 2);
    assert_eq!(run.uploads[1], vec![n + 1]);
    assert_eq!(run.moved, MAX_UPLOAD);
    assert_eq!(run.failed, None);
    assert_eq!(run.acked, vec![n + 1]);
    assert!(
        held_reasons(&s).is_empty(),
        "not held: sent again this round"
    );
}

/// The relay holds other bytes under a queued change's envelope id (an
/// earlier sealing reached it, and its echo never came back): the round
/// does not fail, and the row goes again, under a new id, once caught up.
#[test]
fn a_change_whose_id_the_relay_holds_other_bytes_under_goes_again() {
    let rows = vec![row(1, 1, OutKind::Change), row(2, 2, OutKind::Change)];
    let mut s = Sending::new(Mode::Round, rows, BTreeSet::new());
    let mut conflicted = Vec::new();
    loop {
        match s.poll() {
            Step::Terms(d) => s.terms(d, writer()),
            Step::Seal(r, _) => s.sealed(r.id, r.doc, r.id.to_be_bytes().to_vec()),
            Step::Upload(envelopes) => {
                let results: Vec<_> = envelopes
                    .iter()
                    .map(|e| match e[7] {
                        1 => Err(ErrorCode::Conflict),
                        _ => Ok(9),
                    })
                    .collect();
                let up = s.uploaded(&results);
                assert_eq!(up.failed, None, "the round goes on");
                assert_eq!(up.moved, 1);
                assert_eq!(up.acked, vec![(2, doc(2), 9)]);
                conflicted.extend(up.conflicted);
            }
            Step::Done => break,
            _ => {}
        }
    }
    assert_eq!(conflicted, [1]);
    assert!(held_reasons(&s).is_empty(), "not held: sent again");
}

/// The rows of each upload when every envelope is `size` bytes.
fn uploads_of(mode: Mode, rows: usize, size: usize) -> Vec<Vec<i64>> {
    let rows = (1..=rows as i64)
        .map(|i| row(i, 1, OutKind::Change))
        .collect();
    let mut s = Sending::new(mode, rows, BTreeSet::new());
    let mut uploads = Vec::new();
    loop {
        match s.poll() {
            Step::Terms(d) => s.terms(d, writer()),
            Step::Seal(r, _) => {
                let mut e = r.id.to_be_bytes().to_vec();
                e.resize(size, 0);
                s.sealed(r.id, r.doc, e);
            }
            Step::Upload(envelopes) => {
                let ids: Vec<i64> = envelopes
                    .iter()
                    .map(|e| i64::from_be_bytes(e[..8].try_into().unwrap()))
                    .collect();
                s.uploaded(&vec![Ok(1); ids.len()]);
                uploads.push(ids);
            }
            Step::Done => return uploads,
            _ => {}
        }
    }
}

#[test]
fn an_upload_holds_at_most_a_page_of_bytes() {
    let mib = 1024 * 1024;
    // The round sends a batch once it reaches the budget, and goes on.
    assert_eq!(
        uploads_of(Mode::Round, 5, 2 * mib),
        vec![vec![1, 2], vec![3, 4], vec![5]]
    );
    // Early, one upload within the budget; the rest waits for the round.
    assert_eq!(uploads_of(Mode::Early, 5, 2 * mib), vec![vec![1, 2]]);
    assert_eq!(uploads_of(Mode::Early, 5, 3 * mib), vec![vec![1]]);
}
