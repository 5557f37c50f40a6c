//! [`PrivateDoc`]: a case's psychotherapy (process) notes.

use super::replica::{Replica, child, list_maps, push_map, set_text, string};
use super::search::{Query, SearchHit};
use super::{ChangeHash, NoteError, Result};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT};
use casebook_shared::ids::DocId;
use serde::Serialize;

const KIND: &str = "private";

/// Root keys written once, when the document is created.
const IDENTITY: &[&str] = &["kind", "case", "entries"];

/// A case's private notes, as one device's replica.
///
/// Root map: `kind: "private"`, `case` (hex id of the case) and `entries`, a
/// list of maps `{id, at, by, text}` with `text` as Automerge text.
pub struct PrivateDoc {
    replica: Replica,
}

/// One private note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivateEntry {
    pub id: String,
    /// When, as the caller wrote it (RFC 3339).
    pub at: String,
    /// Who: the name the writer typed, until the caller that knows
    /// accounts names the device that wrote it (`device`).
    pub by: String,
    pub text: String,
    /// The device (hex) that made the entry, read off its operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Written or altered by a device this one cannot vouch for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
}

impl PrivateDoc {
    /// A new private-notes document for `case`, written by `actor` (the
    /// device id; see [`CaseDoc::new`](super::CaseDoc::new) on actors).
    pub fn new(case: DocId, actor: &[u8]) -> Result<Self> {
        let mut replica = Replica::new(KIND, IDENTITY, actor)?;
        replica.write(|d| {
            d.put(ROOT, "case", case.to_hex())?;
            d.put_object(ROOT, "entries", ObjType::List)?;
            Ok(())
        })?;
        Ok(Self { replica })
    }

    /// Loads a document saved with [`Self::save`] or a whole history.
    pub fn load(bytes: &[u8], actor: &[u8]) -> Result<Self> {
        Ok(Self {
            replica: Replica::load(KIND, IDENTITY, bytes, actor)?,
        })
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.replica.save()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.replica.heads()
    }

    /// See [`CaseDoc::changes_since`](super::CaseDoc::changes_since).
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.replica.changes_since(heads)
    }

    /// See [`CaseDoc::apply`](super::CaseDoc::apply).
    pub fn apply(&mut self, bytes: &[u8]) -> Result<usize> {
        self.replica.apply(bytes)
    }

    /// See [`CaseDoc::holds`](super::CaseDoc::holds).
    pub fn holds(&mut self, bytes: &[u8]) -> bool {
        self.replica.all_known(bytes)
    }

    /// See [`CaseDoc::apply_or_drop`](super::CaseDoc::apply_or_drop).
    pub fn apply_or_drop(self, bytes: &[u8]) -> Result<(Self, usize)> {
        let (replica, n) = self.replica.apply_or_drop(bytes)?;
        Ok((PrivateDoc { replica }, n))
    }

    /// See [`CaseDoc::missing_deps`](super::CaseDoc::missing_deps).
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.replica.missing_deps()
    }

    /// The replica, for what sync asks of any document's history.
    pub(crate) fn replica_mut(&mut self) -> &mut super::Replica {
        &mut self.replica
    }

    /// This device's changes that the saved document `other` lacks (see
    /// `Replica::own_changes_not_in`).
    pub fn own_changes_not_in(
        &mut self,
        other: Option<&[u8]>,
        device: &[u8],
        pending: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        self.replica.own_changes_not_in(other, device, pending)
    }

    fn doc(&self) -> &AutoCommit {
        &self.replica.doc
    }

    /// The id of the case these notes belong to.
    pub fn case_id(&self) -> Option<DocId> {
        string(self.doc(), &ROOT, "case").and_then(|h| DocId::from_hex(&h).ok())
    }

    /// Adds an entry and returns its new id.
    pub fn add(&mut self, text: &str, by: &str, at: &str) -> Result<String> {
        if text.trim().is_empty() {
            return Err(NoteError::Empty("the private note"));
        }
        let id = super::new_note_id();
        self.replica.write(|d| {
            let entries = match child(d, &ROOT, "entries", ObjType::List) {
                Some(l) => l,
                None => d.put_object(ROOT, "entries", ObjType::List)?,
            };
            let entry = push_map(d, &entries, &[("id", &id), ("at", at), ("by", by)])?;
            set_text(d, &entry, "text", text)
        })?;
        Ok(id)
    }

    /// Rewrites an entry's text, as minimal splices.
    pub fn edit(&mut self, id: &str, text: &str) -> Result<()> {
        let entry = self
            .entry_objs()
            .into_iter()
            .find(|(eid, _)| eid == id)
            .map(|(_, obj)| obj)
            .ok_or_else(|| NoteError::NoSuchEntry(id.to_owned()))?;
        self.replica.write(|d| set_text(d, &entry, "text", text))
    }

    /// Every entry, by time, then id. (List order alone would group entries
    /// by the device that wrote them offline, not by when.)
    pub fn entries(&self) -> Vec<PrivateEntry> {
        let doc = self.doc();
        let mut entries: Vec<PrivateEntry> = self
            .entry_objs()
            .into_iter()
            .map(|(id, obj)| {
                let (device, whole) = super::authors::map_author(doc, &obj);
                PrivateEntry {
                    id,
                    at: string(doc, &obj, "at").unwrap_or_default(),
                    by: string(doc, &obj, "by").unwrap_or_default(),
                    text: string(doc, &obj, "text").unwrap_or_default(),
                    device,
                    unverified: !whole,
                }
            })
            .collect();
        entries.sort_by(|a, b| (&a.at, &a.id).cmp(&(&b.at, &b.id)));
        entries
    }

    /// Search of the entries by words in any order; `note_id` in each hit
    /// is the entry id and `field` is `text`.
    pub fn search(&self, query: &str) -> Vec<SearchHit> {
        let Some(query) = Query::new(query) else {
            return Vec::new();
        };
        self.entries()
            .into_iter()
            .filter_map(|e| {
                let (field, snippet, score) = query.judge(&[("text".to_string(), e.text)])?;
                Some(SearchHit {
                    note_id: Some(e.id),
                    field,
                    snippet,
                    score,
                })
            })
            .collect()
    }

    fn entry_objs(&self) -> Vec<(String, ObjId)> {
        let doc = self.doc();
        let Some(entries) = child(doc, &ROOT, "entries", ObjType::List) else {
            return Vec::new();
        };
        list_maps(doc, &entries)
            .into_iter()
            .map(|obj| (string(doc, &obj, "id").unwrap_or_default(), obj))
            .collect()
    }
}

impl std::fmt::Debug for PrivateDoc {
    /// Shows only the number of entries: they are the most sensitive notes
    /// the app holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateDoc")
            .field("entries", &self.entry_objs().len())
            .finish_non_exhaustive()
    }
}
