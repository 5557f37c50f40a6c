//! One device's copy of an Automerge document: loading, saving and exchanging
//! changes, shared by [`CaseDoc`](super::CaseDoc) and
//! [`PrivateDoc`](super::PrivateDoc), plus forgiving readers for the values
//! inside.
//!
//! Bytes reaching this module come from disk or from other devices, so every
//! decode is checked in full before it touches the live document, and a panic
//! inside Automerge's decoder becomes an error instead of taking the app down.

use super::{NoteError, Result};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, Automerge, AutomergeError, Change, ChangeHash, ObjId, ObjType, Prop, ROOT,
    ReadDoc, ScalarValue, Value, hydrate,
};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A document plus what makes it a *kind* of document: the root `kind`
/// value, and the root keys written once at creation.
pub(crate) struct Replica {
    pub(crate) doc: AutoCommit,
    kind: &'static str,
    /// Root keys set once when the document is created. After a merge each
    /// must still hold one value: two values mean the changes came from a
    /// different document that was created separately.
    identity: &'static [&'static str],
}

impl Replica {
    /// A new empty document written by `actor`.
    pub(crate) fn new(
        kind: &'static str,
        identity: &'static [&'static str],
        actor: &[u8],
    ) -> Result<Self> {
        let mut doc = AutoCommit::new();
        doc.set_actor(ActorId::from(actor));
        doc.put(ROOT, "kind", kind)?;
        Ok(Self {
            doc,
            kind,
            identity,
        })
    }

    /// Loads a saved document (or a whole history of changes) and checks its
    /// kind.
    pub(crate) fn load(
        kind: &'static str,
        identity: &'static [&'static str],
        bytes: &[u8],
        actor: &[u8],
    ) -> Result<Self> {
        if !plain_chunks(bytes) {
            return Err(NoteError::Malformed(
                "loading: not a document or changes as this client writes them".into(),
            ));
        }
        let mut doc = match catch_unwind(|| AutoCommit::load(bytes)) {
            Ok(Ok(doc)) => doc,
            Ok(Err(AutomergeError::MissingDeps)) => return Err(NoteError::MissingDeps),
            Ok(Err(e)) => return Err(NoteError::Malformed(format!("loading: {e}"))),
            Err(_) => {
                return Err(NoteError::Malformed(
                    "loading: the Automerge decoder failed on this data".into(),
                ));
            }
        };
        doc.set_actor(ActorId::from(actor));
        let replica = Self {
            doc,
            kind,
            identity,
        };
        replica.check_kind()?;
        Ok(replica)
    }

    /// Runs one logical edit as one Automerge change: committed if `f`
    /// succeeds, rolled back whole if it fails, so an error never leaves half
    /// an edit behind to be synced.
    pub(crate) fn write<T>(&mut self, f: impl FnOnce(&mut AutoCommit) -> Result<T>) -> Result<T> {
        match f(&mut self.doc) {
            Ok(v) => {
                self.doc.commit();
                Ok(v)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    pub(crate) fn copy(&self) -> Self {
        Self {
            doc: self.doc.clone(),
            kind: self.kind,
            identity: self.identity,
        }
    }

    pub(crate) fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub(crate) fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Changes not reachable from `heads`, as concatenated change chunks.
    /// Hashes this document does not know are ignored, so a peer's heads can
    /// be passed as they are.
    pub(crate) fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc
            .get_changes(heads)
            .iter()
            .flat_map(|c| c.raw_bytes().iter().copied())
            .collect()
    }

    /// Applies a batch of changes or a saved document, all or nothing.
    ///
    /// Automerge's incremental load skips chunks it cannot parse without
    /// saying so, so the batch is first decoded on its own, where every fault
    /// is an error. Missing dependencies are not a fault: such changes wait,
    /// unapplied, until their dependencies arrive (see [`Self::missing_deps`]).
    /// The batch is then applied to a copy that replaces the document only
    /// once it has been checked to still be the same document.
    ///
    /// Returns how many changes were applied, counting waiting changes when
    /// they are applied; a duplicate batch returns 0.
    pub(crate) fn apply(&mut self, bytes: &[u8]) -> Result<usize> {
        if self.all_known(bytes) {
            return Ok(0);
        }
        let (after, new) = self.copy().apply_new(bytes)?;
        *self = after;
        Ok(new)
    }

    /// As [`Self::apply`], without the copy: for a replica its caller drops
    /// if this fails (a failure may leave it half changed). Copying costs
    /// time in proportion to the whole document, and a watching device
    /// applies one small change at a time.
    pub(crate) fn apply_or_drop(mut self, bytes: &[u8]) -> Result<(Self, usize)> {
        if self.all_known(bytes) {
            return Ok((self, 0));
        }
        self.apply_new(bytes)
    }

    /// Applies a batch not all known here, in place, and checks the result
    /// is still the same document.
    fn apply_new(mut self, bytes: &[u8]) -> Result<(Self, usize)> {
        if !plain_chunks(bytes) {
            return Err(NoteError::Malformed(
                "decoding changes: not a document or changes as this client writes them".into(),
            ));
        }
        guarded("decoding changes", || match Automerge::load(bytes) {
            Ok(_) | Err(AutomergeError::MissingDeps) => Ok(()),
            Err(e) => Err(e),
        })?;
        let before = self.doc.stats().num_changes;
        guarded("applying changes", || self.doc.load_incremental(bytes))?;
        self.check_kind()?;
        if let Some(key) = self
            .identity
            .iter()
            .find(|key| self.doc.get_all(ROOT, **key).is_ok_and(|v| v.len() > 1))
        {
            return Err(NoteError::ForeignChanges(self.kind, key));
        }
        let new = self.doc.stats().num_changes.saturating_sub(before);
        Ok((self, usize::try_from(new).unwrap_or(usize::MAX)))
    }

    /// Whether `bytes` holds only changes this document already has.
    /// Applying anything costs time in proportion to the whole document,
    /// even a batch of duplicates, so echoes and resends are caught here. Any
    /// doubt (a document chunk, a chunk that does not decode) answers no and
    /// leaves the batch to the full path.
    pub(crate) fn all_known(&mut self, bytes: &[u8]) -> bool {
        let Some(chunks) = split_chunks(bytes) else {
            return false;
        };
        let hashes: Option<Vec<ChangeHash>> = chunks
            .into_iter()
            .map(|c| {
                let hash = catch_unwind(|| Change::try_from(c)).ok()?.ok()?.hash();
                // Decoding does not check the checksum (the hash's first
                // bytes); a known change with a wrong one is damaged data.
                (hash.as_ref().get(..4) == c.get(4..8)).then_some(hash)
            })
            .collect();
        match hashes {
            Some(h) if !h.is_empty() => self.doc.get_missing_deps(&h).is_empty(),
            _ => false,
        }
    }

    /// The changes a batch builds on from outside itself: the state it was
    /// written against. `None` when the bytes are not change chunks.
    pub(crate) fn base_of(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
        let changes: Vec<Change> = split_chunks(bytes)?
            .into_iter()
            .map(|c| catch_unwind(|| Change::try_from(c)).ok()?.ok())
            .collect::<Option<_>>()?;
        let inside: std::collections::HashSet<ChangeHash> =
            changes.iter().map(Change::hash).collect();
        let mut base: Vec<ChangeHash> = changes
            .iter()
            .flat_map(|c| c.deps().iter().copied())
            .filter(|d| !inside.contains(d))
            .collect();
        base.sort();
        base.dedup();
        Some(base)
    }

    /// The changes of a batch that no other change of it builds on and
    /// that `device` wrote (a batch an owner's device sends on another's
    /// behalf holds none), each with its last operation's number (which
    /// only grows along a history): the newest, for a device's own batch.
    /// `None` when the bytes are not change chunks.
    pub(crate) fn tips_of(bytes: &[u8], device: &[u8]) -> Option<Vec<(ChangeHash, u64)>> {
        let changes: Vec<Change> = split_chunks(bytes)?
            .into_iter()
            .map(|c| catch_unwind(|| Change::try_from(c)).ok()?.ok())
            .collect::<Option<_>>()?;
        let built_on: std::collections::HashSet<ChangeHash> = changes
            .iter()
            .flat_map(|c| c.deps().iter().copied())
            .collect();
        Some(
            changes
                .iter()
                .filter(|c| !built_on.contains(&c.hash()))
                .filter(|c| {
                    let actor = c.actor_id().to_bytes();
                    actor.starts_with(device) && actor.len() > device.len()
                })
                .map(|c| (c.hash(), c.max_op()))
                .collect(),
        )
    }

    /// Those of `hashes` not applied here.
    pub(crate) fn lacking(&mut self, hashes: &[ChangeHash]) -> Vec<ChangeHash> {
        hashes
            .iter()
            .filter(|h| self.doc.get_change_by_hash(h).is_none())
            .copied()
            .collect()
    }

    /// Whether every one of `hashes` is applied here (not merely waiting).
    pub(crate) fn has_applied(&mut self, hashes: &[ChangeHash]) -> bool {
        hashes
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
    }

    /// The document as it was at `heads`, which must all be applied here.
    /// Replays the history up to them: costly on a long document, so kept
    /// for the rare judgement that needs it.
    pub(crate) fn fork_at(&mut self, heads: &[ChangeHash]) -> Result<Self> {
        let mut doc = guarded("rewinding", || self.doc.fork_at(heads))?;
        doc.set_actor(self.doc.get_actor().clone());
        Ok(Self {
            doc,
            kind: self.kind,
            identity: self.identity,
        })
    }

    /// Hashes of changes that arrived changes depend on but that have not
    /// arrived themselves. The waiting changes are kept by [`Self::save`]
    /// (after the document) and applied as soon as what they need arrives.
    pub(crate) fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    fn check_kind(&self) -> Result<()> {
        match string(&self.doc, &ROOT, "kind") {
            Some(k) if k == self.kind => Ok(()),
            found => Err(NoteError::WrongKind {
                expected: self.kind,
                found: found.unwrap_or_default(),
            }),
        }
    }
}

/// Runs an Automerge decode, turning a panic into an error. The decoder is
/// large and reads bytes from other devices and from disk; a bug there must
/// cost one batch, not the app. Nothing outlives a panic: callers decode into
/// values they throw away on error.
pub(super) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> std::result::Result<T, AutomergeError>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(NoteError::Malformed(format!("{what}: {e}"))),
        Err(_) => Err(NoteError::Malformed(format!(
            "{what}: the Automerge decoder failed on this data"
        ))),
    }
}

