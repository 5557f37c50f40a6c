//! Property tests: replicas converge whatever the delivery order, and damaged
//! bytes are errors.

use super::tests::{AT, DEV_A, DEV_B, DEV_C, case_with_note, pairs};
use super::*;
use proptest::prelude::*;

/// One step of the convergence test.
#[derive(Debug, Clone)]
enum Op {
    Add {
        replica: usize,
        format: usize,
    },
    Edit {
        replica: usize,
        note: usize,
        field: usize,
        at: usize,
        text: String,
    },
    Sign {
        replica: usize,
        note: usize,
    },
    /// Delivers everything `from` has sent so far to `to`, mid-run, so later
    /// batches depend on changes from a third replica.
    Sync {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, 0..4usize).prop_map(|(replica, format)| Op::Add { replica, format }),
        6 => (0..3usize, any::<usize>(), any::<usize>(), any::<usize>(), "[a-z .]{0,12}")
            .prop_map(|(replica, note, field, at, text)| Op::Edit { replica, note, field, at, text }),
        1 => (0..3usize, any::<usize>()).prop_map(|(replica, note)| Op::Sign { replica, note }),
        1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

/// A tiny deterministic generator for the delivery order.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn run_op(docs: &mut [CaseDoc], sent: &mut [Vec<Vec<u8>>], counter: &mut usize, op: &Op) {
    match op {
        Op::Add { replica, format } => {
            *counter += 1;
            let input = NoteInput::new("2024-03-01", NoteFormat::ALL[*format]);
            docs[*replica]
                .add_note(input, &format!("r{replica}n{counter}"), "dev")
                .unwrap();
        }
        Op::Edit {
            replica,
            note,
            field,
            at,
            text,
        } => {
            let notes = docs[*replica].notes();
            if notes.is_empty() {
                return;
            }
            let n = &notes[note % notes.len()];
            let (name, old) = &n.fields[field % n.fields.len()];
            let at = at % (old.len() + 1);
            let new = format!("{}{text}{}", &old[..at], &old[at..]);
            match docs[*replica].edit_note(&n.id, &[(name.clone(), new)]) {
                Ok(()) | Err(NoteError::Signed(_)) => {}
                Err(e) => panic!("edit failed: {e}"),
            }
        }
        Op::Sign { replica, note } => {
            let notes = docs[*replica].notes();
            if notes.is_empty() {
                return;
            }
            let id = &notes[note % notes.len()].id;
            match docs[*replica].sign_note(id, "dev", AT) {
                Ok(()) | Err(NoteError::AlreadySigned(_)) => {}
                Err(e) => panic!("sign failed: {e}"),
            }
        }
        Op::Sync { from, to } => {
            if from != to {
                for batch in sent[*from].clone() {
                    docs[*to].apply(&batch).unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Three replicas edit independently, then every batch reaches every
    /// other replica in a random order, some twice; all end equal.
    #[test]
    fn replicas_converge(ops in prop::collection::vec(op(), 1..30), seed in any::<u64>()) {
        let mut first = case_with_note();
        let saved = first.save();
        let mut docs = vec![
            first,
            CaseDoc::load(&saved, DEV_B).unwrap(),
            CaseDoc::load(&saved, DEV_C).unwrap(),
        ];
        let mut last_sent: Vec<_> = docs.iter_mut().map(CaseDoc::heads).collect();
        let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
        let mut counter = 0;
        for op in &ops {
            run_op(&mut docs, &mut sent, &mut counter, op);
            // Each replica sends what is new since its last batch.
            for r in 0..3 {
                let batch = docs[r].changes_since(&last_sent[r]);
                if !batch.is_empty() {
                    sent[r].push(batch);
                    last_sent[r] = docs[r].heads();
                }
            }
        }

        let mut rng = SplitMix(seed);
        let mut deliveries = Vec::new();
        for (from, batches) in sent.iter().enumerate() {
            for batch in batches {
                for to in (0..3).filter(|&to| to != from) {
                    deliveries.push((to, batch.clone()));
                    if rng.below(3) == 0 {
                        deliveries.push((to, batch.clone()));
                    }
                }
            }
        }
        for i in (1..deliveries.len()).rev() {
            let j = rng.below(i + 1);
            deliveries.swap(i, j);
        }
        for (to, batch) in &deliveries {
            docs[*to].apply(batch).unwrap();
        }

        let notes = docs[0].notes();
        let mut heads = docs[0].heads();
        heads.sort();
        for doc in &mut docs {
            prop_assert!(doc.missing_deps().is_empty());
            prop_assert_eq!(&doc.notes(), &notes);
            let mut h = doc.heads();
            h.sort();
            prop_assert_eq!(&h, &heads);
            // What merged survives a save and reload.
            let reloaded = CaseDoc::load(&doc.save(), DEV_A).unwrap();
            prop_assert_eq!(&reloaded.notes(), &notes);
        }
    }

    /// Damaged bytes never panic, and a failed batch changes nothing.
    #[test]
    fn damaged_bytes_are_errors_not_panics(
        flips in prop::collection::vec((any::<usize>(), 1..=255u8), 1..4),
        cut in any::<usize>(),
        use_changes in any::<bool>(),
    ) {
        let mut doc = case_with_note();
        let before = doc.save();
        let base = doc.heads();
        doc.edit_note("n1", &pairs(&[("risk", "Denies SI.")])).unwrap();
        let mut bytes = if use_changes { doc.changes_since(&base) } else { doc.save() };
        for (at, x) in &flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        bytes.truncate(cut % (bytes.len() + 1) + 1);
        let _ = CaseDoc::load(&bytes, DEV_B);
        let mut target = CaseDoc::load(&before, DEV_C).unwrap();
        let heads = target.heads();
        if target.apply(&bytes).is_err() {
            prop_assert_eq!(target.heads(), heads);
        }
    }
}
