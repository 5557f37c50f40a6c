//! Documents from outside read as this client writes none: garbage,
//! another kind of document, odd shapes, and chunk types it never sends.

use super::tests::{AT, DEV_A, DEV_B, DEV_C, case_with_note, pairs};
use super::*;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use casebook_shared::ids::DocId;

#[test]
fn garbage_bytes_are_errors() {
    let mut doc = case_with_note();
    let saved = doc.save();
    let changes = doc.changes_since(&[]);
    let mut flipped = saved.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let mut bad_checksum = changes.clone();
    bad_checksum[5] ^= 1;
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff],
        saved[..saved.len() / 2].to_vec(),
        flipped,
        bad_checksum.clone(),
        [changes.as_slice(), b"trailing junk"].concat(),
    ];
    for bytes in &inputs {
        assert!(CaseDoc::load(bytes, DEV_B).is_err(), "{bytes:?}");
        assert!(PrivateDoc::load(bytes, DEV_B).is_err());
    }
    let heads = doc.heads();
    for bytes in &inputs[1..] {
        assert!(doc.apply(bytes).is_err(), "{bytes:?}");
        assert_eq!(doc.heads(), heads);
    }
    assert_eq!(doc.apply(&[]).unwrap(), 0);
}

#[test]
fn other_documents_are_refused() {
    let mut doc = case_with_note();
    // Other actors: the same actor writing two documents would clash on
    // change numbers before the document check is reached.
    let mut other = CaseDoc::new("R. Client", "2024-01-05", DocId::random(), DEV_B).unwrap();
    let mut private = PrivateDoc::new(DocId::random(), DEV_C).unwrap();
    let heads = doc.heads();
    assert!(matches!(
        doc.apply(&other.save()),
        Err(NoteError::ForeignChanges("case", _))
    ));
    assert!(doc.apply(&private.save()).is_err());
    assert_eq!(doc.heads(), heads);
    assert!(matches!(
        CaseDoc::load(&private.save(), DEV_B),
        Err(NoteError::WrongKind {
            expected: "case",
            ..
        })
    ));
}

#[test]
fn odd_documents_read_as_empty_and_can_be_repaired() {
    let mut raw = AutoCommit::new();
    raw.put(ROOT, "kind", "case").unwrap();
    raw.put(ROOT, "name", 42).unwrap();
    raw.put(ROOT, "private_doc", "not hex").unwrap();
    raw.put(ROOT, "profile", ScalarValue::Null).unwrap();
    let notes = raw.put_object(ROOT, "notes", ObjType::Map).unwrap();
    raw.put(&notes, "junk", "not a map").unwrap();
    let note = raw.put_object(&notes, "n1", ObjType::Map).unwrap();
    raw.put(&note, "format", "soap").unwrap();
    raw.put(&note, "subjective", "scalar text").unwrap();
    raw.put(&note, "addenda", 7).unwrap();
    raw.put(&note, "duration", "50").unwrap();
    let mut doc = CaseDoc::load(&raw.save(), DEV_A).unwrap();

    assert_eq!(doc.name(), "42");
    assert_eq!(doc.private_doc(), None);
    assert_eq!(doc.profile(), Profile::default());
    let n = doc.note("n1").unwrap();
    assert_eq!((n.date.as_str(), n.duration), ("", Some(50)));
    assert_eq!(n.field("subjective"), "scalar text");
    assert!(n.addenda.is_empty());
    assert_eq!(doc.notes().len(), 1);

    doc.edit_note("n1", &pairs(&[("subjective", "now text")]))
        .unwrap();
    doc.set_profile(&pairs(&[("goals", "g")])).unwrap();
    doc.sign_note("n1", "aa", AT).unwrap();
    doc.add_addendum("n1", "aa", AT, "more").unwrap();
    let n = doc.note("n1").unwrap();
    assert_eq!(n.field("subjective"), "now text");
    assert_eq!(n.addenda.len(), 1);
    assert_eq!(doc.profile().goals, "g");
}

/// 33 bytes, found by `fuzz/` (target `fetched_body`): an Automerge
/// "bundle" chunk whose decoder allocates gigabytes. A member could send
/// it in an envelope to stop every device of a case; it is refused before
/// Automerge reads it, as a change, a saved document and a snapshot.
#[test]
fn a_bundle_chunk_is_refused_before_automerge_reads_it() {
    let bundle =
        hex::decode("856f4a837f018b03031300000001230dd5d5d5d5d50000707265736500fffff96f").unwrap();
    let mut doc = CaseDoc::new("Jordan Avery", "2026-11-20", DocId([2; 16]), b"a").unwrap();
    assert!(doc.apply(&bundle).is_err());
    assert!(CaseDoc::load(&bundle, b"a").is_err());
    assert!(doc.own_changes_not_in(Some(&bundle), b"a", &[]).is_err());
    assert!(!doc.holds(&bundle));
}
