//! Documents on this device: their access state and keys, their saved
//! bodies and the copies kept loaded, and the listing read from summaries
//! without loading Automerge. Making and editing cases, which check roles
//! and record themselves, are operations (`app::cases`) built on these.

use casebook_shared::access::Role;
use std::sync::Arc;

use casebook_shared::ids::DocId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Inconsistent, Result};
use crate::notes::{CaseDoc, CaseSummary, PrivateDoc};
use crate::store::{DocSync, OutKind, Store};

pub(crate) mod access_state;
mod cache;
pub(crate) mod queue;

pub(crate) use cache::DocCache;

pub use access_state::{Access, DocMeta};

/// What this account's role on a document does not allow. A member's
/// role can shrink or end while a device is offline, so these come up in
/// ordinary use, not only from a misbehaving front end.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// Writing takes the write role (or ownership); the role held is this.
    #[error("not allowed: your role on this case is {}", .0.name())]
    CannotWrite(Role),
    #[error("not allowed: your role on this case does not allow comments")]
    NoComments,
    /// The share expired or its owner ended it.
    #[error("not allowed: this case is no longer shared with you")]
    NoLongerShared,
}

/// A listing entry: what `case list` shows, read without loading Automerge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Summary {
    Case(CaseSummary),
    Private { case: DocId },
}

/// A document held loaded in memory.
pub enum Loaded {
    Case(CaseDoc),
    Private(PrivateDoc),
}

impl Loaded {
    /// Opens saved bytes, telling a case from a private document by its root.
    pub fn load(bytes: &[u8], actor: &[u8]) -> Result<Loaded> {
        match CaseDoc::load(bytes, actor) {
            Ok(c) => Ok(Loaded::Case(c)),
            Err(case_err) => match PrivateDoc::load(bytes, actor) {
                Ok(p) => Ok(Loaded::Private(p)),
                Err(_) => Err(case_err.into()),
            },
        }
    }

    /// Applies a batch of changes (or saved documents) in one call; on an
    /// error the document is gone (the caller loads it again from the
    /// store, which this did not touch), so no copy is made to undo it.
    /// Returns it with how many changes went in (waiting ones not counted).
    pub fn apply(self, bytes: &[u8]) -> Result<(Loaded, usize)> {
        Ok(match self {
            Loaded::Case(c) => {
                let (c, n) = c.apply_or_drop(bytes)?;
                (Loaded::Case(c), n)
            }
            Loaded::Private(p) => {
                let (p, n) = p.apply_or_drop(bytes)?;
                (Loaded::Private(p), n)
            }
        })
    }

    /// This device's changes that the saved document `other` lacks,
    /// leaving out `pending` ones, as one batch, and how many.
    pub fn own_changes_not_in(
        &mut self,
        other: Option<&[u8]>,
        device: &[u8],
        pending: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        Ok(match self {
            Loaded::Case(c) => c.own_changes_not_in(other, device, pending)?,
            Loaded::Private(p) => p.own_changes_not_in(other, device, pending)?,
        })
    }

    /// Changes that changes held here build on and that have not arrived.
    pub fn missing_deps(&mut self) -> Vec<crate::notes::ChangeHash> {
        match self {
            Loaded::Case(c) => c.missing_deps(),
            Loaded::Private(p) => p.missing_deps(),
        }
    }

    /// The replica, for what sync asks of any document's history.
    pub(crate) fn replica_mut(&mut self) -> &mut crate::notes::Replica {
        match self {
            Loaded::Case(c) => c.replica_mut(),
            Loaded::Private(p) => p.replica_mut(),
        }
    }

    /// Whether every change of `bytes` is in the document already.
    pub fn holds(&mut self, bytes: &[u8]) -> bool {
        match self {
            Loaded::Case(c) => c.holds(bytes),
            Loaded::Private(p) => p.holds(bytes),
        }
    }

    /// Saved bytes.
    pub fn save(&mut self) -> Vec<u8> {
        match self {
            Loaded::Case(c) => c.save(),
            Loaded::Private(p) => p.save(),
        }
    }

