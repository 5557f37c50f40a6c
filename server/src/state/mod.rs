//! The relay's verified view of the account logs and access logs in use.
//! Every request checks a device or a membership against it, so a check
//! costs a hash lookup, not a query. It holds a bounded number of each
//! ([`Capacity`]): the store is the record, and what is not held is read
//! from it and verified again when a request needs it (`relay::held`), so
//! the relay's memory and start-up do not grow with what it stores.
//!
//! Held entries are shared (`Arc`): a request checks against what it was
//! handed even if the entry is dropped meanwhile. Logs only grow, so an
//! entry read from the store replaces a held one only when it is longer,
//! and a head only rises.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use casebook_shared::access::{AccessError, DocEntry, DocState, SIG_LABEL};
use casebook_shared::account::{AccountError, AccountState};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use crate::cache::Bounded;

mod entries;
use crate::storage::{DocRecord, Loaded, StoreError};
use entries::Counters;
pub use entries::{Account, Capacity, Doc, USAGE_FRESH};

/// Accounts read for one check but not (or no longer) held.
pub type Fetched = HashMap<AccountId, Arc<Account>>;

/// What is held.
pub struct State {
    accounts: Bounded<AccountId, Arc<Account>>,
    docs: Bounded<DocId, Arc<Doc>>,
    /// Stored bytes of the documents each account owns, as the store said
    /// at the time given and as this node stored since; read again after
    /// [`USAGE_FRESH`], since other nodes store too and a document not held
    /// here counts nowhere here.
    usage: Bounded<AccountId, (u64, Instant)>,
    /// What uploads being committed now bring, by owner.
    reserved: HashMap<AccountId, u64>,
    /// Stored bytes of every document (for the metrics).
    pub stored: u64,
    /// The highest sequence number handed out.
    pub cursor: u64,
    /// See [`State::generation`].
    generation: u64,
    cap: Capacity,
}

impl State {
    pub fn new(cap: Capacity) -> State {
        State {
            accounts: Bounded::new(cap.accounts),
            docs: Bounded::new(cap.docs),
            usage: Bounded::new(cap.accounts),
            reserved: HashMap::new(),
            stored: 0,
            cursor: 0,
            generation: 0,
            cap,
        }
    }

    /// Everything in `loaded`, verified (to check a whole store).
    pub fn rebuild(loaded: Loaded) -> Result<State, StoreError> {
        let mut st = State::new(Capacity::unbounded());
        st.cursor = loaded.cursor;
        for (id, log) in loaded.accounts {
            st.hold_account(id, log, None)?;
        }
        let heads: HashMap<DocId, u64> = loaded.heads.into_iter().collect();
        let bytes: HashMap<DocId, u64> = loaded.doc_bytes.into_iter().collect();
        let mut disposed: HashMap<DocId, Vec<AccountId>> = loaded.disposed.into_iter().collect();
        let mut usage: HashMap<AccountId, u64> = HashMap::new();
        for (id, log) in loaded.docs {
            let record = DocRecord {
                log,
                disposed: disposed.remove(&id),
                head: heads.get(&id).copied().unwrap_or(0),
                bytes: bytes.get(&id).copied().unwrap_or(0),
            };
            // Every account is held: a second call names the damage.
            let doc = match st.hold_doc(id, &record, &Fetched::new(), None)? {
                Ok(d) => d,
                Err(named) => {
                    let fetched: Fetched = named
                        .iter()
                        .filter_map(|a| Some((*a, st.account_entry(a)?)))
                        .collect();
                    st.hold_doc(id, &record, &fetched, None)?.map_err(|_| {
                        StoreError::Damaged(format!(
                            "document {} names account {}, which has no log",
                            id.short(),
                            named[0].short()
                        ))
                    })?
                }
            };
            *usage.entry(doc.state.owner).or_default() += doc.bytes();
            st.stored += doc.bytes();
        }
        let now = Instant::now();
        for (owner, n) in usage {
            st.usage.insert(owner, (n, now));
        }
        Ok(st)
    }

    /// Accounts and documents held.
    pub fn held(&self) -> (usize, usize) {
        (self.accounts.len(), self.docs.len())
    }

