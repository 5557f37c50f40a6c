//! The order of a round, driven without a relay or a store: each test
//! plays the outcomes a shell would hand back and reads the phases.

use super::*;
use crate::sync::HeldEdits;

fn doc(n: u8) -> DocId {
    DocId([n; 16])
}

/// What the relay and store answer, phase by phase.
#[derive(Default)]
struct Answers {
    early: (usize, usize),
    /// The pulls' outcomes in order: documents held back, envelopes
    /// received, refusals added. Missing ones are empty.
    pulls: Vec<(BTreeSet<DocId>, usize, Vec<RefusedEnvelope>)>,
    /// The pushes' outcomes in order: acknowledged, moved. Missing: (0, 0).
    pushes: Vec<(usize, usize)>,
    audit: usize,
    snapshots: usize,
    /// The documents each pull in order found lacking changes. Missing
    /// ones are empty.
    lacking: Vec<BTreeSet<DocId>>,
}

/// Runs a round to the end and names each phase it went through.
fn run(restored: bool, answers: Answers) -> (Vec<String>, SyncReport) {
    let mut round = Round::new(restored);
    let mut names = Vec::new();
    let mut pulls = answers.pulls.into_iter();
    let mut pushes = answers.pushes.into_iter();
    let mut lacking = answers.lacking.into_iter();
    // Snapshots are due once: the first Snapshots phase sends them.
    let mut snapshots = answers.snapshots;
    for _ in 0..100 {
        let phase = round.poll();
        names.push(match &phase {
            Phase::Progress(Progress::Pushed { .. }) => "Pushed".to_string(),
            Phase::Progress(Progress::Visible { .. }) => "Visible".to_string(),
            // What each phase holds back, by the first byte of its id.
            Phase::Upkeep(held)
            | Phase::Push(held)
            | Phase::PushAudit(held)
            | Phase::Snapshots(held)
                if !held.is_empty() =>
            {
                let ids: Vec<String> = held.iter().map(|d| d.0[0].to_string()).collect();
                let name = format!("{phase:?}");
                format!("{}[{}]", name.split('(').next().unwrap(), ids.join(","))
            }
            p => format!("{p:?}").split('(').next().unwrap().to_string(),
        });
        match phase {
            Phase::PushEarly => round.sent_early(answers.early.0, answers.early.1),
            Phase::Accounts => round.accounts_read(),
            Phase::Pull => {
                let (held, received, refused) = pulls.next().unwrap_or_default();
                round.report().received += received;
                round.report().refused.extend(refused);
                round.pulled(held, lacking.next().unwrap_or_default());
            }
            Phase::Push(_) => {
                let (acked, moved) = pushes.next().unwrap_or_default();
                // Each push reports what it held.
                round.report().held.push(HeldEdits {
                    doc: doc(9),
                    edits: 1,
                    reason: "read-only".into(),
                    case: None,
                    case_name: None,
                    private: false,
                    to_settle: false,
                });
                round.pushed(acked, moved);
            }
            Phase::PushAudit(_) => round.audit_sent(answers.audit),
            Phase::Snapshots(_) => round.snapshots_sent(std::mem::take(&mut snapshots)),
            Phase::ForgetRestored | Phase::Progress(_) | Phase::Upkeep(_) => {}
            Phase::Done => return (names, round.finish()),
        }
    }
    panic!("the round did not end: {names:?}");
}

fn refusal(d: u8, seq: u64) -> RefusedEnvelope {
    RefusedEnvelope {
        doc: doc(d),
        seq,
        reason: "bad signature".into(),
    }
}

#[test]
fn a_round_with_nothing_to_send_pulls_once() {
    let (phases, report) = run(false, Answers::default());
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep Push PushAudit Snapshots Done"
    );
    assert_eq!(report.pushed, 0);
    assert_eq!(report.held.len(), 1);
}

