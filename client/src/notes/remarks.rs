//! What a change may touch when its author may only comment: judged by the
//! change's operations, not by how the case reads after it. A change that
//! reads the same at its base can still overwrite what the owner wrote
//! (a copy of a note put over the note, a root key set again), so reading
//! is not enough.
//!
//! The rule: every operation either inserts a new map into a note's
//! `comments` list, or puts a plain value into an object made earlier in
//! the same batch, and overwrites nothing it did not itself write.

use std::collections::HashSet;
use std::panic::catch_unwind;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Change, ObjId, ObjType};

use super::case::CaseDoc;
use super::replica::{child, split_chunks};
use super::{NoteError, Result};

/// An operation's id: its counter and actor.
type OpRef = (u64, ActorId);

fn obj_ref(o: &ObjectId) -> Option<OpRef> {
    match o {
        ObjectId::Root => None,
        ObjectId::Id(id) => Some((id.0, id.1.clone())),
    }
}

fn exid_ref(o: &ObjId) -> Option<OpRef> {
    match o {
        ObjId::Root => None,
        ObjId::Id(counter, actor, _) => Some((*counter, actor.clone())),
    }
}

impl CaseDoc {
    /// The `comments` list of every note, as this state of the case has it.
    fn comment_lists(&self) -> HashSet<OpRef> {
        let doc = self.doc();
        let Some(notes) = child(doc, &automerge::ROOT, "notes", ObjType::Map) else {
            return HashSet::new();
        };
        automerge::ReadDoc::keys(doc, &notes)
            .filter_map(|id| child(doc, &notes, id.as_str(), ObjType::Map))
            .filter_map(|note| child(doc, &note, "comments", ObjType::List))
            .filter_map(|l| exid_ref(&l))
            .collect()
    }

    /// The whole case as it reads, every note's comments left out: what a
    /// commenter's change must leave exactly as it was.
    pub fn without_comments(&self) -> Option<automerge::hydrate::Value> {
        let mut root = automerge::ReadDoc::hydrate(self.doc(), automerge::ROOT, None).ok()?;
        if let automerge::hydrate::Value::Map(m) = &mut root
            && let Some(automerge::hydrate::Value::Map(notes)) = m.get_mut("notes")
        {
            for (_, note) in notes.iter_mut() {
                if let automerge::hydrate::Value::Map(n) = &mut note.value {
                    n.remove("comments");
                }
            }
        }
        Some(root)
    }

    /// Checks that a batch of changes, written on top of this state of the
    /// case, only adds comments (see the module's rule).
    pub fn only_adds_comments(&self, batch: &[u8]) -> Result<()> {
        let refuse = |why: &str| Err(NoteError::NotOnlyComments(why.to_string()));
        let Some(chunks) = split_chunks(batch) else {
            return refuse("it is not a batch of changes");
        };
        let mut changes = Vec::new();
        // Bytes from another device: decoding and expanding stay inside the
        // guard, so a bug in Automerge's decoder costs this change only.
        for c in chunks {
            match catch_unwind(|| Change::try_from(c).map(|change| change.decode())) {
                Ok(Ok(change)) => changes.push(change),
                _ => return refuse("a change does not decode"),
            }
        }
        let lists = self.comment_lists();
        // Every operation the batch itself performs, by id.
        let mut own: HashSet<OpRef> = HashSet::new();
        for ch in &changes {
            for i in 0..ch.operations.len() as u64 {
                own.insert((ch.start_op.get().saturating_add(i), ch.actor_id.clone()));
            }
        }
        let mut made: HashSet<OpRef> = HashSet::new();
        for ch in &changes {
            for (i, op) in ch.operations.iter().enumerate() {
                let id = (
                    ch.start_op.get().saturating_add(i as u64),
                    ch.actor_id.clone(),
                );
                if !op.pred.iter().all(|p| own.contains(&(p.0, p.1.clone()))) {
                    return refuse("it overwrites or deletes what someone else wrote");
                }
                let target = obj_ref(&op.obj);
                let into_comments = target.as_ref().is_some_and(|t| lists.contains(t));
                let into_own = target.as_ref().is_some_and(|t| made.contains(t));
                match (&op.action, into_comments, into_own) {
                    // A new comment: a map inserted into a note's list.
                    (OpType::Make(ObjType::Map), true, _) if op.insert => {
                        made.insert(id);
                    }
                    // Its fields: plain values in a map the batch made.
                    (OpType::Put(_), _, true) if !op.insert && matches!(op.key, Key::Map(_)) => {}
                    _ => return refuse("it changes the case itself"),
                }
            }
        }
        Ok(())
    }
}
