//! Signed notes: what a signature covers, and edits that merged in after it.
//!
//! Signing records who and when, the document heads at that moment, and a
//! hash of the note's content there. A signed note reads as it was at those
//! heads, whatever merged in later. An edit written on another device that
//! had not yet seen the signature is concurrent with it: Automerge merges it
//! like any edit (nothing is dropped), but it is shown apart, as a late
//! edit, until the author keeps it as an addendum or discards it. Every
//! device computes all of this from the document alone, so all decide alike.

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ReadDoc};
use std::collections::BTreeMap;

use super::case::CaseDoc;
use super::note::{LateEdit, Note, read_note};
use super::replica::{child, push_map, set_text, string};
use super::scores::score_field;
use super::{NoteError, Result};

/// Label of the hash that binds a signature to the note's content.
const CONTENT_LABEL: &str = "casebook/v1/signed-note-content";

/// What the author does with a late edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateEditChoice {
    /// Keep the merged text as an addendum; the note goes back to what was
    /// signed.
    Addendum,
    /// Drop it; the note goes back to what was signed.
    Discard,
}

/// The hash of what a signature covers: the session's date, time and length,
/// the format, every text field in the order [`read_note`] gives, and
/// (with `scores`) the outcome scores.
fn content_hash(note: &Note, scores: bool) -> String {
    let content = (
        &note.date,
        &note.start_time,
        note.duration,
        note.format.as_str(),
        &note.fields,
    );
    let bytes = match scores {
        false => serde_json::to_vec(&content),
        true => serde_json::to_vec(&(content, &note.scores)),
    }
    .expect("plain strings always serialize");
    casebook_shared::crypto::hash(CONTENT_LABEL, &bytes).to_hex()
}

/// How a recorded hash says it covers the scores. A note without scores
/// is recorded as every signature was before scores existed, so a client
/// from before reads such a signature as sound; one with scores says so,
/// and a client that knows no scores cannot vouch for it.
const WITH_SCORES: &str = "v2:";

/// The hash to record for a signature of `note`.
fn recorded_hash(note: &Note) -> String {
    match note.scores.is_empty() {
        true => content_hash(note, false),
        false => format!("{WITH_SCORES}{}", content_hash(note, true)),
    }
}

/// Whether a recorded hash matches `note`: one recorded without scores (by
/// this version for a note that had none, or by a client from before
/// scores) covers the rest of the note.
fn hash_matches(recorded: &str, note: &Note) -> bool {
    match recorded.strip_prefix(WITH_SCORES) {
        Some(h) => h == content_hash(note, true),
        None => recorded == content_hash(note, false),
    }
}

/// Fields that make up a signature.
const SIGNATURE_FIELDS: [&str; 4] = ["signed_by", "signed_at", "signed_heads", "signed_hash"];

/// Who wrote the signature: `(one, device)`, where `one` says every
/// signature field present was written by the same actor (not so when one
/// device overwrote part of another's signature), and `device` is that
/// actor's device id in hex, if the actor is a device's (its id, then a
/// per-process suffix).
fn signer_device(doc: &impl ReadDoc, note: &ObjId) -> (bool, Option<String>) {
    let actors: Vec<Option<Vec<u8>>> = SIGNATURE_FIELDS
        .iter()
        .filter_map(|f| doc.get(note, *f).ok().flatten())
        .map(|(_, id)| match id {
            ObjId::Id(_, actor, _) => Some(actor.to_bytes().to_vec()),
            ObjId::Root => None,
        })
        .collect();
    let Some(Some(first)) = actors.first() else {
        return (false, None);
    };
    let one = actors.iter().all(|a| a.as_ref() == Some(first));
    (one, super::authors::device_of(first))
}

fn parse_heads(s: &str) -> Vec<ChangeHash> {
    s.split(',').filter_map(|h| h.trim().parse().ok()).collect()
}

/// Every field a person can change, by name, missing ones as empty.
fn editable(note: &Note) -> BTreeMap<String, String> {
    note.editable_fields().into_iter().collect()
}

impl CaseDoc {
    /// Signs a note: `by` (the practitioner) at `at` (RFC 3339). After this
    /// the note only takes addenda and comments; the signature covers the
    /// content as it is now, on this device, and nothing that merges later.
    pub fn sign_note(&mut self, note_id: &str, by: &str, at: &str) -> Result<()> {
        if by.trim().is_empty() || at.is_empty() {
            return Err(NoteError::Empty("the signer and time"));
        }
        let note = match self.unsigned_note(note_id) {
            Err(NoteError::Signed(id)) => return Err(NoteError::AlreadySigned(id)),
            other => other?,
        };
        let content = self
            .note(note_id)
            .ok_or_else(|| NoteError::NoSuchNote(note_id.to_owned()))?;
        let hash = recorded_hash(&content);
        let heads = self.replica.heads();
        let heads = heads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.replica.write(|d| {
            d.put(&note, "signed_by", by)?;
            d.put(&note, "signed_at", at)?;
            d.put(&note, "signed_heads", heads)?;
            d.put(&note, "signed_hash", hash)?;
            Ok(())
        })
    }

