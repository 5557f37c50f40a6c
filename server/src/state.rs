//! The relay's verified view of every account log and access log, kept in
//! memory: every request checks a device or a membership against it, so it
//! must cost a hash lookup, not a query.

use std::collections::{HashMap, HashSet};

use casebook_shared::access::{AccessError, DocState, Role};
use casebook_shared::account::{AccountError, AccountState};
use casebook_shared::frames::DocHead;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

use crate::storage::{DocRecord, Loaded, StoreError};

/// An account as verified, with its log to serve.
pub struct Account {
    pub log: Vec<Signed>,
    pub state: AccountState,
}

/// A document as verified, with its access log and its newest envelope.
pub struct Doc {
    /// The access log from entry `log_start` on: all of it, or for a
    /// disposed document its disposal alone.
    pub log: Vec<Signed>,
    pub log_start: u64,
    pub state: DocState,
    pub head: u64,
    /// Bytes of its envelopes and snapshot stored now.
    pub bytes: u64,
}

impl Doc {
    /// Entries in the access log, counting those a disposal deleted.
    pub fn access_len(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }

    /// The access log from entry `from` on, as far as it is kept: of a
    /// disposed document, its disposal whatever came before `from`.
    pub fn entries_from(&self, from: u64) -> Vec<Signed> {
        let skip = from.saturating_sub(self.log_start) as usize;
        self.log.iter().skip(skip).cloned().collect()
    }
}

/// All verified state.
#[derive(Default)]
pub struct State {
    pub accounts: HashMap<AccountId, Account>,
    pub docs: HashMap<DocId, Doc>,
    devices: HashMap<DeviceId, AccountId>,
    member_docs: HashMap<AccountId, HashSet<DocId>>,
    /// Stored bytes of the documents each account owns (its quota's use),
    /// with what uploads being committed now bring.
    usage: HashMap<AccountId, u64>,
    /// Stored bytes of every document.
    pub stored: u64,
    pub cursor: u64,
}

impl State {
    /// Rebuilds from storage, verifying every log again.
    pub fn rebuild(loaded: Loaded) -> Result<State, StoreError> {
        let mut st = State {
            cursor: loaded.cursor,
            ..State::default()
        };
        for (id, log) in loaded.accounts {
            let state = AccountState::verify_log(&log)
                .map_err(|e| StoreError::Damaged(format!("account {}: {e}", id.short())))?;
            st.commit_account(state, log);
        }
        let heads: HashMap<DocId, u64> = loaded.heads.into_iter().collect();
        let bytes: HashMap<DocId, u64> = loaded.doc_bytes.into_iter().collect();
        let mut disposed: HashMap<DocId, Vec<AccountId>> = loaded.disposed.into_iter().collect();
        for (id, log) in loaded.docs {
            let record = DocRecord {
                log,
                disposed: disposed.remove(&id),
                head: heads.get(&id).copied().unwrap_or(0),
                bytes: bytes.get(&id).copied().unwrap_or(0),
            };
            st.refresh_doc(id, record)?;
        }
        Ok(st)
    }

    /// Holds an account's log as stored, verified again, in place of what
    /// was held: another relay node may have appended to it.
    pub fn refresh_account(&mut self, id: AccountId, log: Vec<Signed>) -> Result<(), StoreError> {
        if log.is_empty() {
            return Ok(());
        }
        let state = AccountState::verify_log(&log)
            .map_err(|e| StoreError::Damaged(format!("account {}: {e}", id.short())))?;
        self.accounts.remove(&id);
        self.commit_account(state, log);
        Ok(())
    }

