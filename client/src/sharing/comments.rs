//! Comments: a colleague with the comment role may add comments to a
//! case's notes and nothing else. The relay cannot read a change, so every
//! device judges each commenter's change itself, where it was written.

use casebook_shared::access::Role;
use casebook_shared::ids::DocId;

use crate::docs::{Loaded, RoleError};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::notes::CaseDoc;
use crate::store::OutKind;

/// Why a commenter's change was not applied. Each device judges the change
/// itself (the relay cannot read it); sync reports the refusal as "a
/// commenter's change does more than comment: " followed by this.
#[derive(Debug, thiserror::Error)]
pub enum CommentRefusal {
    /// Judged where it was written, it still needs changes not held here.
    #[error("not allowed: it depends on changes not held here")]
    MissingDependencies,
    /// Read back whole, the case differs in more than its comments.
    #[error("not allowed: it changes the case itself")]
    ChangesCase,
    #[error("not allowed: it removes comments")]
    RemovesComments,
    #[error("not allowed: a comment on a document not held here")]
    DocNotHeld,
    /// Psychotherapy notes take no comments.
    #[error("not allowed: comments belong on case documents only")]
    NotACaseDoc,
}

impl Home {
    /// Adds a comment to a note of a case shared with at least the comment role.
    /// Returns the note's whole id.
    pub fn comment_note(&mut self, case: &DocId, note: &str, text: &str) -> Result<String> {
        let meta = self
            .access()
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        let me = self.account_id();
        let allowed =
            meta.owner == me || meta.role_of(&me, self.now()).is_some_and(Role::can_upload);
        if !allowed {
            return Err(RoleError::NoComments.into());
        }
        let by = self.name().to_string();
        let at = &crate::clock::rfc3339(self.now());
        let n = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        self.change_case(case, "comment added", OutKind::Comment, |c| {
            Ok(c.add_comment(&n, &by, at, text)?)
        })?;
        Ok(n)
    }
}