/// Whether every change in a batch was written by one of `device`'s actors
/// (the device id, then a per-process suffix). A change sealed by one device
/// cannot then carry operations that name another device as their author,
/// so who wrote a value (a signature, a comment) can be read off its
/// operation's actor. An empty or undecodable batch is not.
pub fn written_by(batch: &[u8], device: &[u8]) -> bool {
    let Some(chunks) = split_chunks(batch) else {
        return false;
    };
    !chunks.is_empty()
        && chunks.into_iter().all(|c| {
            // Bytes from another device: decoding stays inside the guard.
            catch_unwind(|| Change::try_from(c).map(|ch| ch.actor_id().to_bytes().to_vec()))
                .ok()
                .and_then(Result::ok)
                .is_some_and(|actor| actor.starts_with(device) && actor.len() > device.len())
        })
}

/// Splits concatenated change chunks, or `None` if the bytes are anything
/// else. A chunk is the magic bytes, a 4-byte checksum, a type byte
/// (1 = change, 2 = compressed change), a LEB128 length and the body.
pub(crate) fn split_chunks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    chunks_of(bytes, |t| matches!(t, 1 | 2))
}

/// Whether `bytes` are only chunks of a document (0) or of changes (1, 2):
/// what this client writes, and all it hands to Automerge from outside.
/// Automerge also reads "bundle" chunks (3), whose decoder a 33-byte chunk
/// makes allocate gigabytes (found by `fuzz/`, target `fetched_body`): a
/// member could stop every device of a case with one such envelope.
pub(crate) fn plain_chunks(bytes: &[u8]) -> bool {
    chunks_of(bytes, |t| matches!(t, 0..=2)).is_some()
}