    /// Holds a document as stored, its access log verified again, in place
    /// of what was held: another relay node may have changed its access or
    /// disposed of it. Its head never goes back.
    pub fn refresh_doc(&mut self, id: DocId, record: DocRecord) -> Result<(), StoreError> {
        let damaged = |e: AccessError| StoreError::Damaged(format!("document {}: {e}", id.short()));
        let (state, log_start) = match (&record.disposed, record.log.as_slice()) {
            (Some(readers), [gone]) => {
                let entry: casebook_shared::access::DocEntry = gone
                    .open(casebook_shared::access::SIG_LABEL)
                    .map_err(|e| damaged(e.into()))?;
                let owner = self
                    .account(&entry.account)
                    .ok_or_else(|| damaged(AccessError::UnknownAccount(entry.seq)))?;
                let state = DocState::tombstone(gone, &id, owner, readers).map_err(damaged)?;
                (state, entry.seq)
            }
            _ => (
                DocState::verify_log(&record.log, |a| self.account(a)).map_err(damaged)?,
                0,
            ),
        };
        // Stored bytes: a document already held keeps the count that its
        // uploads and the other nodes' notices keep up to date (taking the
        // store's figure too would count those twice); a new one, or one
        // disposed of, takes the store's.
        let (head, held_bytes, recount) = match self.docs.remove(&id) {
            Some(old) => {
                for m in old.state.members.keys() {
                    if let Some(set) = self.member_docs.get_mut(m) {
                        set.remove(&id);
                    }
                }
                (
                    old.head.max(record.head),
                    old.bytes,
                    record.disposed.is_some(),
                )
            }
            None => (record.head, 0, true),
        };
        self.set_doc(
            id,
            Doc {
                log: record.log,
                log_start,
                state,
                head,
                bytes: held_bytes,
            },
        );
        if recount {
            self.add_bytes(&id, record.bytes as i64 - held_bytes as i64);
        }
        self.cursor = self.cursor.max(head);
        Ok(())
    }

