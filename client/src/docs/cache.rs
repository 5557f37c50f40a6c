//! Documents kept loaded between operations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use casebook_shared::ids::DocId;

use super::Loaded;
use crate::notes::{CaseIndex, CaseSummary};

/// A document's listing: its summary, or `None` for one that is not a case.
type Listed = Option<Arc<CaseSummary>>;

/// Documents kept loaded between operations, each with the store revision
/// it matches (another process may write the same home meanwhile), and
/// the Automerge actor this process writes as. The copies sit in a cell so
/// that reading a document takes only a shared borrow of the home: a
/// listing, an access check and a read can then be made side by side.
#[derive(Default)]
pub(crate) struct DocCache {
    loaded: RefCell<HashMap<DocId, (i64, Loaded)>>,
    /// Each case made ready to search, at the store's revision it was made
    /// from: a search reads these, not the documents.
    units: RefCell<HashMap<DocId, (i64, Arc<CaseIndex>)>>,
    /// Each document's listing (`None` for one that is not a case), at the
    /// revision it was read at: listing cases then unseals only what
    /// changed.
    summaries: RefCell<HashMap<DocId, (i64, Listed)>>,
    actor: Vec<u8>,
}

impl DocCache {
    /// A cache for a process writing as `actor`: the device id and a random
    /// suffix, so two processes on one home never reuse a sequence.
    pub fn new(actor: Vec<u8>) -> Self {
        DocCache {
            loaded: RefCell::default(),
            units: RefCell::default(),
            summaries: RefCell::default(),
            actor,
        }
    }

    pub fn actor(&self) -> &[u8] {
        &self.actor
    }

    /// The copy held of `doc`, taken out, if it matches the store's
    /// revision `rev`.
    pub fn take(&self, doc: &DocId, rev: i64) -> Option<Loaded> {
        self.loaded
            .borrow_mut()
            .remove(doc)
            .and_then(|(r, l)| (r == rev).then_some(l))
    }

    /// Holds `loaded` as `doc` at the store's revision `rev`.
    pub fn keep(&self, doc: DocId, rev: i64, loaded: Loaded) {
        self.loaded.borrow_mut().insert(doc, (rev, loaded));
    }

    pub fn forget(&self, doc: &DocId) {
        self.loaded.borrow_mut().remove(doc);
        self.units.borrow_mut().remove(doc);
        self.summaries.borrow_mut().remove(doc);
    }

    /// Whether a copy of `doc` is held.
    pub fn holds(&self, doc: &DocId) -> bool {
        self.loaded.borrow().contains_key(doc)
    }

    /// `doc` made ready to search, if made at the store's revision `rev`.
    pub fn units(&self, doc: &DocId, rev: i64) -> Option<Arc<CaseIndex>> {
        match self.units.borrow().get(doc) {
            Some((r, u)) if *r == rev => Some(u.clone()),
            _ => None,
        }
    }

    pub fn keep_units(&self, doc: DocId, rev: i64, units: Arc<CaseIndex>) {
        self.units.borrow_mut().insert(doc, (rev, units));
    }

    /// `doc`'s listing as read at revision `rev`, if held.
    pub fn summary(&self, doc: &DocId, rev: i64) -> Option<Listed> {
        match self.summaries.borrow().get(doc) {
            Some((r, s)) if *r == rev => Some(s.clone()),
            _ => None,
        }
    }

    pub fn keep_summary(&self, doc: DocId, rev: i64, summary: Listed) {
        self.summaries.borrow_mut().insert(doc, (rev, summary));
    }

    /// Drops every copy: after a transaction rolled back, what memory holds
    /// may be what was rolled back.
    pub fn clear(&self) {
        self.loaded.borrow_mut().clear();
        self.units.borrow_mut().clear();
        self.summaries.borrow_mut().clear();
    }
}