    /// A note read from the live document, turned into what a reader sees:
    /// for a signed note, the content that was signed, with what merged in
    /// later listed apart. Unsigned notes come back as they are.
    pub(super) fn as_signed(&self, current: Note) -> Note {
        if !current.is_signed() {
            return current;
        }
        let doc = self.doc();
        let Some(obj) = self.note_obj(&current.id) else {
            return current;
        };
        // Every part of the signature written by one device, in one change.
        let signer = signer_device(doc, &obj);
        let heads = parse_heads(&string(doc, &obj, "signed_heads").unwrap_or_default());
        let recorded = string(doc, &obj, "signed_hash");
        let then = match self.note_at(&current.id, &obj, &heads) {
            Some(n) => n,
            // Heads this document does not hold: the signature points
            // nowhere, so nothing can be shown as signed content.
            None => {
                return Note {
                    signature_broken: true,
                    signed_by_device: signer.1,
                    ..current
                };
            }
        };
        let signed = editable(&then);
        let merged = editable(&current);
        let mut keys: Vec<&String> = signed.keys().chain(merged.keys()).collect();
        keys.sort();
        keys.dedup();
        let late_edits = keys
            .into_iter()
            .filter_map(|k| {
                let (s, m) = (
                    signed.get(k).cloned().unwrap_or_default(),
                    merged.get(k).cloned().unwrap_or_default(),
                );
                (s != m).then(|| LateEdit {
                    field: k.clone(),
                    signed: s,
                    merged: m,
                })
            })
            .collect();
        // Notes signed before the hash was recorded have none to check.
        let signature_broken = recorded.is_some_and(|h| !hash_matches(&h, &then)) || !signer.0;
        Note {
            late_edits,
            signature_broken,
            signed_by_device: signer.1,
            signed_by: current.signed_by,
            signed_at: current.signed_at,
            addenda: current.addenda,
            comments: current.comments,
            ..then
        }
    }

    /// The note as it was at `heads`; `None` if they are not all here.
    pub(super) fn note_at(&self, id: &str, obj: &ObjId, heads: &[ChangeHash]) -> Option<Note> {
        // Automerge reads past heads it does not hold as if they were not
        // named: an unknown head must make the signature point nowhere,
        // not show an older state as the signed one.
        if heads.is_empty()
            || heads
                .iter()
                .any(|h| ReadDoc::get_change_by_hash(self.doc(), h).is_none())
        {
            return None;
        }
        let map = match self.doc().hydrate(obj, Some(heads)).ok()? {
            automerge::hydrate::Value::Map(m) => m,
            _ => return None,
        };
        Some(read_note(id, &map))
    }

    /// Settles a late edit to one field of a signed note: kept as an
    /// addendum (its merged text, marked as written before the signature
    /// was seen) or discarded. Either way the field goes back to the signed
    /// value in the same change, so the late edit is no longer shown.
    pub fn settle_late_edit(
        &mut self,
        note_id: &str,
        field: &str,
        choice: LateEditChoice,
        by: &str,
        at: &str,
    ) -> Result<()> {
        let obj = self.find_note(note_id)?;
        let note = self
            .note(note_id)
            .ok_or_else(|| NoteError::NoSuchNote(note_id.to_owned()))?;
        if !note.is_signed() {
            return Err(NoteError::NotSigned(note_id.to_owned()));
        }
        let late = note
            .late_edits
            .iter()
            .find(|l| l.field == field)
            .cloned()
            .ok_or_else(|| NoteError::NoLateEdit(note_id.to_owned(), field.to_owned()))?;
        let list = child(self.doc(), &obj, "addenda", ObjType::List);
        self.replica.write(|d| {
            if choice == LateEditChoice::Addendum {
                let text = format!(
                    "{field}, as edited on another device before it saw the signature:\n{}",
                    late.merged
                );
                let list = match list {
                    Some(l) => l,
                    None => d.put_object(&obj, "addenda", ObjType::List)?,
                };
                push_map(d, &list, &[("at", at), ("by", by), ("text", &text)])?;
            }
            restore(d, &obj, field, &late.signed)
        })
    }
}

/// Puts a field back to its signed value.
fn restore(d: &mut automerge::AutoCommit, obj: &ObjId, field: &str, signed: &str) -> Result<()> {
    match field {
        "date" => d.put(obj, "date", signed)?,
        "start_time" | "duration" if signed.is_empty() => {
            if d.get(obj, field)?.is_some() {
                d.delete(obj, field)?;
            }
        }
        "start_time" => d.put(obj, field, signed)?,
        "duration" => d.put(
            obj,
            field,
            signed
                .parse::<i64>()
                .map_err(|_| NoteError::InvalidDuration(signed.to_owned()))?,
        )?,
        _ if score_field(field).is_some() => match signed.is_empty() {
            true if d.get(obj, field)?.is_some() => d.delete(obj, field)?,
            true => {}
            false => d.put(obj, field, signed)?,
        },
        _ => set_text(d, obj, field, signed)?,
    }
    Ok(())
}