    /// The verified state of an account.
    pub fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.accounts.get(id).map(|a| &a.state)
    }

    /// The account that lists a device.
    pub fn device_account(&self, device: &DeviceId) -> Option<AccountId> {
        self.devices.get(device).copied()
    }

    /// A device of `state` that another account already lists, as a reason to refuse.
    pub fn claimed_device(&self, state: &AccountState) -> Option<String> {
        state.devices.keys().find_map(|d| {
            self.devices
                .get(d)
                .filter(|a| **a != state.id)
                .map(|_| format!("device {} belongs to another account", d.short()))
        })
    }

    /// Whether `device` is an active device of `account`.
    pub fn device_active(&self, account: &AccountId, device: &DeviceId) -> bool {
        self.account(account).is_some_and(|a| a.is_active(device))
    }

    /// Checks new entries for an account log (a new account when it has none).
    pub fn check_account(
        &self,
        id: Option<&AccountId>,
        entries: &[Signed],
    ) -> Result<AccountState, AccountError> {
        let mut state = match id.and_then(|i| self.account(i)) {
            Some(a) => a.clone(),
            None => {
                let (first, _) = entries.split_first().ok_or(AccountError::Empty)?;
                AccountState::from_genesis(first)?
            }
        };
        let skip = usize::from(id.and_then(|i| self.account(i)).is_none());
        for e in &entries[skip..] {
            state.apply(e)?;
        }
        Ok(state)
    }

    /// Records entries that were checked and stored.
    pub fn commit_account(&mut self, state: AccountState, entries: Vec<Signed>) {
        let acct = self.accounts.entry(state.id).or_insert_with(|| Account {
            log: Vec::new(),
            state: state.clone(),
        });
        acct.log.extend(entries);
        for d in state.devices.keys() {
            self.devices.insert(*d, state.id);
        }
        acct.state = state;
    }

    /// Checks new entries for a document's access log (a new document when it has none).
    pub fn check_access(&self, doc: &DocId, entries: &[Signed]) -> Result<DocState, AccessError> {
        let lookup = |a: &AccountId| self.account(a);
        let (mut state, skip) = match self.docs.get(doc) {
            Some(d) => (d.state.clone(), 0),
            None => {
                let (first, _) = entries.split_first().ok_or(AccessError::Empty)?;
                (DocState::from_genesis(first, &lookup)?, 1)
            }
        };
        if state.doc != *doc {
            return Err(AccessError::Broken(0));
        }
        for e in &entries[skip..] {
            state.apply(e, &lookup)?;
        }
        Ok(state)
    }

    /// Records access entries that were checked and stored.
    pub fn commit_access(&mut self, state: DocState, entries: Vec<Signed>) {
        let id = state.doc;
        let (mut log, log_start, head, bytes) = match self.docs.remove(&id) {
            Some(d) => {
                for m in d.state.members.keys() {
                    if let Some(set) = self.member_docs.get_mut(m) {
                        set.remove(&id);
                    }
                }
                (d.log, d.log_start, d.head, d.bytes)
            }
            None => (Vec::new(), 0, 0, 0),
        };
        log.extend(entries);
        self.set_doc(
            id,
            Doc {
                log,
                log_start,
                state,
                head,
                bytes,
            },
        );
    }

    /// Records a disposal that was stored: the log is its last entry
    /// alone, and the bytes freed leave the owner's usage.
    pub fn commit_disposal(&mut self, state: DocState, entries: Vec<Signed>, freed: i64) {
        let id = state.doc;
        let last = state.len - 1;
        self.commit_access(state, entries);
        self.add_bytes(&id, freed);
        if let Some(d) = self.docs.get_mut(&id) {
            let gone = d.log.pop().expect("a disposal was just appended");
            d.log = vec![gone];
            d.log_start = last;
        }
    }

    fn set_doc(&mut self, id: DocId, doc: Doc) {
        for m in doc.state.members.keys() {
            self.member_docs.entry(*m).or_default().insert(id);
        }
        self.docs.insert(id, doc);
    }

    /// The role an account has in a document now (none once expired).
    pub fn role(&self, doc: &DocId, account: &AccountId, now: u64) -> Option<Role> {
        self.docs.get(doc)?.state.role_of(account, now)
    }

    /// The documents an account is or was a member of.
    pub fn member_docs(&self, account: &AccountId) -> Vec<DocId> {
        self.member_docs
            .get(account)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every document an account may read now, with its heads; the client
    /// compares them with what it holds (access-log changes have no sequence
    /// number, so a `since` filter would hide them).
    pub fn docs_for(&self, account: &AccountId, now: u64) -> Vec<DocHead> {
        let Some(set) = self.member_docs.get(account) else {
            return Vec::new();
        };
        let mut out: Vec<DocHead> = set
            .iter()
            .filter_map(|id| {
                let d = self.docs.get(id)?;
                // A disposal reaches everyone who could read the document
                // then, an expired share too: their devices delete it.
                if !d.state.disposed {
                    d.state.role_of(account, now)?;
                }
                Some(DocHead {
                    doc: *id,
                    access_len: d.access_len(),
                    seq: d.head,
                })
            })
            .collect();
        out.sort_by_key(|h| (h.seq, h.doc));
        out
    }

    /// Records a change in a document's stored bytes, charged to its owner.
    pub fn add_bytes(&mut self, doc: &DocId, delta: i64) {
        let Some(d) = self.docs.get_mut(doc) else {
            return;
        };
        let apply = |n: u64| n.saturating_add_signed(delta);
        d.bytes = apply(d.bytes);
        let owner = self.usage.entry(d.state.owner).or_default();
        *owner = apply(*owner);
        self.stored = apply(self.stored);
    }

    /// Counts (or, negative, stops counting) bytes an upload brings until
    /// it is committed and [`State::add_bytes`] counts what it really added.
    pub fn reserve(&mut self, account: &AccountId, delta: i64) {
        let n = self.usage.entry(*account).or_default();
        *n = n.saturating_add_signed(delta);
    }

    /// Stored bytes of the documents an account owns, and reserved ones.
    pub fn usage(&self, account: &AccountId) -> u64 {
        self.usage.get(account).copied().unwrap_or(0)
    }

    /// Records a stored envelope's sequence number.
    pub fn advance(&mut self, doc: &DocId, seq: u64) {
        if let Some(d) = self.docs.get_mut(doc) {
            d.head = d.head.max(seq);
        }
        self.cursor = self.cursor.max(seq);
    }
}