/// Whether a commenter's change, applied where it was written, adds
/// comments and does nothing else; `Ok(false)` while its base is not here.
fn judge_comment(case: &mut CaseDoc, body: &[u8]) -> Result<bool> {
    let Some(before) = case.at_base_of(body)? else {
        return Ok(false);
    };
    before.only_adds_comments(body)?;
    let (mut after, _) = before.copy().apply_or_drop(body)?;
    if !after.missing_deps().is_empty() {
        return Err(CommentRefusal::MissingDependencies.into());
    }
    // Read back too, whole (every root key, not only the notes): the rule
    // on operations is the guard, this is a second look.
    if before.without_comments() != after.without_comments() {
        return Err(CommentRefusal::ChangesCase.into());
    }
    let kept = before.notes().iter().all(|b| {
        after
            .note(&b.id)
            .is_some_and(|a| b.comments.iter().all(|c| a.comments.contains(c)))
    });
    if !kept {
        return Err(CommentRefusal::RemovesComments.into());
    }
    Ok(true)
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
        if !self.store.has_body(doc)? {
            return Err(CommentRefusal::DocNotHeld.into());
        }
        let (mut loaded, rev) = self.docs().take_loaded(doc)?;
        let judged = match &mut loaded {
            Loaded::Case(case) => judge_comment(case, body),
            Loaded::Private(_) => Err(CommentRefusal::NotACaseDoc.into()),
        };
        self.docs().keep_loaded(doc, rev, loaded);
        if !judged? {
            return Ok(false);
        }
        self.docs().apply_batch(doc, body)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owner's home with one case holding note `n1`, its plan written.
    fn owner_with_note() -> (tempfile::TempDir, Home, DocId) {
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
        (dir, home, case)
    }

    #[test]
    fn a_commenter_may_add_comments_and_nothing_else() {
        let (_dir, mut home, case) = owner_with_note();
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
        home.docs().apply_batch(&case, &owner_edit).unwrap();
        assert!(home.apply_comment_change(&case, &comment).unwrap());
        assert!(home.apply_comment_change(&case, &edit).is_err(), "an edit");
        let note = home
            .docs()
            .read_case(&case, |c| c.note("n1").unwrap())
            .unwrap();
        assert_eq!(note.field("plan"), "Sleep diary; CBT-I.");
        assert_eq!(note.comments.len(), 1);
    }

    /// Changes that read, at their base, like a comment and nothing more,
    /// but overwrite what the owner wrote once merged: refused.
    #[test]
    fn a_commenter_cannot_overwrite_what_reads_the_same() {
        use automerge::transaction::Transactable;
        use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
        let (_dir, mut home, case) = owner_with_note();
        let note = "n1";
        let saved = home.store.doc_body(&case).unwrap().unwrap();
        let forge = |f: &dyn Fn(&mut AutoCommit)| {
            let mut raw = AutoCommit::load(&saved).unwrap();
            raw.set_actor(automerge::ActorId::from(b"colleague".as_slice()));
            let heads = raw.get_heads();
            f(&mut raw);
            raw.commit();
            raw.get_changes(&heads)
                .iter()
                .flat_map(|c| c.raw_bytes().to_vec())
                .collect::<Vec<u8>>()
        };
        let notes_of = |raw: &AutoCommit| raw.get(ROOT, "notes").unwrap().unwrap().1;
        // The note put again over itself, a comment added: at its base it
        // reads the same plus a comment; merged, it replaces the owner's.
        let copy = forge(&|raw| {
            use automerge::Value;
            let notes = notes_of(raw);
            let old = raw.get(&notes, note).unwrap().unwrap().1;
            let fields: Vec<(String, Value<'static>, automerge::ObjId)> = raw
                .keys(&old)
                .map(|k| {
                    let (v, id) = raw.get(&old, k.as_str()).unwrap().unwrap();
                    (k, v.into_owned(), id)
                })
                .collect();
            let texts: Vec<String> = fields
                .iter()
                .map(|(_, _, id)| raw.text(id).unwrap_or_default())
                .collect();
            let n = raw.put_object(&notes, note, ObjType::Map).unwrap();
            for ((k, v, _), text) in fields.iter().zip(texts) {
                match v {
                    Value::Scalar(s) => raw.put(&n, k.as_str(), s.as_ref().clone()).unwrap(),
                    Value::Object(ObjType::Text) => {
                        let t = raw.put_object(&n, k.as_str(), ObjType::Text).unwrap();
                        raw.splice_text(&t, 0, 0, &text).unwrap();
                    }
                    Value::Object(ty) => {
                        let l = raw.put_object(&n, k.as_str(), *ty).unwrap();
                        if k == "comments" {
                            let c = raw.insert_object(&l, 0, ObjType::Map).unwrap();
                            raw.put(&c, "text", "Agree.").unwrap();
                        }
                    }
                }
            }
        });
        // A root key redirected: the psychotherapy notes' document.
        let redirect = forge(&|raw| {
            raw.put(ROOT, "private_doc", "00".repeat(16)).unwrap();
        });
        // A plain comment, as a well-behaved client makes it.
        let honest = forge(&|raw| {
            let notes = notes_of(raw);
            let n = raw.get(&notes, note).unwrap().unwrap().1;
            let l = raw.get(&n, "comments").unwrap().unwrap().1;
            let c = raw.insert_object(&l, 0, ObjType::Map).unwrap();
            raw.put(&c, "text", "Agree.").unwrap();
        });
        for (what, bad) in [("a copy over the note", &copy), ("a root key", &redirect)] {
            let r = home.apply_comment_change(&case, bad);
            assert!(r.is_err(), "{what} was accepted");
        }
        assert!(home.apply_comment_change(&case, &honest).unwrap());
        let n = home
            .docs()
            .read_case(&case, |c| c.note(note).unwrap())
            .unwrap();
        assert_eq!(n.comments.len(), 1);
        assert_eq!(n.field("plan"), "Sleep diary.");
    }
}
