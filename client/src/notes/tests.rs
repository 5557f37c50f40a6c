//! Merging, validation and robustness tests for case and private documents.

use super::*;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use casebook_shared::ids::DocId;

pub(super) const DEV_A: &[u8] = b"device-a-0000000";
pub(super) const DEV_B: &[u8] = b"device-b-0000000";
pub(super) const DEV_C: &[u8] = b"device-c-0000000";
pub(super) const AT: &str = "2024-03-01T15:00:00Z";

pub(super) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn case_with_note() -> CaseDoc {
    let mut doc = CaseDoc::new("R. Client", "2024-01-05", DocId::random(), DEV_A).unwrap();
    let mut input = NoteInput::new("2024-03-01", NoteFormat::Soap);
    input.start_time = Some("14:00".into());
    input.duration = Some(50);
    input.fields = pairs(&[
        ("subjective", "The client reported poor sleep."),
        ("plan", "Continue CBT."),
    ]);
    doc.add_note(input, "n1", "aa").unwrap();
    doc
}

#[test]
fn concurrent_edits_to_one_note_both_survive() {
    let mut a = case_with_note();
    let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
    let base = a.heads();

    a.edit_note(
        "n1",
        &pairs(&[
            ("subjective", "The client reported restless sleep."),
            ("plan", "Continue CBT, fortnightly."),
        ]),
    )
    .unwrap();
    b.edit_note(
        "n1",
        &pairs(&[
            (
                "subjective",
                "The client reported poor sleep. Plan: sleep diary.",
            ),
            ("homework", "Keep a sleep diary."),
        ]),
    )
    .unwrap();

    let from_a = a.changes_since(&base);
    let from_b = b.changes_since(&base);
    assert_eq!(a.apply(&from_b).unwrap(), 1);
    assert_eq!(b.apply(&from_a).unwrap(), 1);
    // Duplicates are harmless.
    assert_eq!(a.apply(&from_b).unwrap(), 0);
    assert_eq!(b.apply(&from_a).unwrap(), 0);

    let note = a.note("n1").unwrap();
    assert_eq!(
        note.field("subjective"),
        "The client reported restless sleep. Plan: sleep diary."
    );
    assert_eq!(note.field("plan"), "Continue CBT, fortnightly.");
    assert_eq!(note.field("homework"), "Keep a sleep diary.");
    assert_eq!(a.notes(), b.notes());
    assert_eq!(a.heads(), b.heads());
    assert!(a.missing_deps().is_empty());
}

#[test]
fn out_of_order_batches_wait_for_their_dependencies() {
    let mut a = case_with_note();
    let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
    let base = a.heads();
    a.edit_note("n1", &pairs(&[("risk", "Denies SI.")]))
        .unwrap();
    let middle = a.heads();
    a.edit_note(
        "n1",
        &pairs(&[("risk", "Denies SI; safety plan reviewed.")]),
    )
    .unwrap();
    let first = a.changes_since(&base);
    let second = a.changes_since(&middle);

    assert_eq!(b.apply(&second).unwrap(), 0);
    assert_eq!(b.missing_deps(), middle);
    assert_eq!(b.note("n1").unwrap().field("risk"), "");
    // The waiting change survives a save.
    let mut b = CaseDoc::load(&b.save(), DEV_B).unwrap();
    assert_eq!(b.missing_deps(), middle);
    assert_eq!(b.apply(&first).unwrap(), 2);
    assert!(b.missing_deps().is_empty());
    assert_eq!(b.notes(), a.notes());
}

/// Why every device (and every copy open at once) needs its own actor: two
/// copies writing as one actor number their changes alike, and the second
/// copy's batch is refused.
#[test]
fn one_actor_on_two_diverged_copies_is_refused() {
    let mut a = case_with_note();
    let mut twin = CaseDoc::load(&a.save(), DEV_A).unwrap();
    let base = a.heads();
    a.edit_note("n1", &pairs(&[("risk", "Low.")])).unwrap();
    twin.edit_note("n1", &pairs(&[("goals", "Sleep.")]))
        .unwrap();
    let heads = a.heads();
    assert!(a.apply(&twin.changes_since(&base)).is_err());
    assert_eq!(a.heads(), heads);
}

