//! Edits from a form drawn some time ago: a page that saves as the person
//! types sends what its fields hold now, and the heads of the document it
//! was drawn from. What changed is what differs from the field as it read
//! at those heads, and only that goes into the document, placed where those
//! characters are now: another device's words written meanwhile, in the
//! same field or another, stay.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, CursorPosition, ObjId, ReadDoc, TextEncoding};

use super::case::CaseDoc;
use super::replica::{set_text, text_obj};
use super::{NoteError, Result};

/// How many of the document's index units `s` takes.
fn units(encoding: TextEncoding, s: &str) -> Option<usize> {
    match encoding {
        TextEncoding::UnicodeCodePoint => Some(s.chars().count()),
        TextEncoding::Utf8CodeUnit => Some(s.len()),
        TextEncoding::Utf16CodeUnit => Some(s.encode_utf16().count()),
        _ => None,
    }
}

/// The one splice that turns `was` into `now`: the byte range of `was` to
/// replace (between the common start and the common end) and what goes in.
fn splice<'a>(was: &str, now: &'a str) -> (usize, usize, &'a str) {
    let start: usize = was
        .chars()
        .zip(now.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let end: usize = was[start..]
        .chars()
        .rev()
        .zip(now[start..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    (start, was.len() - end, &now[start..now.len() - end])
}

/// Sets the text at `key` from what it read at `base` to `typed`: the
/// characters between the common start and end are replaced where they
/// are now. Where the field did not exist at `base`, or the document's
/// indexing is not one this knows, it is set as [`set_text`] sets it.
pub(crate) fn set_text_from(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    base: &[ChangeHash],
    typed: &str,
) -> Result<()> {
    let id = text_obj(doc, obj, key)?;
    let (Ok(was), Some(_)) = (doc.text_at(&id, base), units(doc.text_encoding(), "")) else {
        return set_text(doc, obj, key, typed);
    };
    // Nothing typed since `base`, or the field reads so already (the
    // same save sent twice with nothing else changed).
    if was == typed || doc.text(&id)? == typed {
        return Ok(());
    }
    let (from, to, insert) = splice(&was, typed);
    let enc = doc.text_encoding();
    let at = |i: usize| match i == was.len() {
        true => CursorPosition::End,
        false => CursorPosition::Index(units(enc, &was[..i]).unwrap_or(0)),
    };
    let start = doc.get_cursor(&id, at(from), Some(base))?;
    let end = doc.get_cursor(&id, at(to), Some(base))?;
    let start = doc.get_cursor_position(&id, &start, None)?;
    let end = doc.get_cursor_position(&id, &end, None)?.max(start);
    let delete =
        isize::try_from(end - start).map_err(|_| NoteError::Malformed("text too long".into()))?;
    doc.splice_text(&id, start, delete, insert)?;
    Ok(())
}

impl CaseDoc {
    /// Changes an unsigned note from a form drawn at `base` (the heads it
    /// was read at): a field whose value is what it was at `base` is left
    /// alone, whatever another device has made of it since; a text that
    /// changed is changed only where it differs from what it read then.
    pub fn edit_note_from(
        &mut self,
        note_id: &str,
        fields: &[(String, String)],
        base: &[ChangeHash],
    ) -> Result<()> {
        let obj = self.unsigned_note(note_id)?;
        let then = self
            .note_at(note_id, &obj, base)
            .ok_or(NoteError::StaleForm)?
            .editable_fields();
        let changed: Vec<(String, String)> = fields
            .iter()
            // A field missing at `base` reads as empty: an empty box
            // leaves alone a score another device added since.
            .filter(|(k, v)| {
                let old = then
                    .iter()
                    .find(|(f, _)| f == k)
                    .map_or("", |(_, o)| o.as_str());
                old != v.as_str()
            })
            .cloned()
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        self.edit_note_at(note_id, &changed, Some(base))
    }
}

impl CaseDoc {
    /// Sets profile fields from a form drawn at `base`: a field is changed
    /// only where it differs from what it read then.
    pub fn set_profile_from(
        &mut self,
        fields: &[(String, String)],
        base: &[ChangeHash],
    ) -> Result<()> {
        if base
            .iter()
            .any(|h| self.doc().get_change_by_hash(h).is_none())
        {
            return Err(NoteError::StaleForm);
        }
        self.set_profile_at(fields, Some(base))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{DEV_B, case_with_note, pairs};
    use super::*;

    #[test]
    fn the_splice_is_between_the_common_ends() {
        assert_eq!(splice("abc", "abc"), (3, 3, ""));
        assert_eq!(
            splice("poor sleep", "poor, broken sleep"),
            (4, 4, ", broken")
        );
        assert_eq!(splice("Ünïcode ✓", "Ünïcode ✗"), (10, 13, "✗"));
        assert_eq!(splice("aaa", "aa"), (2, 3, ""));
        assert_eq!(splice("", "new"), (0, 0, "new"));
    }

    #[test]
    fn a_form_drawn_before_another_devices_edit_keeps_that_edit() {
        let mut a = case_with_note();
        let base = a.heads();
        let drawn = a.note("n1").unwrap();
        assert_eq!(drawn.field("subjective"), "The client reported poor sleep.");
        // Meanwhile the tablet edits the same field and another one.
        let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
        b.edit_note(
            "n1",
            &pairs(&[
                (
                    "subjective",
                    "The client reported poor sleep. Nightmares twice.",
                ),
                ("plan", "Continue CBT weekly."),
            ]),
        )
        .unwrap();
        a.apply(&b.changes_since(&base)).unwrap();
        // The page, drawn at `base`, saves its whole form.
        let mut form = drawn.editable_fields();
        for (k, v) in &mut form {
            if k == "subjective" {
                *v = "The client reported very poor sleep.".into();
            }
        }
        a.edit_note_from("n1", &form, &base).unwrap();
        let n = a.note("n1").unwrap();
        assert_eq!(
            n.field("subjective"),
            "The client reported very poor sleep. Nightmares twice."
        );
        assert_eq!(
            n.field("plan"),
            "Continue CBT weekly.",
            "an unchanged field is left alone"
        );

        // Positions count characters, not bytes: an edit after "ü" and "✓".
        let base = a.heads();
        let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
        a.edit_note("n1", &pairs(&[("homework", "Müller ✓ diary")]))
            .unwrap();
        b.apply(&a.changes_since(&base)).unwrap();
        let base = b.heads();
        a.edit_note("n1", &pairs(&[("homework", "Herr Müller ✓ diary")]))
            .unwrap();
        b.edit_note_from("n1", &pairs(&[("homework", "Müller ✓ sleep diary")]), &base)
            .unwrap();
        b.apply(&a.changes_since(&base)).unwrap();
        assert_eq!(
            b.note("n1").unwrap().field("homework"),
            "Herr Müller ✓ sleep diary"
        );
        // The same save sent twice, nothing else changed: written once.
        let again = a.heads();
        let twice = pairs(&[("goals", "Walk daily.")]);
        a.edit_note_from("n1", &twice, &again).unwrap();
        a.edit_note_from("n1", &twice, &again).unwrap();
        assert_eq!(a.note("n1").unwrap().field("goals"), "Walk daily.");
        // An empty score box leaves alone a score added elsewhere since.
        let before_score = a.heads();
        a.edit_note("n1", &pairs(&[("score:PHQ-9", "12")])).unwrap();
        a.edit_note_from("n1", &pairs(&[("score:PHQ-9", "")]), &before_score)
            .unwrap();
        assert_eq!(a.note("n1").unwrap().scores, pairs(&[("PHQ-9", "12")]));
        // Heads this document never had: refused, nothing written.
        let other = CaseDoc::new(
            "x",
            "2024-01-01",
            casebook_shared::ids::DocId::random(),
            DEV_B,
        )
        .unwrap()
        .heads();
        assert!(matches!(
            a.edit_note_from("n1", &form, &other),
            Err(NoteError::StaleForm)
        ));
        assert!(matches!(
            a.set_profile_from(&pairs(&[("goals", "x")]), &other),
            Err(NoteError::StaleForm)
        ));
    }
}