#[test]
fn what_was_sent_is_pulled_back_before_snapshots() {
    let answers = Answers {
        pushes: vec![(3, 0)],
        pulls: vec![Default::default(), (BTreeSet::new(), 5, vec![])],
        snapshots: 2,
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    // The changes that follow the snapshots go in the same round, and are
    // pulled back as every push is.
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep Push PushAudit Pull Snapshots Push PushAudit Pull Snapshots Done"
    );
    assert_eq!(report.pushed, 3);
    assert_eq!(report.received, 5);
    assert_eq!(report.snapshots_out, 2);
}

#[test]
fn the_push_after_snapshots_leaves_alone_what_the_pull_held_back() {
    let held: BTreeSet<DocId> = [doc(4)].into();
    let answers = Answers {
        pulls: vec![(held, 0, vec![])],
        snapshots: 1,
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep[4] Push[4] PushAudit[4] Snapshots[4] Push[4] PushAudit[4] Snapshots[4] Done"
    );
    assert_eq!(report.held.len(), 1, "held edits reported once");
}

#[test]
fn what_the_echo_pull_holds_back_waits_for_the_rest_of_the_round() {
    let answers = Answers {
        pushes: vec![(1, 0)],
        pulls: vec![Default::default(), ([doc(5)].into(), 0, vec![])],
        snapshots: 1,
        ..Answers::default()
    };
    let (phases, _) = run(false, answers);
    // Neither a snapshot nor the push after it sends anything of a case
    // whose access log the relay changed between the two pulls.
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep Push PushAudit Pull Snapshots[5] Push[5] PushAudit[5] Pull Snapshots[5] Done"
    );
}

#[test]
fn audit_entries_alone_are_pulled_back_too() {
    let (phases, _) = run(
        false,
        Answers {
            audit: 1,
            ..Answers::default()
        },
    );
    assert_eq!(phases.iter().filter(|p| *p == "Pull").count(), 2);
}

#[test]
fn early_changes_count_as_pushed_and_are_pulled_back() {
    let (phases, report) = run(
        false,
        Answers {
            early: (2, 1),
            ..Answers::default()
        },
    );
    assert_eq!(&phases[..2], ["PushEarly", "Pushed"]);
    assert_eq!(phases.iter().filter(|p| *p == "Pull").count(), 2);
    assert_eq!(report.pushed_first, 2);
    assert_eq!(report.pushed, 2);
    assert_eq!(report.access_moved, 1);
}

#[test]
fn access_moved_is_caught_up_on_at_most_twice() {
    let answers = Answers {
        pushes: vec![(1, 2), (0, 1), (0, 1), (9, 9)],
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep Push Accounts Pull Upkeep Push Accounts Pull Upkeep Push PushAudit Pull Snapshots Done"
    );
    assert_eq!(MOVED_TRIES, 2);
    assert_eq!(report.pushed, 1);
    assert_eq!(report.access_moved, 4);
    assert_eq!(report.left_queued, 1, "what the last try had refused");
    // What the last try held, not each try's.
    assert_eq!(report.held.len(), 1);
}