/// Splits `bytes` into chunks whose type `allowed` accepts, or `None`.
fn chunks_of(mut bytes: &[u8], allowed: fn(u8) -> bool) -> Option<Vec<&[u8]>> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.get(..4)? != MAGIC || !allowed(*bytes.get(8)?) {
            return None;
        }
        let (mut len, mut at) = (0u64, 9);
        loop {
            let b = *bytes.get(at)?;
            len |= u64::from(b & 0x7f).checked_shl(7 * (at as u32 - 9))?;
            at += 1;
            if b & 0x80 == 0 {
                break;
            }
            if at > 18 {
                return None;
            }
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        chunks.push(bytes.get(..end)?);
        bytes = &bytes[end..];
    }
    Some(chunks)
}

/// The child object at `prop` if it has type `ty`.
pub(crate) fn child(
    doc: &impl ReadDoc,
    obj: &ObjId,
    prop: impl Into<Prop>,
    ty: ObjType,
) -> Option<ObjId> {
    match doc.get(obj, prop) {
        Ok(Some((Value::Object(t), id))) if t == ty => Some(id),
        _ => None,
    }
}

/// The value at `prop` read as a string, whether it is stored as text, a
/// string or a number; `None` if absent or of another type. Readers are this
/// lenient so that a document from an older or newer client still shows.
pub(crate) fn string(doc: &impl ReadDoc, obj: &ObjId, prop: impl Into<Prop>) -> Option<String> {
    match doc.get(obj, prop).ok()?? {
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        (Value::Scalar(s), _) => scalar_string(&s),
        _ => None,
    }
}

/// The value at `key` of a hydrated map, read as leniently as [`string`].
pub(crate) fn hydrated_string(map: &hydrate::Map, key: &str) -> Option<String> {
    match map.get(key)? {
        hydrate::Value::Text(t) => Some(String::from(t)),
        hydrate::Value::Scalar(s) => scalar_string(s),
        _ => None,
    }
}