#[test]
fn whole_history_loads_like_a_save() {
    let mut a = case_with_note();
    let history = a.changes_since(&[]);
    let mut b = CaseDoc::load(&history, DEV_B).unwrap();
    assert_eq!(b.notes(), a.notes());
    assert_eq!(b.heads(), a.heads());
    // A saved document is also a valid batch.
    let mut c = CaseDoc::load(&a.save(), DEV_C).unwrap();
    b.set_name("R. Client-Smith").unwrap();
    let saved_b = b.save();
    assert_eq!(c.apply(&saved_b).unwrap(), 1);
    assert_eq!(c.name(), "R. Client-Smith");
    // Heads the sender has never seen are ignored rather than refused.
    let unknown: ChangeHash = "aa".repeat(32).parse().unwrap();
    assert_eq!(a.changes_since(&[unknown]), a.changes_since(&[]));
}

#[test]
fn validation_errors() {
    let mut doc = case_with_note();
    let mut bad_date = NoteInput::new("2023-02-29", NoteFormat::Dap);
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n2", "aa"),
        Err(NoteError::InvalidDate(_))
    ));
    bad_date.date = "2024-02-29".into();
    bad_date.fields = pairs(&[("subjective", "x")]);
    let err = doc.add_note(bad_date.clone(), "n2", "aa").unwrap_err();
    assert!(matches!(err, NoteError::UnknownField { .. }));
    assert!(err.to_string().contains("data, assessment, plan"), "{err}");
    bad_date.fields = pairs(&[("data", "x"), ("data", "y")]);
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n2", "aa"),
        Err(NoteError::DuplicateField(_))
    ));
    bad_date.fields = pairs(&[("start_time", "25:00")]);
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n2", "aa"),
        Err(NoteError::InvalidTime(_))
    ));
    bad_date.fields = pairs(&[("duration", "an hour")]);
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n2", "aa"),
        Err(NoteError::InvalidDuration(_))
    ));
    bad_date.fields.clear();
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n/2", "aa"),
        Err(NoteError::InvalidNoteId(_))
    ));
    assert!(matches!(
        doc.add_note(bad_date.clone(), "n1", "aa"),
        Err(NoteError::NoteExists(_))
    ));
    assert!(matches!(
        doc.edit_note("nope", &[]),
        Err(NoteError::NoSuchNote(_))
    ));
    assert!(matches!(
        doc.edit_note("n1", &pairs(&[("date", "2024-02-30")])),
        Err(NoteError::InvalidDate(_))
    ));
    assert!(doc.set_profile(&pairs(&[("risk", "x")])).is_err());
    assert!(CaseDoc::new(" ", AT, DocId::random(), DEV_A).is_err());
    // Nothing above left a trace.
    assert_eq!(doc.notes().len(), 1);
    assert_eq!(doc.note("n1").unwrap().date, "2024-03-01");

    // Scalar fields given as fields override, and empty ones clear.
    doc.add_note(bad_date, "n2", "aa").unwrap();
    doc.edit_note(
        "n2",
        &pairs(&[
            ("date", "2024-03-02"),
            ("start_time", "9:30"),
            ("duration", "45"),
        ]),
    )
    .unwrap();
    let n2 = doc.note("n2").unwrap();
    assert_eq!(
        (n2.date.as_str(), n2.start_time.as_deref(), n2.duration),
        ("2024-03-02", Some("09:30"), Some(45))
    );
    doc.edit_note("n2", &pairs(&[("start_time", ""), ("duration", " ")]))
        .unwrap();
    let n2 = doc.note("n2").unwrap();
    assert_eq!((n2.start_time, n2.duration), (None, None));
}