#[test]
fn a_try_that_lands_everything_stops_catching_up() {
    let answers = Answers {
        pushes: vec![(0, 1), (1, 0)],
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    assert_eq!(phases.iter().filter(|p| *p == "Push").count(), 2);
    assert_eq!(report.pushed, 1);
    assert_eq!(report.access_moved, 1);
    assert_eq!(report.left_queued, 0);
}

#[test]
fn documents_held_back_are_neither_kept_up_nor_sent() {
    let answers = Answers {
        pulls: vec![([doc(1)].into(), 0, vec![refusal(1, 4)])],
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Upkeep[1] Push[1] PushAudit[1] Snapshots[1] Done"
    );
    assert_eq!(report.refused.len(), 1);
}

#[test]
fn what_others_wrote_is_visible_before_anything_is_sent() {
    let answers = Answers {
        pulls: vec![(BTreeSet::new(), 4, vec![])],
        ..Answers::default()
    };
    let (phases, _) = run(false, answers);
    let visible = phases.iter().position(|p| p == "Visible").unwrap();
    let push = phases.iter().position(|p| p == "Push").unwrap();
    assert_eq!(phases[visible - 1], "Pull");
    assert!(visible < push);
    let (phases, _) = run(false, Answers::default());
    assert!(!phases.contains(&"Visible".to_string()));
}

#[test]
fn a_restored_device_skips_its_echoes_again_only_after_a_clean_first_pull() {
    let (phases, _) = run(true, Answers::default());
    assert_eq!(phases[3], "ForgetRestored", "{phases:?}");

    let refused = Answers {
        pulls: vec![(BTreeSet::new(), 0, vec![refusal(1, 1)])],
        ..Answers::default()
    };
    let (phases, _) = run(true, refused);
    assert!(!phases.contains(&"ForgetRestored".to_string()));

    let held = Answers {
        pulls: vec![([doc(2)].into(), 0, vec![])],
        ..Answers::default()
    };
    let (phases, _) = run(true, held);
    assert!(!phases.contains(&"ForgetRestored".to_string()));

    // Not before anything is sent: the echo pull would take this round's
    // own sends as news.
    let sent = Answers {
        pushes: vec![(1, 0)],
        ..Answers::default()
    };
    let (phases, _) = run(true, sent);
    assert_eq!(phases.iter().filter(|p| *p == "ForgetRestored").count(), 1);
    let forget = phases.iter().position(|p| p == "ForgetRestored").unwrap();
    assert!(forget < phases.iter().position(|p| p == "Push").unwrap());

    let (phases, _) = run(false, Answers::default());
    assert!(!phases.contains(&"ForgetRestored".to_string()));
}

#[test]
fn a_refusal_met_by_two_pulls_is_one_refusal() {
    let answers = Answers {
        pushes: vec![(1, 0)],
        pulls: vec![
            (BTreeSet::new(), 0, vec![refusal(1, 4), refusal(2, 1)]),
            (BTreeSet::new(), 0, vec![refusal(1, 4)]),
        ],
        ..Answers::default()
    };
    let (_, report) = run(false, answers);
    assert_eq!(report.refused.len(), 2);
}

#[test]
fn a_refusal_goes_into_the_trail_once_a_session() {
    let mut audited = HashSet::new();
    let line = refusal_line(&[refusal(1, 4), refusal(1, 5)], &mut audited).unwrap();
    assert!(line.starts_with("sync refused 2 envelope(s) of "), "{line}");
    assert!(line.contains(&doc(1).short()));
    assert_eq!(refusal_line(&[refusal(1, 4)], &mut audited), None);
    let again = refusal_line(&[refusal(1, 4), refusal(3, 1)], &mut audited).unwrap();
    assert!(
        again.starts_with("sync refused 1 envelope(s) of "),
        "{again}"
    );
    assert!(again.contains(&doc(3).short()));
    assert_eq!(refusal_line(&[], &mut audited), None);
}

#[test]
fn a_document_that_came_to_lack_changes_is_pulled_again_once() {
    let waits = |d: u8, seq: u64| RefusedEnvelope {
        doc: doc(d),
        seq,
        reason: WAITS.into(),
    };
    let answers = Answers {
        // The first pull: a comment of document 1 waits, document 2 has a
        // bad signature and a comment that waits too, and only document 1
        // came to lack changes. The second finds it lacking still.
        pulls: vec![
            (
                BTreeSet::new(),
                1,
                vec![waits(1, 7), refusal(2, 8), waits(2, 9)],
            ),
            (BTreeSet::new(), 1, vec![waits(1, 7)]),
        ],
        lacking: vec![[doc(1)].into(), [doc(1)].into(), [doc(1)].into()],
        ..Answers::default()
    };
    let (phases, report) = run(false, answers);
    assert_eq!(
        phases.join(" "),
        "PushEarly Accounts Pull Pull Visible Upkeep Push PushAudit Snapshots Done"
    );
    // What the second pull said of document 1 stands, once; document 2's
    // refusals stand as the first pull made them.
    assert_eq!(report.received, 2);
    let refused: Vec<(DocId, u64)> = report.refused.iter().map(|r| (r.doc, r.seq)).collect();
    assert_eq!(refused, [(doc(2), 8), (doc(2), 9), (doc(1), 7)]);
}
