//! Documents kept loaded between operations.

use std::cell::RefCell;
use std::collections::HashMap;

use casebook_shared::ids::DocId;

use super::Loaded;

/// Documents kept loaded between operations, each with the store revision
/// it matches (another process may write the same home meanwhile), and
/// the Automerge actor this process writes as. The copies sit in a cell so
/// that reading a document takes only a shared borrow of the home: a
/// listing, an access check and a read can then be made side by side.
#[derive(Default)]
pub(crate) struct DocCache {
    loaded: RefCell<HashMap<DocId, (i64, Loaded)>>,
    actor: Vec<u8>,
}

impl DocCache {
    /// A cache for a process writing as `actor`: the device id and a random
    /// suffix, so two processes on one home never reuse a sequence.
    pub fn new(actor: Vec<u8>) -> Self {
        DocCache {
            loaded: RefCell::default(),
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
    }

    /// Drops every copy: after a transaction rolled back, what memory holds
    /// may be what was rolled back.
    pub fn clear(&self) {
        self.loaded.borrow_mut().clear();
    }
}