fn scalar_string(s: &ScalarValue) -> Option<String> {
    match s {
        ScalarValue::Str(s) => Some(s.to_string()),
        ScalarValue::Int(n) => Some(n.to_string()),
        ScalarValue::Uint(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An object read whole. One pass is several times faster than a lookup per
/// field, which matters when listing or searching every note of a case.
pub(crate) fn hydrate_map(doc: &impl ReadDoc, obj: &ObjId) -> Option<hydrate::Map> {
    match doc.hydrate(obj, None).ok()? {
        hydrate::Value::Map(m) => Some(m),
        _ => None,
    }
}

/// The maps in a list, skipping anything else.
pub(crate) fn list_maps(doc: &impl ReadDoc, list: &ObjId) -> Vec<ObjId> {
    (0..doc.length(list))
        .filter_map(|i| child(doc, list, i, ObjType::Map))
        .collect()
}

/// The text object at `key`, created if missing or of another type.
///
/// Creating is for documents that lack the field (written by an older client,
/// or damaged); fields of well-formed documents already exist, which is what
/// keeps concurrent edits from each creating their own.
pub(crate) fn text_obj(doc: &mut AutoCommit, obj: &ObjId, key: &str) -> Result<ObjId> {
    match child(doc, obj, key, ObjType::Text) {
        Some(id) => Ok(id),
        None => Ok(doc.put_object(obj, key, ObjType::Text)?),
    }
}

/// Sets the text at `key` to `new`, as the smallest set of splices that turns
/// the old text into the new one. Rewriting the whole text instead would make
/// a concurrent edit elsewhere in the same field collide with the rewrite.
pub(crate) fn set_text(doc: &mut AutoCommit, obj: &ObjId, key: &str, new: &str) -> Result<()> {
    let id = text_obj(doc, obj, key)?;
    doc.update_text(&id, new)?;
    Ok(())
}

/// Appends a map of `(key, string)` entries to the end of a list.
pub(crate) fn push_map(
    doc: &mut AutoCommit,
    list: &ObjId,
    entries: &[(&str, &str)],
) -> Result<ObjId> {
    let at = doc.length(list);
    let map = doc.insert_object(list, at, ObjType::Map)?;
    for (k, v) in entries {
        doc.put(&map, *k, *v)?;
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(actor: &[u8]) -> Replica {
        Replica::new("test", &["kind"], actor).unwrap()
    }

    #[test]
    fn duplicates_are_recognised_without_applying() {
        let mut a = replica(b"a");
        let base = a.heads();
        for i in 0..3 {
            a.write(|d| Ok(d.put(ROOT, "n", i)?)).unwrap();
        }
        let batch = a.changes_since(&base);
        assert_eq!(split_chunks(&batch).unwrap().len(), 3);
        assert!(a.all_known(&batch));

        let mut b = Replica::load("test", &["kind"], &a.save(), b"b").unwrap();
        let base = a.heads();
        b.write(|d| Ok(d.put(ROOT, "m", 1)?)).unwrap();
        let new = b.changes_since(&base);
        assert!(!a.all_known(&new));
        let saved = a.save();
        assert!(!a.all_known(&saved));
        assert!(!a.all_known(&[]));
        let mut bad = batch.clone();
        bad[4] ^= 1;
        assert!(!a.all_known(&bad));
        assert!(split_chunks(&batch[..batch.len() - 1]).is_none());
        assert_eq!(a.apply(&new).unwrap(), 1);
        assert_eq!(a.apply(&new).unwrap(), 0);
    }

    #[test]
    fn applying_without_a_copy_takes_what_applying_with_one_takes() {
        let mut a = replica(b"a");
        let mut b = Replica::load("test", &["kind"], &a.save(), b"b").unwrap();
        let base = b.heads();
        b.write(|d| Ok(d.put(ROOT, "m", 1)?)).unwrap();
        let new = b.changes_since(&base);
        let mut copied = a.copy();
        assert_eq!(copied.apply(&new).unwrap(), 1);
        let (a, n) = a.apply_or_drop(&new).unwrap();
        assert_eq!(n, 1);
        let (mut a, n) = a.apply_or_drop(&new).unwrap();
        assert_eq!(n, 0, "a batch already here is no change");
        assert_eq!(a.heads(), copied.heads());
        // Another document's changes (a second `kind`) are refused.
        let mut other = Replica::new("test", &["kind"], b"c").unwrap();
        let foreign = other.changes_since(&[]);
        assert!(matches!(
            a.apply_or_drop(&foreign),
            Err(NoteError::ForeignChanges("test", "kind"))
        ));
    }
}