    /// The listing summary.
    pub fn summary(&self) -> Summary {
        match self {
            Loaded::Case(c) => Summary::Case(c.summary()),
            Loaded::Private(p) => Summary::Private {
                case: p.case_id().unwrap_or(DocId([0; 16])),
            },
        }
    }
}

/// Sealed in a snapshot envelope: the listing summary and the saved document.
#[derive(Serialize, Deserialize)]
pub struct SnapshotBody {
    pub summary: Vec<u8>,
    pub doc: Vec<u8>,
}

/// The part of a [`crate::Home`] that holds its documents: the saved
/// bodies and listing summaries in the store, and the copies kept loaded
/// in memory. It reads and writes documents and nothing else: who may
/// write, what an edit records and what it queues for the relay are the
/// operations' business (`app::cases`), so documents depend on the store
/// and not on the home.
pub struct Docs<'h> {
    store: &'h Store,
    cache: &'h DocCache,
}

impl<'h> Docs<'h> {
    pub(crate) fn new(store: &'h Store, cache: &'h DocCache) -> Self {
        Docs { store, cache }
    }

    /// The Automerge actor this process writes as.
    pub(crate) fn actor(&self) -> &'h [u8] {
        self.cache.actor()
    }

    /// Saves a loaded document and queues its new `changes` (sealed as
    /// `envelope` when that could be done now) in one transaction.
    pub(crate) fn save(
        &self,
        doc: &DocId,
        mut loaded: Loaded,
        changes: &[u8],
        kind: OutKind,
        (env_id, envelope): ([u8; 24], Option<Vec<u8>>),
    ) -> Result<()> {
        let body = loaded.save();
        let summary = serde_json_summary(&loaded.summary());
        let rev = self.store.transaction(|s| {
            let mut sync = s.doc_sync(doc)?.unwrap_or_default();
            if !changes.is_empty() {
                sync.since_snapshot += queue::snapshot_weight(changes.len());
            }
            let rev = s.put_doc(doc, &body, &summary)?;
            s.set_doc_sync(doc, sync)?;
            if !changes.is_empty() {
                s.push_outbox_sealed(doc, kind, &env_id, changes, envelope.as_deref())?;
            }
            Ok(rev)
        })?;
        self.cache.keep(*doc, rev, loaded);
        Ok(())
    }

    /// Every case's summary, sorted by name.
    pub fn cases(&self) -> Result<Vec<(DocId, CaseSummary)>> {
        Ok(self
            .listing()?
            .into_iter()
            .map(|(id, _, s)| (id, CaseSummary::clone(&s)))
            .collect())
    }

    /// Every case's summary as held in memory, with the revision it was
    /// read at, sorted by name. A document without a summary (known only
    /// by its sync state, or forgotten) is remembered as such under its
    /// revision, like any other.
    pub(crate) fn listing(&self) -> Result<Vec<(DocId, i64, Arc<CaseSummary>)>> {
        let mut out = Vec::new();
        for (id, rev) in self.store.doc_revs()? {
            let summary = match self.cache.summary(&id, rev) {
                Some(held) => held,
                None => {
                    let read =
                        self.store.doc_summary(&id)?.and_then(
                            |bytes| match serde_json::from_slice::<Summary>(&bytes) {
                                Ok(Summary::Case(s)) => Some(Arc::new(s)),
                                _ => None,
                            },
                        );
                    self.cache.keep_summary(id, rev, read.clone());
                    read
                }
            };
            out.extend(summary.map(|s| (id, rev, s)));
        }
        out.sort_by_cached_key(|(id, _, s)| (s.name.to_lowercase(), *id));
        Ok(out)
    }

    /// The case a person means: a unique prefix of its id, else its
    /// client's name (whole, or a unique part of it), case-insensitive.
    /// Ambiguous input names the candidates.
    pub fn resolve_case(&self, input: &str) -> Result<DocId> {
        let needle = input.trim().to_lowercase();
        if needle.is_empty() {
            return Err(Error::UnknownCase(input.to_string()));
        }
        let cases = self.cases()?;
        let by_id: Vec<&(DocId, CaseSummary)> = cases
            .iter()
            .filter(|(d, _)| d.to_hex().starts_with(&needle))
            .collect();
        let by_whole_name: Vec<&(DocId, CaseSummary)> = cases
            .iter()
            .filter(|(_, s)| s.name.to_lowercase() == needle)
            .collect();
        let by_part: Vec<&(DocId, CaseSummary)> = cases
            .iter()
            .filter(|(_, s)| s.name.to_lowercase().contains(&needle))
            .collect();
        for found in [by_id, by_whole_name, by_part] {
            match found.as_slice() {
                [] => continue,
                [(id, _)] => return Ok(*id),
                many => {
                    return Err(Error::AmbiguousCase(
                        input.to_string(),
                        many.iter()
                            .map(|(id, s)| format!("{} {}", id.short(), s.name))
                            .collect(),
                    ));
                }
            }
        }
        Err(Error::UnknownCase(input.to_string()))
    }

    /// Cases whose client has this name (case-insensitive), to warn
    /// before a second case for one client is opened.
    pub fn cases_named(&self, name: &str) -> Result<Vec<DocId>> {
        let name = name.trim().to_lowercase();
        Ok(self
            .cases()?
            .into_iter()
            .filter(|(_, s)| s.name.to_lowercase() == name)
            .map(|(id, _)| id)
            .collect())
    }

    /// The document loaded, from memory if the copy there is current, with
    /// the store's revision it is: body and revision are read together, so
    /// a copy is never kept under a revision another writer made since.
    pub(crate) fn take_loaded(&self, doc: &DocId) -> Result<(Loaded, i64)> {
        let rev = self.store.doc_rev(doc)?;
        if let Some(l) = self.cache.take(doc, rev) {
            return Ok((l, rev));
        }
        let (body, rev) = self
            .store
            .doc_body_rev(doc)?
            .ok_or_else(|| Error::UnknownCase(doc.to_hex()))?;
        Ok((Loaded::load(&body, self.cache.actor())?, rev))
    }

    /// Changes that `doc`'s changes build on and that have not arrived:
    /// while any is missing, the document is incomplete. None for a
    /// document with nothing saved.
    pub(crate) fn missing_deps(&self, doc: &DocId) -> Result<Vec<crate::notes::ChangeHash>> {
        if !self.store.has_body(doc)? {
            return Ok(Vec::new());
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let missing = loaded.missing_deps();
        self.keep_loaded(doc, rev, loaded);
        Ok(missing)
    }

    /// Whether `doc` is held in memory: asking of it costs no load.
    pub(crate) fn is_loaded(&self, doc: &DocId) -> bool {
        self.cache.holds(doc)
    }

    /// Those of `hashes` that `doc` as saved here lacks (all of them, for
    /// a document with nothing saved).
    pub(crate) fn lacking(
        &self,
        doc: &DocId,
        hashes: &[crate::notes::ChangeHash],
    ) -> Result<Vec<crate::notes::ChangeHash>> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        if !self.store.has_body(doc)? {
            return Ok(hashes.to_vec());
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded.replica_mut().lacking(hashes);
        self.keep_loaded(doc, rev, loaded);
        Ok(out)
    }

    /// The changes among `hashes` that `doc` holds and `device` made, with
    /// that device's changes beneath them, as bytes (see
    /// `notes::lineage`).
    pub(crate) fn own_lineage(
        &self,
        doc: &DocId,
        hashes: &[crate::notes::ChangeHash],
        device: &[u8],
        run: crate::notes::lineage::Run,
    ) -> Result<Vec<Vec<u8>>> {
        if !self.store.has_body(doc)? {
            return Ok(Vec::new());
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded.replica_mut().own_lineage(hashes, device, run);
        self.keep_loaded(doc, rev, loaded);
        Ok(out)
    }

    /// Each of `hashes` that `doc` holds: hash, actor and bytes.
    pub(crate) fn held_with_actor(
        &self,
        doc: &DocId,
        hashes: &[crate::notes::ChangeHash],
    ) -> Result<Vec<crate::notes::HeldChange>> {
        if !self.store.has_body(doc)? {
            return Ok(Vec::new());
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded.replica_mut().held_with_actor(hashes);
        self.keep_loaded(doc, rev, loaded);
        Ok(out)
    }

    /// This device's changes that `doc` holds and the saved document
    /// `other` (a snapshot) lacks, other than `pending` ones.
    pub(crate) fn own_changes_not_in(
        &self,
        doc: &DocId,
        other: Option<&[u8]>,
        device: &[u8],
        pending: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded.own_changes_not_in(other, device, pending);
        self.keep_loaded(doc, rev, loaded);
        out
    }

    /// Changes another device than `device` made that `doc` holds and the
    /// saved document `other` (a snapshot) lacks.
    pub(crate) fn others_changes_not_in(
        &self,
        doc: &DocId,
        other: &[u8],
        device: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded.replica_mut().others_changes_not_in(other, device);
        self.keep_loaded(doc, rev, loaded);
        Ok(out?)
    }

    /// What `doc` holds that a whole fetch of it did not serve, neither in
    /// the relay's `snapshot` nor among `served`, nor `pending` here (see
    /// `Replica::unserved`).
    pub(crate) fn unserved(
        &self,
        doc: &DocId,
        snapshot: Option<&[u8]>,
        served: &[&[u8]],
        device: &[u8],
        pending: &[u8],
    ) -> Result<crate::notes::Unserved> {
        if !self.store.has_body(doc)? {
            return Ok(crate::notes::Unserved::default());
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let out = loaded
            .replica_mut()
            .unserved(snapshot, served, device, pending);
        self.keep_loaded(doc, rev, loaded);
        Ok(out?)
    }

    /// Whether `doc` as saved here holds every change of `changes` (one
    /// with nothing saved holds none).
    pub(crate) fn holds_changes(&self, doc: &DocId, changes: &[u8]) -> Result<bool> {
        if !self.store.has_body(doc)? {
            return Ok(false);
        }
        let (mut loaded, rev) = self.take_loaded(doc)?;
        let held = loaded.holds(changes);
        self.keep_loaded(doc, rev, loaded);
        Ok(held)
    }

    /// Puts a document read without change back in memory, as the
    /// revision [`Self::take_loaded`] said it is.
    pub(crate) fn keep_loaded(&self, doc: &DocId, rev: i64, loaded: Loaded) {
        self.cache.keep(*doc, rev, loaded);
    }

    /// Reads a case, without recording it: the operations a person runs
    /// record their reads.
    pub fn read_case<T>(&self, id: &DocId, f: impl FnOnce(&CaseDoc) -> T) -> Result<T> {
        Ok(self.read_case_at(id, f)?.0)
    }

    /// [`Self::read_case`], with the heads of the very copy it read: what a
    /// form drawn from that reading was drawn from.
    pub fn read_case_at<T>(
        &self,
        id: &DocId,
        f: impl FnOnce(&CaseDoc) -> T,
    ) -> Result<(T, Vec<crate::notes::ChangeHash>)> {
        let (mut loaded, rev) = self.take_loaded(id)?;
        let out = match &mut loaded {
            Loaded::Case(c) => Ok((f(c), c.heads())),
            Loaded::Private(_) => Err(Error::UnknownCase(id.to_hex())),
        };
        self.keep_loaded(id, rev, loaded);
        out
    }

    /// A case made ready to search, kept while the case is unchanged: in
    /// memory, and in the store, so that the first search after unlocking
    /// unseals text rather than loading every document. A case loaded only
    /// for this is not kept loaded: a search of every case must not hold
    /// every document in memory.
    pub fn case_units(&self, id: &DocId) -> Result<Arc<crate::notes::CaseIndex>> {
        self.case_units_at(id, self.store.doc_rev(id)?)
    }

    /// [`Self::case_units`] for a case listed at revision `rev`: a search
    /// of every case reads their revisions in one go, with the listing.
    pub(crate) fn case_units_at(
        &self,
        id: &DocId,
        rev: i64,
    ) -> Result<Arc<crate::notes::CaseIndex>> {
        if let Some(units) = self.cache.units(id, rev) {
            return Ok(units);
        }
        // A kept text that does not open or read is made again from the
        // document, which is checked as it loads.
        let kept = match self.store.search_text(id, rev) {
            Ok(kept) => kept.and_then(|b| crate::notes::CaseIndex::from_bytes(&b).ok()),
            Err(e) => {
                tracing::warn!("a case's kept search text is unreadable, made again: {e}");
                None
            }
        };
        if let Some(units) = kept {
            let units = Arc::new(units);
            self.cache.keep_units(*id, rev, units.clone());
            return Ok(units);
        }
        let held = self.cache.holds(id);
        let (loaded, rev) = self.take_loaded(id)?;
        let units = match &loaded {
            Loaded::Case(c) => Arc::new(crate::notes::CaseIndex::new(c.search_units())),
            Loaded::Private(_) => return Err(Error::UnknownCase(id.to_hex())),
        };
        if held {
            self.keep_loaded(id, rev, loaded);
        }
        // Kept if it can be now; made again otherwise.
        self.store.put_search_text(id, rev, &units.to_bytes())?;
        self.cache.keep_units(*id, rev, units.clone());
        Ok(units)
    }

    /// Reads a private (psychotherapy notes) document by its own id.
    pub(crate) fn read_private<T>(
        &self,
        private_id: &DocId,
        f: impl FnOnce(&PrivateDoc) -> T,
    ) -> Result<T> {
        let (loaded, rev) = self.take_loaded(private_id)?;
        let out = match &loaded {
            Loaded::Private(p) => Ok(f(p)),
            Loaded::Case(_) => Err(Inconsistent::NotPrivateDoc.into()),
        };
        self.keep_loaded(private_id, rev, loaded);
        out
    }

    /// Stores a document received whole (a snapshot), without loading it:
    /// a new device lists its cases from the summaries and loads a document
    /// only when it is opened.
    pub(crate) fn store_snapshot(&self, doc: &DocId, body: &[u8], summary: &[u8]) -> Result<()> {
        self.cache.forget(doc);
        self.store.put_doc(doc, body, summary)?;
        Ok(())
    }

    /// Merges a batch of incoming changes (and saved documents) into a
    /// document in one Automerge call, and stores the result.
    /// Returns whether anything went in: a batch fetched again (or one
    /// whose changes all wait for others) changes nothing.
    pub(crate) fn apply_batch(&self, doc: &DocId, batch: &[u8]) -> Result<bool> {
        let (loaded, fresh) = match self.store.has_body(doc)? {
            true => (self.take_loaded(doc)?.0, false),
            false => (Loaded::load(batch, self.cache.actor())?, true),
        };
        let (mut loaded, new) = loaded.apply(batch)?;
        let body = loaded.save();
        let summary = serde_json_summary(&loaded.summary());
        let rev = self.store.put_doc(doc, &body, &summary)?;
        self.cache.keep(*doc, rev, loaded);
        Ok(fresh || new > 0)
    }

    /// A document's sync record.
    pub(crate) fn sync_record(&self, doc: &DocId) -> Result<DocSync> {
        Ok(self.store.doc_sync(doc)?.unwrap_or_default())
    }

    /// The saved body and summary of a document, for a snapshot.
    pub(crate) fn snapshot_body(&self, doc: &DocId) -> Result<Option<SnapshotBody>> {
        let Some(body) = self.store.doc_body(doc)? else {
            return Ok(None);
        };
        let summary = self
            .store
            .doc_summary(doc)?
            .map(|s| s.to_vec())
            .unwrap_or_default();
        Ok(Some(SnapshotBody {
            summary,
            doc: body.to_vec(),
        }))
    }
}

/// One search result.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub case: DocId,
    pub case_name: String,
    /// Found in the case's private (psychotherapy) notes.
    pub private: bool,
    pub note: Option<String>,
    pub field: String,
    pub snippet: String,
    /// Higher is better (see [`crate::notes::SearchHit::score`]).
    pub score: u32,
}

/// Summaries are JSON inside their seal: readable by any later version.
pub(crate) fn serde_json_summary(s: &Summary) -> Vec<u8> {
    serde_json::to_vec(s).expect("a summary is plain data and always serializes")
}
