//! Comments: a colleague with the comment role may add comments to a
//! case's notes and nothing else. The relay cannot read a change, so every
//! device judges each commenter's change itself, where it was written.

use casebook_shared::access::Role;
use casebook_shared::ids::DocId;

use crate::docs::Loaded;
use crate::error::{Error, Result};
use crate::home::{Home, now};
use crate::notes::{CaseDoc, Note, Profile};
use crate::store::OutKind;

impl Home {
    /// Adds a comment to a note of a case shared with at least the comment role.
    pub fn comment_note(&mut self, case: &DocId, note: &str, text: &str, at: &str) -> Result<()> {
        let meta = self
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        let me = self.account_id();
        let allowed = meta.owner == me || meta.role_of(&me, now()).is_some_and(Role::can_upload);
        if !allowed {
            return Err(Error::NotAllowed(
                "your role on this case does not allow comments".into(),
            ));
        }
        let by = self.name().to_string();
        self.change_case(case, "comment added", OutKind::Comment, |c| {
            let n = c.resolve_note_id(note)?;
            Ok(c.add_comment(&n, &by, at, text)?)
        })
    }
}

/// Whether a commenter's change, applied where it was written, adds
/// comments and does nothing else; `Ok(false)` while its base is not here.
fn judge_comment(case: &mut CaseDoc, body: &[u8]) -> Result<bool> {
    let Some(before) = case.at_base_of(body)? else {
        return Ok(false);
    };
    let mut after = before.copy();
    after.apply(body)?;
    if !after.missing_deps().is_empty() {
        return Err(Error::NotAllowed(
            "it depends on changes not held here".into(),
        ));
    }
    if without_comments(&before) != without_comments(&after) {
        return Err(Error::NotAllowed("it changes the case itself".into()));
    }
    let kept = before.notes().iter().all(|b| {
        after
            .note(&b.id)
            .is_some_and(|a| b.comments.iter().all(|c| a.comments.contains(c)))
    });
    if !kept {
        return Err(Error::NotAllowed("it removes comments".into()));
    }
    Ok(true)
}

/// A case without its comments: what a commenter must leave unchanged.
fn without_comments(c: &CaseDoc) -> (String, Profile, Vec<Note>) {
    let mut notes = c.notes();
    for n in &mut notes {
        n.comments.clear();
    }
    (c.name(), c.profile(), notes)
}

impl Home {
    /// Applies a change from a member whose role is comment, if it adds
    /// comments to a case and changes nothing else (the relay lets such a
    /// member upload; only the content shows what the change does).
    ///
    /// The change is judged against the case as it stood where the change
    /// was written (its dependencies), never against what this device holds
    /// now: a device that first sees the comment after the owner's later
    /// edits (one paired or recovered since) must decide exactly as the
    /// devices that saw it first. Returns `Ok(false)`, changing nothing,
    /// while a change it builds on has not been applied here.
    pub(crate) fn apply_comment_change(&mut self, doc: &DocId, body: &[u8]) -> Result<bool> {
        if self.store.doc_body(doc)?.is_none() {
            return Err(Error::NotAllowed(
                "a comment on a document not held here".into(),
            ));
        }
        let mut loaded = self.take_loaded(doc)?;
        let judged = match &mut loaded {
            Loaded::Case(case) => judge_comment(case, body),
            Loaded::Private(_) => Err(Error::NotAllowed(
                "comments belong on case documents only".into(),
            )),
        };
        self.keep_loaded(doc, loaded)?;
        if !judged? {
            return Ok(false);
        }
        self.apply_batch(doc, body)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commenter_may_add_comments_and_nothing_else() {
        use crate::notes::{NoteFormat, NoteInput};
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(
            dir.path(),
            b"passphrase",
            "Dr. Rivera",
            "127.0.0.1:1",
            [0; 32],
        )
        .unwrap();
        let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
        let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
        input.fields = vec![("plan".into(), "Sleep diary.".into())];
        home.edit_case(&case, "note", |c| {
            Ok(c.add_note(input, "n1", "Dr. Rivera")?)
        })
        .unwrap();
        let saved = home.store.doc_body(&case).unwrap().unwrap();
        let mut theirs = CaseDoc::load(&saved, b"colleague-actor").unwrap();
        let heads = theirs.heads();
        theirs
            .add_comment("n1", "Dr. Chen", "2026-11-21T09:00:00Z", "Agree.")
            .unwrap();
        let comment = theirs.changes_since(&heads);
        let heads = theirs.heads();
        theirs
            .edit_note("n1", &[("plan".into(), "Stop the diary.".into())])
            .unwrap();
        let edit = theirs.changes_since(&heads);

        // The owner's own later edit, made after the comment merged there.
        let mut owners = CaseDoc::load(&saved, b"owner-other-actor").unwrap();
        owners.apply(&comment).unwrap();
        let heads = owners.heads();
        owners
            .edit_note("n1", &[("plan".into(), "Sleep diary; CBT-I.".into())])
            .unwrap();
        let owner_edit = owners.changes_since(&heads);

        assert!(
            !home.apply_comment_change(&case, &edit).unwrap(),
            "an edit built on the comment waits for it"
        );
        // A device that gets the owner's later edit first (it waits inside
        // the document for the comment) judges the comment where it was
        // written, as the devices that saw it first did.
        home.apply_batch(&case, &owner_edit).unwrap();
        assert!(home.apply_comment_change(&case, &comment).unwrap());
        assert!(home.apply_comment_change(&case, &edit).is_err(), "an edit");
        let note = home.read_case(&case, |c| c.note("n1").unwrap()).unwrap();
        assert_eq!(note.field("plan"), "Sleep diary; CBT-I.");
        assert_eq!(note.comments.len(), 1);
    }
}
