//! Who wrote what in a note, read off the operations rather than the text.
//!
//! Every change is written as the device that sealed it (`sync::check`),
//! save what an owner's device carries, in its snapshots and on other
//! devices' behalf where the relay lost their changes (the owner is trusted with
//! the whole case). So an operation's actor names its device: the first
//! 32 bytes of the
//! actor, the device id, before a per-process suffix. A comment or an
//! addendum is a map its author made and filled; the map's creation names
//! the author, and a field of it written by another device means someone
//! altered it.

use std::collections::BTreeSet;

use automerge::{ObjId, ObjType, ReadDoc, Value};

use super::case::CaseDoc;
use super::note::Note;
use super::replica::child;

/// The device (hex) an actor belongs to, if it is a device's.
pub(super) fn device_of(actor: &[u8]) -> Option<String> {
    (actor.len() > 32).then(|| hex::encode(&actor[..32]))
}

/// For each map in the list `key` of a note, in order: the device that
/// made it, and whether every field in it was written by that device too.
fn remark_authors(doc: &impl ReadDoc, note: &ObjId, key: &str) -> Vec<(Option<String>, bool)> {
    let Some(list) = child(doc, note, key, ObjType::List) else {
        return Vec::new();
    };
    (0..doc.length(&list))
        .filter_map(|i| match doc.get(&list, i).ok().flatten() {
            Some((Value::Object(ObjType::Map), id)) => Some(id),
            _ => None,
        })
        .map(|map| map_author(doc, &map))
        .collect()
}

/// The device that made a `{at, by, text}` map (a remark, a psychotherapy
/// note), and whether every field in it was written by that device too.
pub(super) fn map_author(doc: &impl ReadDoc, map: &ObjId) -> (Option<String>, bool) {
    let ObjId::Id(_, maker, _) = map else {
        return (None, false);
    };
    let whole = ["at", "by", "text"]
        .iter()
        .all(|f| match doc.get(map, *f).ok().flatten() {
            Some((_, ObjId::Id(_, writer, _))) => writer == *maker,
            Some((_, ObjId::Root)) => false,
            None => true,
        });
    (device_of(maker.to_bytes()), whole)
}

/// Keys of a note map that are not its content: who made and signed it,
/// and the remarks, which carry their own authors.
const NOT_CONTENT: [&str; 7] = [
    "created_by",
    "signed_by",
    "signed_at",
    "signed_heads",
    "signed_hash",
    "comments",
    "addenda",
];

/// Every device that wrote what a note's content says now: each character
/// of its text fields as it stands, and its date, start, duration and
/// format. (Text another device deleted leaves no mark here; the audit
/// trail records the edit.)
fn content_writers(doc: &impl ReadDoc, note: &ObjId) -> BTreeSet<String> {
    let mut writers = BTreeSet::new();
    let mut add = |id: &ObjId| {
        if let ObjId::Id(_, actor, _) = id {
            writers.extend(device_of(actor.to_bytes()));
        }
    };
    for item in doc.map_range(note, ..) {
        if NOT_CONTENT.contains(&item.key.as_ref()) {
            continue;
        }
        let id = item.id();
        add(&id);
        if matches!(item.value, automerge::ValueRef::Object(ObjType::Text)) {
            for ch in doc.list_range(&id, ..) {
                add(&ch.id());
            }
        }
    }
    writers
}

impl CaseDoc {
    /// Fills in who wrote each comment and addendum of a note read from
    /// this document.
    pub(super) fn with_remark_authors(&self, mut note: Note) -> Note {
        let Some(obj) = self.note_obj(&note.id) else {
            return note;
        };
        let doc = self.doc();
        // The note map's maker made the note; its author's name must be
        // that device's writing too.
        if let ObjId::Id(_, maker, _) = &obj {
            note.created_by_device = device_of(maker.to_bytes());
            note.creator_unverified = match doc.get(&obj, "created_by").ok().flatten() {
                Some((_, ObjId::Id(_, writer, _))) => writer != *maker,
                _ => false,
            };
        }
        note.content_devices = content_writers(doc, &obj).into_iter().collect();
        for (key, remarks) in [
            ("comments", &mut note.comments),
            ("addenda", &mut note.addenda),
        ] {
            let authors = remark_authors(doc, &obj, key);
            // Both read the list's maps in order, so they pair up.
            if authors.len() != remarks.len() {
                remarks.iter_mut().for_each(|r| r.unverified = true);
                continue;
            }
            for (r, (device, whole)) in remarks.iter_mut().zip(authors) {
                r.device = device;
                r.unverified = !whole;
            }
        }
        note
    }
}