#[test]
fn signed_notes_take_addenda_only() {
    let mut doc = case_with_note();
    assert!(matches!(
        doc.add_addendum("n1", "aa", AT, "Too early."),
        Err(NoteError::NotSigned(_))
    ));
    doc.sign_note("n1", "aa", AT).unwrap();
    let signed = doc.note("n1").unwrap();
    assert_eq!(signed.signed_by.as_deref(), Some("aa"));

    let err = doc
        .edit_note("n1", &pairs(&[("plan", "Changed my mind.")]))
        .unwrap_err();
    assert!(matches!(err, NoteError::Signed(_)));
    assert!(err.to_string().contains("addendum"), "{err}");
    let twice = doc.sign_note("n1", "aa", AT).unwrap_err();
    assert!(matches!(twice, NoteError::AlreadySigned(_)));
    assert!(twice.to_string().contains("already signed"), "{twice}");

    doc.add_addendum(
        "n1",
        "aa",
        "2024-03-02T09:00:00Z",
        "Client called: sleep improved.",
    )
    .unwrap();
    doc.add_comment(
        "n1",
        "bb",
        "2024-03-02T10:00:00Z",
        "Consider a sleep referral.",
    )
    .unwrap();
    assert!(matches!(
        doc.add_addendum("n1", "aa", AT, "  "),
        Err(NoteError::Empty(_))
    ));
    let note = doc.note("n1").unwrap();
    assert_eq!(note.fields, signed.fields);
    assert_eq!(note.field("subjective"), "The client reported poor sleep.");
    assert_eq!(note.addenda.len(), 1);
    assert_eq!(note.addenda[0].text, "Client called: sleep improved.");
    assert_eq!(note.comments[0].by, "bb");
    assert!(note.late_edits.is_empty());
    assert!(!note.signature_broken);
}

#[test]
fn edit_concurrent_with_signing_is_shown_apart_alike_everywhere() {
    let mut a = case_with_note();
    let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
    let base = a.heads();
    let signed_plan = a.note("n1").unwrap().field("plan").to_owned();
    a.sign_note("n1", "aa", AT).unwrap();
    b.edit_note(
        "n1",
        &pairs(&[("plan", "Continue CBT weekly."), ("duration", "55")]),
    )
    .unwrap();
    let (from_a, from_b) = (a.changes_since(&base), b.changes_since(&base));
    a.apply(&from_b).unwrap();
    b.apply(&from_a).unwrap();
    for doc in [&a, &b] {
        let n = doc.note("n1").unwrap();
        assert_eq!(
            n.field("plan"),
            signed_plan,
            "the note shows what was signed"
        );
        assert_eq!(n.duration, Some(50));
        assert!(!n.signature_broken);
        let late: Vec<_> = n.late_edits.iter().map(|l| l.field.as_str()).collect();
        assert_eq!(late, ["duration", "plan"]);
        assert_eq!(n.late_edits[1].merged, "Continue CBT weekly.");
        // Listings agree with the single-note reader.
        assert_eq!(doc.notes().into_iter().find(|x| x.id == "n1").unwrap(), n);
    }
    assert_eq!(a.note("n1"), b.note("n1"), "both devices decide alike");

    a.settle_late_edit("n1", "plan", LateEditChoice::Addendum, "aa", AT)
        .unwrap();
    a.settle_late_edit("n1", "duration", LateEditChoice::Discard, "aa", AT)
        .unwrap();
    assert!(matches!(
        a.settle_late_edit("n1", "plan", LateEditChoice::Discard, "aa", AT),
        Err(NoteError::NoLateEdit(..))
    ));
    let n = a.note("n1").unwrap();
    assert!(n.late_edits.is_empty(), "{:?}", n.late_edits);
    assert_eq!(n.field("plan"), signed_plan);
    assert_eq!(n.addenda.len(), 1);
    assert!(n.addenda[0].text.contains("Continue CBT weekly."));
    assert!(n.addenda[0].text.contains("before it saw the signature"));
    let b_heads = b.heads();
    b.apply(&a.changes_since(&b_heads)).unwrap();
    assert_eq!(b.note("n1"), a.note("n1"));
}

