//! Who wrote what, read off Automerge operations: the device behind a
//! signature, a comment, a note; and the rule that a change is written as
//! the device that sealed it.

use super::tests::{AT, case_with_note};
use super::*;
use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc};
use casebook_shared::ids::DocId;

#[test]
fn a_signature_names_the_device_that_wrote_it_and_breaks_when_another_rewrites_part() {
    // Actors as a home makes them: a 32-byte device id, then a suffix.
    let (laptop, colleague) = ([7u8; 32], [9u8; 32]);
    let mut a = case_with_note();
    let mut signer = CaseDoc::load(&a.save(), &[&laptop[..], b"-proc"].concat()).unwrap();
    signer.sign_note("n1", "Dr. Rivera", AT).unwrap();
    let n = signer.note("n1").unwrap();
    assert!(!n.signature_broken);
    assert_eq!(n.signed_by_device, Some(hex::encode(laptop)));

    // A writer renames the signer: one field now written by another device.
    let mut forger = CaseDoc::load(&signer.save(), &[&colleague[..], b"-proc"].concat()).unwrap();
    let note = forger.find_note("n1").unwrap();
    forger
        .replica
        .write(|d| Ok(d.put(&note, "signed_by", "Dr. Chen")?))
        .unwrap();
    let n = forger.note("n1").unwrap();
    assert!(n.signature_broken, "a signature rewritten in part");
    // Writing a field's same value again is no operation in Automerge, so
    // no one can take over a signature by copying it either.
    let heads = a.heads();
    a.apply(&forger.changes_since(&heads)).unwrap();
    assert_eq!(a.note("n1"), forger.note("n1"));
}

#[test]
fn written_by_needs_every_change_from_the_device() {
    let device = [5u8; 32];
    let mut doc = CaseDoc::new(
        "Jordan",
        "2026-11-20",
        DocId([1; 16]),
        &[&device[..], b"-p"].concat(),
    )
    .unwrap();
    let batch = doc.changes_since(&[]);
    assert!(super::written_by(&batch, &device));
    assert!(!super::written_by(&batch, &[6u8; 32]));
    assert!(!super::written_by(&[], &device));
    assert!(!super::written_by(b"not changes", &device));
    // A device id alone, no suffix, is not a device's actor.
    let mut bare = CaseDoc::new("Jordan", "2026-11-20", DocId([1; 16]), &device).unwrap();
    assert!(!super::written_by(&bare.changes_since(&[]), &device));
    doc.add_note(NoteInput::new("2026-11-21", NoteFormat::Free), "n9", "x")
        .unwrap();
    let mut other = CaseDoc::load(&doc.save(), &[&[6u8; 32][..], b"-p"].concat()).unwrap();
    let heads = other.heads();
    other
        .add_note(NoteInput::new("2026-11-22", NoteFormat::Free), "n8", "y")
        .unwrap();
    let mixed = [doc.changes_since(&[]), other.changes_since(&heads)].concat();
    assert!(
        !super::written_by(&mixed, &device),
        "one change by another device"
    );
}

#[test]
fn a_comment_names_the_device_that_made_it_and_an_alteration_shows() {
    let (laptop, colleague) = ([7u8; 32], [9u8; 32]);
    let mut a = case_with_note();
    let mut chen = CaseDoc::load(&a.save(), &[&colleague[..], b"-proc"].concat()).unwrap();
    chen.add_comment("n1", "Dr. Rivera", AT, "Consider EMDR.")
        .unwrap();
    let c = &chen.note("n1").unwrap().comments[0];
    assert_eq!(c.device, Some(hex::encode(colleague)));
    assert!(!c.unverified);

    // The owner's device rewrites the colleague's words.
    let mut owner = CaseDoc::load(&chen.save(), &[&laptop[..], b"-proc"].concat()).unwrap();
    let note = owner.find_note("n1").unwrap();
    let list = replica::child(owner.doc(), &note, "comments", ObjType::List).unwrap();
    let map = owner.doc().get(&list, 0).unwrap().unwrap().1;
    owner
        .replica
        .write(|d| Ok(d.put(&map, "text", "Stop treatment.")?))
        .unwrap();
    let c = &owner.note("n1").unwrap().comments[0];
    assert_eq!(c.device, Some(hex::encode(colleague)), "still the maker");
    assert!(c.unverified, "altered by another device");
}

#[test]
fn a_notes_maker_is_read_off_its_operations_and_a_renamed_author_shows() {
    let (laptop, colleague) = ([7u8; 32], [9u8; 32]);
    let mut owner = CaseDoc::new(
        "R. Client",
        "2024-01-05",
        DocId::random(),
        &[&laptop[..], b"-p"].concat(),
    )
    .unwrap();
    owner
        .add_note(
            NoteInput::new("2024-03-01", NoteFormat::Free),
            "n1",
            "Dr. Rivera",
        )
        .unwrap();
    let n = owner.note("n1").unwrap();
    assert_eq!(n.created_by_device, Some(hex::encode(laptop)));
    assert!(!n.creator_unverified);
    let mut writer = CaseDoc::load(&owner.save(), &[&colleague[..], b"-p"].concat()).unwrap();
    let note = writer.find_note("n1").unwrap();
    writer
        .replica
        .write(|d| Ok(d.put(&note, "created_by", "Dr. Chen")?))
        .unwrap();
    let n = writer.note("n1").unwrap();
    assert_eq!(
        n.created_by_device,
        Some(hex::encode(laptop)),
        "still the maker"
    );
    assert!(
        n.creator_unverified,
        "the name was rewritten by another device"
    );
}
