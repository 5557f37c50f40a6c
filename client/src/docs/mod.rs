//! Documents on this device: their access state and keys, making cases,
//! editing them (each edit queues its Automerge changes in the outbox), and
//! the listing read from summaries without loading Automerge.

use casebook_shared::access::Role;
use casebook_shared::ids::DocId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::notes::{CaseDoc, CaseSummary, PrivateDoc};
use crate::store::{DocSync, OutKind};

pub(crate) mod access_state;
mod cache;
pub(crate) mod queue;

pub(crate) use cache::DocCache;

pub use access_state::DocMeta;

/// What this account's role on a document does not allow. A member's
/// role can shrink or end while a device is offline, so these come up in
/// ordinary use, not only from a misbehaving front end.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// Writing takes the write role (or ownership); the role held is this.
    #[error("not allowed: your role on this case is {0:?}")]
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
    pub fn apply(self, bytes: &[u8]) -> Result<Loaded> {
        Ok(match self {
            Loaded::Case(c) => Loaded::Case(c.apply_or_drop(bytes)?.0),
            Loaded::Private(p) => Loaded::Private(p.apply_or_drop(bytes)?.0),
        })
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

impl Home {
    /// Saves a loaded document, and queues its new changes, in one transaction.
    fn store_loaded(
        &mut self,
        doc: &DocId,
        mut loaded: Loaded,
        changes: &[u8],
        kind: OutKind,
    ) -> Result<()> {
        let body = loaded.save();
        let summary = serde_json_summary(&loaded.summary());
        // Sealed now, under the epoch known now, so the envelope is written
        // with the edit and sending it needs no write of its own. One that
        // cannot be sealed yet (no key here, too large) is sealed, or
        // refused, when it is sent; one whose epoch has passed by then is
        // sealed again under the same id.
        let env_id = casebook_shared::ids::EnvelopeId::fresh().0;
        let envelope = match changes.is_empty() {
            true => None,
            false => self.seal_change(doc, env_id, changes).ok(),
        };
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

    /// Makes a new case (and its private-notes document); returns its id.
    pub fn create_case(&mut self, name: &str, created: &str) -> Result<DocId> {
        self.atomically(|home| home.create_case_inner(name, created))
    }

    fn create_case_inner(&mut self, name: &str, created: &str) -> Result<DocId> {
        let name = crate::names::check(name)?;
        let case_id = DocId::random();
        let private_id = DocId::random();
        let mut case = CaseDoc::new(name, created, private_id, self.cache.actor())?;
        let mut private = PrivateDoc::new(case_id, self.cache.actor())?;
        let case_changes = case.changes_since(&[]);
        let private_changes = private.changes_since(&[]);
        // The private document first: a case never lists a private document
        // that its devices cannot find.
        self.new_doc(&private_id)?;
        self.store_loaded(
            &private_id,
            Loaded::Private(private),
            &private_changes,
            OutKind::Change,
        )?;
        self.new_doc(&case_id)?;
        self.store_loaded(&case_id, Loaded::Case(case), &case_changes, OutKind::Change)?;
        self.trail().record("case created", Some(case_id))?;
        Ok(case_id)
    }

    /// Every case's summary, sorted by name.
    pub fn cases(&self) -> Result<Vec<(DocId, CaseSummary)>> {
        let mut out = Vec::new();
        for (id, bytes) in self.store.summaries()? {
            if let Ok(Summary::Case(s)) = serde_json::from_slice::<Summary>(&bytes) {
                out.push((id, s));
            }
        }
        out.sort_by(|a, b| {
            a.1.name
                .to_lowercase()
                .cmp(&b.1.name.to_lowercase())
                .then(a.0.cmp(&b.0))
        });
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

    /// The document loaded, from memory if the copy there is current.
    pub(crate) fn take_loaded(&mut self, doc: &DocId) -> Result<Loaded> {
        let rev = self.store.doc_rev(doc)?;
        if let Some(l) = self.cache.take(doc, rev) {
            return Ok(l);
        }
        let body = self
            .store
            .doc_body(doc)?
            .ok_or_else(|| Error::UnknownCase(doc.to_hex()))?;
        Loaded::load(&body, self.cache.actor())
    }

    /// Whether `doc` as saved here holds every change of `changes` (one
    /// with nothing saved holds none).
    pub(crate) fn holds_changes(&mut self, doc: &DocId, changes: &[u8]) -> Result<bool> {
        if !self.store.has_body(doc)? {
            return Ok(false);
        }
        let mut loaded = self.take_loaded(doc)?;
        let held = loaded.holds(changes);
        self.keep_loaded(doc, loaded)?;
        Ok(held)
    }

    /// Puts a document read without change back in memory.
    pub(crate) fn keep_loaded(&mut self, doc: &DocId, loaded: Loaded) -> Result<()> {
        let rev = self.store.doc_rev(doc)?;
        self.cache.keep(*doc, rev, loaded);
        Ok(())
    }

    /// Reads a case.
    pub fn read_case<T>(&mut self, id: &DocId, f: impl FnOnce(&CaseDoc) -> T) -> Result<T> {
        let loaded = self.take_loaded(id)?;
        let out = match &loaded {
            Loaded::Case(c) => Ok(f(c)),
            Loaded::Private(_) => Err(Error::UnknownCase(id.to_hex())),
        };
        self.keep_loaded(id, loaded)?;
        out
    }

    fn check_write(&self, doc: &DocId) -> Result<()> {
        let meta = self.doc_meta(doc)?.ok_or(Inconsistent::NoAccessLog(*doc))?;
        match meta.role_of(&self.account_id(), self.now()) {
            Some(r) if r >= Role::Write => Ok(()),
            Some(r) => Err(RoleError::CannotWrite(r).into()),
            None => Err(RoleError::NoLongerShared.into()),
        }
    }

    /// Edits a case: runs `f`, stores the result and queues the new changes.
    /// A failed edit leaves nothing behind (the copy it touched is dropped).
    pub fn edit_case<T>(
        &mut self,
        id: &DocId,
        what: &str,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        self.check_write(id)?;
        self.change_case(id, what, OutKind::Change, f)
    }

    /// Changes a case after the caller has checked the role allows it;
    /// `kind` says whether it was an edit or a comment.
    pub(crate) fn change_case<T>(
        &mut self,
        id: &DocId,
        what: &str,
        kind: OutKind,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        let mut loaded = self.take_loaded(id)?;
        let Loaded::Case(case) = &mut loaded else {
            return Err(Error::UnknownCase(id.to_hex()));
        };
        let heads = case.heads();
        let out = f(case)?;
        let changes = case.changes_since(&heads);
        self.edit_atomically(|home| {
            home.store_loaded(id, loaded, &changes, kind)?;
            home.trail().record(what, Some(*id))
        })?;
        Ok(out)
    }

    /// Edits a case's private (psychotherapy notes) document.
    pub fn edit_private<T>(
        &mut self,
        case_id: &DocId,
        f: impl FnOnce(&mut PrivateDoc) -> Result<T>,
    ) -> Result<T> {
        let private_id = self.private_of(case_id)?;
        self.check_write(&private_id)?;
        let mut loaded = self.take_loaded(&private_id)?;
        let Loaded::Private(p) = &mut loaded else {
            return Err(Inconsistent::NotPrivateDoc.into());
        };
        let heads = p.heads();
        let out = f(p)?;
        let changes = p.changes_since(&heads);
        self.edit_atomically(|home| {
            home.store_loaded(&private_id, loaded, &changes, OutKind::Change)?;
            home.trail().record("private note added", Some(*case_id))
        })?;
        Ok(out)
    }

    /// Reads a case's private document.
    pub fn read_private<T>(
        &mut self,
        case_id: &DocId,
        f: impl FnOnce(&PrivateDoc) -> T,
    ) -> Result<T> {
        let private_id = self.private_of(case_id)?;
        let loaded = self.take_loaded(&private_id)?;
        let out = match &loaded {
            Loaded::Private(p) => Ok(f(p)),
            Loaded::Case(_) => Err(Inconsistent::NotPrivateDoc.into()),
        };
        self.keep_loaded(&private_id, loaded)?;
        out
    }

    /// The psychotherapy-notes document of a case, if this account holds
    /// it (a colleague holds it only if it was shared with the case).
    pub(crate) fn private_of(&self, case_id: &DocId) -> Result<DocId> {
        let (_, summary) = self
            .cases()?
            .into_iter()
            .find(|(d, _)| d == case_id)
            .ok_or_else(|| Error::UnknownCase(case_id.to_hex()))?;
        match summary.private_doc {
            Some(private) if self.doc_meta(&private)?.is_some() => Ok(private),
            _ => Err(Error::PrivateNotShared),
        }
    }

    /// Stores a document received whole (a snapshot), without loading it:
    /// a new device lists its cases from the summaries and loads a document
    /// only when it is opened.
    pub(crate) fn store_snapshot(
        &mut self,
        doc: &DocId,
        body: &[u8],
        summary: &[u8],
    ) -> Result<()> {
        self.cache.forget(doc);
        self.store.put_doc(doc, body, summary)?;
        Ok(())
    }

    /// Merges a batch of incoming changes (and saved documents) into a
    /// document in one Automerge call, and stores the result.
    pub(crate) fn apply_batch(&mut self, doc: &DocId, batch: &[u8]) -> Result<()> {
        let loaded = match self.store.has_body(doc)? {
            true => self.take_loaded(doc)?,
            false => Loaded::load(batch, self.cache.actor())?,
        };
        let mut loaded = loaded.apply(batch)?;
        let body = loaded.save();
        let summary = serde_json_summary(&loaded.summary());
        let rev = self.store.put_doc(doc, &body, &summary)?;
        self.cache.keep(*doc, rev, loaded);
        Ok(())
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

    /// Searches every case (and its private notes) for a phrase, without
    /// recording it: [`Home::search`] is the operation a person runs.
    /// Every case's hits for a query, psychotherapy notes only if asked,
    /// best first.
    pub(crate) fn find(&mut self, needle: &str, include_private: bool) -> Result<Vec<Hit>> {
        let mut out = Vec::new();
        for (id, summary) in self.cases()? {
            let hits = self.read_case(&id, |c| c.search(needle))?;
            let private = match summary.private_doc {
                Some(_) if include_private => self
                    .read_private(&id, |p| p.search(needle))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            for (hit, private) in hits
                .into_iter()
                .map(|h| (h, false))
                .chain(private.into_iter().map(|h| (h, true)))
            {
                out.push(Hit {
                    case: id,
                    case_name: summary.name.clone(),
                    private,
                    note: hit.note_id,
                    field: hit.field,
                    snippet: hit.snippet,
                    score: hit.score,
                });
            }
        }
        // Stable: within a score, cases by name and notes by date.
        out.sort_by_key(|h| std::cmp::Reverse(h.score));
        Ok(out)
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