#[test]
fn a_signature_whose_content_hash_does_not_match_is_broken() {
    let mut a = case_with_note();
    a.sign_note("n1", "aa", AT).unwrap();
    assert!(!a.note("n1").unwrap().signature_broken);
    // Another client (or a forger with write access) rewrites the hash.
    let mut raw = AutoCommit::load(&a.save()).unwrap();
    let notes = raw.get(ROOT, "notes").unwrap().unwrap().1;
    let note = raw.get(&notes, "n1").unwrap().unwrap().1;
    raw.put(&note, "signed_hash", "00").unwrap();
    let doc = CaseDoc::load(&raw.save(), DEV_B).unwrap();
    assert!(doc.note("n1").unwrap().signature_broken);

    // Heads the document does not hold: the signature points nowhere, and
    // no older state is shown as the signed one.
    let mut raw = AutoCommit::load(&a.save()).unwrap();
    let notes = raw.get(ROOT, "notes").unwrap().unwrap().1;
    let note = raw.get(&notes, "n1").unwrap().unwrap().1;
    raw.put(&note, "signed_heads", "ab".repeat(32)).unwrap();
    raw.delete(&note, "signed_hash").unwrap(); // as a note signed before hashes were kept
    let doc = CaseDoc::load(&raw.save(), DEV_B).unwrap();
    assert!(doc.note("n1").unwrap().signature_broken);
}

#[test]
fn summary_search_and_ids() {
    let mut doc = case_with_note();
    doc.add_note(NoteInput::new("2024-02-01", NoteFormat::Free), "n0", "aa")
        .unwrap();
    doc.set_profile(&pairs(&[("goals", "Better SLEEP hygiene.")]))
        .unwrap();
    doc.sign_note("n1", "aa", AT).unwrap();
    doc.add_comment("n1", "bb", AT, "sleep study?").unwrap();

    let summary = doc.summary();
    assert_eq!(summary.name, "R. Client");
    assert_eq!(summary.private_doc, doc.private_doc());
    let ids: Vec<_> = summary
        .notes
        .iter()
        .map(|n| (n.id.as_str(), n.signed))
        .collect();
    assert_eq!(ids, [("n0", false), ("n1", true)]);
    let json = serde_json::to_string(&summary).unwrap();
    assert_eq!(serde_json::from_str::<CaseSummary>(&json).unwrap(), summary);
    let note_json = serde_json::to_value(doc.note("n1").unwrap()).unwrap();
    assert_eq!(
        note_json["fields"]["subjective"],
        "The client reported poor sleep."
    );

    let hits = doc.search("sleep");
    let fields: Vec<_> = hits
        .iter()
        .map(|h| (h.note_id.as_deref(), h.field.as_str()))
        .collect();
    // One hit per note (and one for the name and profile), at the first
    // field that holds the word.
    assert_eq!(
        fields,
        [(None, "profile.goals"), (Some("n1"), "subjective")]
    );
    assert_eq!(hits[0].snippet, "Better SLEEP hygiene.");
    assert!(doc.search("").is_empty());

    let id = new_note_id();
    doc.add_note(NoteInput::new("2024-02-01", NoteFormat::Birp), &id, "aa")
        .unwrap();
    assert_eq!(doc.resolve_note_id(&id[..6]).unwrap(), id);
    assert!(matches!(
        doc.resolve_note_id("n"),
        Err(NoteError::AmbiguousNoteId(..))
    ));
    assert!(matches!(
        doc.resolve_note_id("zz"),
        Err(NoteError::NoSuchNote(_))
    ));
}

#[test]
fn markdown_round_trip_through_a_note() {
    let mut doc = case_with_note();
    let note = doc.note("n1").unwrap();
    let md = note.to_markdown();
    let edited = md.replace("Continue CBT.", "Continue CBT.\nReview in 4 weeks.");
    let fields = markdown_to_fields(note.format, &edited).unwrap();
    doc.edit_note("n1", &fields).unwrap();
    let after = doc.note("n1").unwrap();
    assert_eq!(after.field("plan"), "Continue CBT.\nReview in 4 weeks.");
    assert_eq!(after.field("subjective"), note.field("subjective"));
    assert_eq!(
        (after.start_time, after.duration),
        (note.start_time, note.duration)
    );
}