    /// The verified state of a held account.
    pub fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.accounts.get(id).map(|a| &a.state)
    }

    /// A held account.
    pub fn account_entry(&self, id: &AccountId) -> Option<Arc<Account>> {
        self.accounts.get(id).cloned()
    }

    /// A held document.
    pub fn doc(&self, id: &DocId) -> Option<Arc<Doc>> {
        self.docs.get(id).cloned()
    }

    /// Every document held.
    pub fn held_docs(&self) -> Vec<DocId> {
        self.docs.keys().copied().collect()
    }

    /// Every account held, with its log.
    pub fn held_accounts(&self) -> impl Iterator<Item = (&AccountId, &Arc<Account>)> {
        self.accounts.iter()
    }

    /// Every document held.
    pub fn held_doc_entries(&self) -> impl Iterator<Item = (&DocId, &Arc<Doc>)> {
        self.docs.iter()
    }

    /// Holds an account's log as stored, verified again, unless what is
    /// held is as long: another relay node may have appended to it.
    ///
    /// `seen` is [`State::generation`] from before the log was read: if a
    /// log was committed or read again since, this one may be older than
    /// what was dropped meanwhile, so it is answered but not held.
    pub fn hold_account(
        &mut self,
        id: AccountId,
        log: Vec<Signed>,
        seen: Option<u64>,
    ) -> Result<Arc<Account>, StoreError> {
        if let Some(held) = self.accounts.get(&id)
            && held.log.len() >= log.len()
        {
            return Ok(held.clone());
        }
        let state = AccountState::verify_log(&log)
            .map_err(|e| StoreError::Damaged(format!("account {}: {e}", id.short())))?;
        let a = Arc::new(Account { log, state });
        if seen.is_none_or(|g| g == self.generation) {
            self.accounts.insert(id, a.clone());
        }
        Ok(a)
    }

    /// Counts commits and rereads: a log read from the store before the
    /// count moved may be older than one held and dropped since.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Marks that logs changed in the store (another node wrote them):
    /// what was read before is not held.
    pub fn bump(&mut self) {
        self.generation += 1;
    }

    /// Drops every held log (what changed in the store is no longer
    /// known): each is read again when a request needs it. Heads and
    /// bytes of documents held go too; the cursor stays.
    pub fn forget_all(&mut self) {
        self.accounts = Bounded::new(self.cap.accounts);
        self.docs = Bounded::new(self.cap.docs);
        self.usage = Bounded::new(self.cap.accounts);
        self.generation += 1;
    }

    /// Holds a document as stored, its access log verified again, unless
    /// what is held is as long (another relay node may have changed its
    /// access or disposed of it); its head never goes back. Verifying needs
    /// the accounts its log names: those neither held nor in `fetched` are
    /// answered, to be read and the call made again.
    pub fn hold_doc(
        &mut self,
        id: DocId,
        record: &DocRecord,
        fetched: &Fetched,
        seen: Option<u64>,
    ) -> Result<Result<Arc<Doc>, Vec<AccountId>>, StoreError> {
        let held = self.docs.get(&id).cloned();
        let log_len = match &record.disposed {
            Some(_) => self.disposal_seq(id, record)? + 1,
            None => record.log.len() as u64,
        };
        if let Some(h) = &held
            && h.access_len() >= log_len
        {
            h.raise_head(record.head);
            self.cursor = self.cursor.max(record.head);
            return Ok(Ok(h.clone()));
        }
        // Accounts read for this call come first: one held may be older
        // than an entry of the record (another node appended to it).
        let named = RefCell::new(Vec::new());
        let lookup = |a: &AccountId| {
            named.borrow_mut().push(*a);
            fetched
                .get(a)
                .or_else(|| self.accounts.get(a))
                .map(|x| &x.state)
        };
        let verified = match (&record.disposed, record.log.as_slice()) {
            (Some(readers), [gone]) => {
                let entry: DocEntry = gone.open(SIG_LABEL).map_err(|e| damaged(id, e.into()))?;
                lookup(&entry.account)
                    .ok_or(AccessError::UnknownAccount(entry.seq))
                    .and_then(|owner| DocState::tombstone(gone, &id, owner, readers))
                    .map(|s| (s, entry.seq))
            }
            _ => DocState::verify_log(&record.log, lookup).map(|s| (s, 0)),
        };
        let (state, log_start) = match verified {
            Ok(v) => v,
            Err(e) => {
                // Missing, or perhaps held older than the entries: read
                // every account it named that was not read for this call.
                let mut unread: Vec<AccountId> = named
                    .into_inner()
                    .into_iter()
                    .filter(|a| !fetched.contains_key(a))
                    .collect();
                unread.sort();
                unread.dedup();
                if unread.is_empty() {
                    return Err(damaged(id, e));
                }
                return Ok(Err(unread));
            }
        };
        // Stored bytes: a document already held keeps the count that its
        // uploads and the other nodes' notices keep up to date (taking the
        // store's figure too would count those twice); a new one, or one
        // disposed of, takes the store's.
        let counters = match &held {
            Some(h) => {
                if record.disposed.is_some() {
                    let delta = record.bytes as i64 - h.bytes() as i64;
                    self.count_bytes(&h.state.owner, delta);
                    h.add_bytes(delta);
                }
                h.raise_head(record.head);
                h.counters.clone()
            }
            None => Counters::new(record.head, record.bytes),
        };
        let doc = Arc::new(Doc {
            log: record.log.clone(),
            log_start,
            state,
            counters,
        });
        self.cursor = self.cursor.max(doc.head());
        // Read before something newer was held (or dropped): answered, not held.
        if seen.is_none_or(|g| g == self.generation) {
            self.docs.insert(id, doc.clone());
        }
        Ok(Ok(doc))
    }

    /// Where the disposal of a disposed document's record stands.
    fn disposal_seq(&self, id: DocId, record: &DocRecord) -> Result<u64, StoreError> {
        let [gone] = record.log.as_slice() else {
            return Err(damaged(id, AccessError::Empty));
        };
        let entry: DocEntry = gone.open(SIG_LABEL).map_err(|e| damaged(id, e.into()))?;
        Ok(entry.seq)
    }

    /// Checks new entries for an account log: appended to `held`, or a new
    /// account when there is none.
    pub fn check_account(
        held: Option<&AccountState>,
        entries: &[Signed],
    ) -> Result<AccountState, AccountError> {
        let (mut state, rest) = match held {
            Some(a) => (a.clone(), entries),
            None => {
                let (first, rest) = entries.split_first().ok_or(AccountError::Empty)?;
                (AccountState::from_genesis(first)?, rest)
            }
        };
        for e in rest {
            state.apply(e)?;
        }
        Ok(state)
    }

    /// Records entries that were checked against `prev` (none for a new
    /// account) and stored.
    pub fn commit_account(
        &mut self,
        prev: Option<&Account>,
        state: AccountState,
        entries: Vec<Signed>,
    ) {
        let mut log = prev.map(|a| a.log.clone()).unwrap_or_default();
        log.extend(entries);
        self.generation += 1;
        let longer = self
            .accounts
            .get(&state.id)
            .is_none_or(|a| a.log.len() < log.len());
        if longer {
            self.accounts
                .insert(state.id, Arc::new(Account { log, state }));
        }
    }

    /// Checks new entries for a document's access log, appended to `held`
    /// or a new document when there is none; with the accounts the entries
    /// name that are neither held nor in `fetched` (when the check failed
    /// for want of them, read them and check again).
    pub fn check_access(
        &self,
        doc: &DocId,
        held: Option<&Doc>,
        entries: &[Signed],
        fetched: &Fetched,
    ) -> (Result<DocState, AccessError>, Vec<AccountId>) {
        let missing = RefCell::new(Vec::new());
        let lookup = |a: &AccountId| {
            let found = fetched
                .get(a)
                .or_else(|| self.accounts.get(a))
                .map(|x| &x.state);
            if found.is_none() {
                missing.borrow_mut().push(*a);
            }
            found
        };
        let run = || {
            let (mut state, rest) = match held {
                Some(d) => (d.state.clone(), entries),
                None => {
                    let (first, rest) = entries.split_first().ok_or(AccessError::Empty)?;
                    (DocState::from_genesis(first, &lookup)?, rest)
                }
            };
            if state.doc != *doc {
                return Err(AccessError::Broken(0));
            }
            for e in rest {
                state.apply(e, &lookup)?;
            }
            Ok(state)
        };
        let checked = run();
        (checked, missing.into_inner())
    }

    /// Records access entries that were checked against `prev` (none for
    /// a new document) and stored.
    pub fn commit_access(
        &mut self,
        prev: Option<&Doc>,
        state: DocState,
        entries: Vec<Signed>,
    ) -> Arc<Doc> {
        let id = state.doc;
        let (mut log, log_start, counters) = match prev {
            Some(d) => (d.log.clone(), d.log_start, d.counters.clone()),
            None => (Vec::new(), 0, Arc::default()),
        };
        log.extend(entries);
        let doc = Doc {
            log,
            log_start,
            state,
            counters,
        };
        self.generation += 1;
        match self.docs.get(&id) {
            Some(held) if held.access_len() >= doc.access_len() => held.clone(),
            _ => {
                let doc = Arc::new(doc);
                self.docs.insert(id, doc.clone());
                doc
            }
        }
    }

    /// Records a disposal that was stored, at `head`: the log is its last
    /// entry alone, and the bytes freed leave the owner's usage.
    pub fn commit_disposal(
        &mut self,
        prev: Option<&Doc>,
        state: DocState,
        mut entries: Vec<Signed>,
        head: u64,
        freed: i64,
    ) -> Arc<Doc> {
        let id = state.doc;
        let last = state.len - 1;
        let owner = state.owner;
        let gone = entries.pop().expect("a disposal has its entry");
        self.count_bytes(&owner, freed);
        let counters = prev.map(|d| d.counters.clone()).unwrap_or_default();
        let doc = Doc {
            log: vec![gone],
            log_start: last,
            state,
            counters,
        };
        doc.add_bytes(freed);
        doc.raise_head(head);
        self.generation += 1;
        let doc = Arc::new(doc);
        self.docs.insert(id, doc.clone());
        self.cursor = self.cursor.max(head);
        doc
    }

    /// Records a change in a held document's stored bytes, charged to its
    /// owner.
    pub fn add_bytes(&mut self, doc: &Doc, delta: i64) {
        doc.add_bytes(delta);
        self.count_bytes(&doc.state.owner, delta);
    }

    fn count_bytes(&mut self, owner: &AccountId, delta: i64) {
        let apply = |n: u64| n.saturating_add_signed(delta);
        if let Some((n, at)) = self.usage.get(owner).copied() {
            self.usage.insert(*owner, (apply(n), at));
        }
        self.stored = apply(self.stored);
    }

    /// Counts (or, negative, stops counting) bytes an upload brings until
    /// it is committed and [`State::add_bytes`] counts what it really added.
    pub fn reserve(&mut self, account: &AccountId, delta: i64) {
        let n = self.reserved.entry(*account).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.reserved.remove(account);
        }
    }

    /// Stored bytes of the documents an account owns, and reserved ones;
    /// `None` when the stored figure is not held.
    pub fn usage(&self, account: &AccountId) -> Option<u64> {
        let (stored, at) = self.usage.get(account)?;
        if at.elapsed() > USAGE_FRESH {
            return None;
        }
        Some(stored + self.reserved.get(account).copied().unwrap_or(0))
    }

    /// Holds what the store says an account's documents take (read at
    /// `at`), unless a figure read later is held.
    pub fn hold_usage(&mut self, account: AccountId, stored: u64, at: Instant) {
        if self.usage.get(&account).is_none_or(|(_, held)| *held < at) {
            self.usage.insert(account, (stored, at));
        }
    }

    /// Records a stored envelope's sequence number.
    pub fn advance(&mut self, doc: Option<&Doc>, seq: u64) {
        if let Some(d) = doc {
            d.raise_head(seq);
        }
        self.cursor = self.cursor.max(seq);
    }
}

fn damaged(id: DocId, e: AccessError) -> StoreError {
    StoreError::Damaged(format!("document {}: {e}", id.short()))
}

#[cfg(test)]
mod tests;