#[test]
fn private_notes() {
    let case = DocId::random();
    let mut a = PrivateDoc::new(case, DEV_A).unwrap();
    let id = a
        .add("Countertransference: felt protective.", "aa", AT)
        .unwrap();
    let mut b = PrivateDoc::load(&a.save(), DEV_B).unwrap();
    let base = a.heads();
    a.edit(&id, "Countertransference: felt very protective.")
        .unwrap();
    b.add("Dream material recurring.", "bb", "2024-03-02T09:00:00Z")
        .unwrap();
    b.edit(
        &id,
        "Countertransference: felt protective. Explore in supervision.",
    )
    .unwrap();
    a.apply(&b.changes_since(&base)).unwrap();
    b.apply(&a.changes_since(&base)).unwrap();
    assert_eq!(a.entries(), b.entries());
    assert_eq!(a.case_id(), Some(case));
    let entries = a.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].text,
        "Countertransference: felt very protective. Explore in supervision."
    );
    assert_eq!(
        a.search("DREAM")[0].note_id.as_deref(),
        Some(entries[1].id.as_str())
    );
    assert!(matches!(
        a.edit("nope", "x"),
        Err(NoteError::NoSuchEntry(_))
    ));
    assert!(a.add(" ", "aa", AT).is_err());
    assert!(matches!(
        PrivateDoc::load(&case_with_note().save(), DEV_A),
        Err(NoteError::WrongKind { .. })
    ));
}

#[test]
fn unicode_text_edits_merge() {
    let mut a = case_with_note();
    a.edit_note("n1", &pairs(&[("subjective", "Ça va — sleep 😴 poor.")]))
        .unwrap();
    let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
    let base = a.heads();
    a.edit_note(
        "n1",
        &pairs(&[("subjective", "Ça va — sleep 😴 très poor.")]),
    )
    .unwrap();
    b.edit_note("n1", &pairs(&[("subjective", "Ça va! — sleep 😴 poor.")]))
        .unwrap();
    a.apply(&b.changes_since(&base)).unwrap();
    assert_eq!(
        a.note("n1").unwrap().field("subjective"),
        "Ça va! — sleep 😴 très poor."
    );
    assert_eq!(a.search("ÇA VA")[0].snippet, "Ça va! — sleep 😴 très poor.");
}
#[test]
fn search_takes_words_in_any_order_and_ranks_the_phrase_first() {
    let mut doc = CaseDoc::new("R. Client", "2024-01-05", DocId::random(), DEV_A).unwrap();
    let mut note = |id: &str, fields: &[(&str, &str)]| {
        let mut input = NoteInput::new("2024-03-01", NoteFormat::Soap);
        input.fields = pairs(fields);
        doc.add_note(input, id, "aa").unwrap();
    };
    note(
        "spread",
        &[("subjective", "Sleep is poor."), ("plan", "Keep a diary.")],
    );
    note("together", &[("plan", "A diary of sleep, nightly.")]);
    note("phrase", &[("plan", "Start a sleep diary.")]);
    note("half", &[("plan", "Sleep hygiene only.")]);
    let hits = doc.search("diary SLEEP");
    let score = |id: &str| {
        hits.iter()
            .find(|h| h.note_id.as_deref() == Some(id))
            .map(|h| h.score)
    };
    assert_eq!(hits.len(), 3, "every word must be in the note");
    assert_eq!(score("half"), None);
    // Every word in one field beats words spread over two.
    assert!(score("together") > score("spread"));
    assert!(score("phrase") > score("spread"));
    // The query as typed, in one field, beats all.
    let exact = doc.search("sleep diary");
    let best = exact.iter().max_by_key(|h| h.score).unwrap();
    assert_eq!(best.note_id.as_deref(), Some("phrase"));
    assert_eq!(best.snippet, "Start a sleep diary.");
}
