//! What the relay holds of each log: an account, a document with its
//! head and stored bytes, and how many of each it holds at most.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use casebook_shared::access::DocState;
use casebook_shared::account::AccountState;
use casebook_shared::frames::DocHead;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

/// How long an owner's stored bytes are trusted before they are read
/// again: the quota may be off by what other relay nodes stored within it.
pub const USAGE_FRESH: Duration = Duration::from_secs(10);

/// How many of each the relay holds in memory at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub accounts: usize,
    pub docs: usize,
}

impl Default for Capacity {
    /// About 2 KB a document with its owner's account (BENCHMARKS.md):
    /// some 50 MB at most for a busy hosted relay; a clinic's relay holds
    /// everything it has.
    fn default() -> Self {
        Capacity {
            accounts: 10_000,
            docs: 20_000,
        }
    }
}

impl Capacity {
    /// Everything (for checking a whole store once).
    pub fn unbounded() -> Self {
        Capacity {
            accounts: usize::MAX,
            docs: usize::MAX,
        }
    }
}

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
    /// Its head and stored bytes, shared by each version of it held in
    /// turn (an access change makes a new version): an upload in flight
    /// counts into whichever is held when it lands.
    pub(super) counters: Arc<Counters>,
}

#[derive(Default)]
pub(super) struct Counters {
    head: AtomicU64,
    /// Bytes of its envelopes and snapshot stored now.
    bytes: AtomicU64,
}

impl Counters {
    pub(super) fn new(head: u64, bytes: u64) -> Arc<Counters> {
        Arc::new(Counters {
            head: AtomicU64::new(head),
            bytes: AtomicU64::new(bytes),
        })
    }
}

impl Doc {
    /// Entries in the access log, counting those a disposal deleted.
    pub fn access_len(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }

    /// The access log from entry `from` on, as far as it is kept: of a
    /// disposed document, its disposal whatever `from` is (a device that
    /// never saw a disposal given back after a restore may hold more
    /// entries than the log had where it was signed).
    pub fn entries_from(&self, from: u64) -> Vec<Signed> {
        if self.state.disposed {
            return self.log.clone();
        }
        let skip = from.saturating_sub(self.log_start) as usize;
        self.log.iter().skip(skip).cloned().collect()
    }

    /// Its highest envelope sequence number.
    pub fn head(&self) -> u64 {
        self.counters.head.load(Ordering::Acquire)
    }

    /// Bytes of its envelopes and snapshot stored now.
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Acquire)
    }

    pub(super) fn raise_head(&self, seq: u64) {
        self.counters.head.fetch_max(seq, Ordering::AcqRel);
    }

    pub(super) fn add_bytes(&self, delta: i64) {
        let _ = self
            .counters
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add_signed(delta))
            });
    }

    /// The accounts that may read it now.
    pub fn readers(&self, now: u64) -> impl Iterator<Item = &AccountId> {
        self.state
            .members
            .keys()
            .filter(move |a| self.state.role_of(a, now).is_some())
    }

    /// Its place in a listing for `account`: `None` if that account may
    /// not read it now. A disposal reaches everyone who could read the
    /// document then, an expired share too: their devices delete it.
    pub fn head_for(&self, id: DocId, account: &AccountId, now: u64) -> Option<DocHead> {
        if !self.state.disposed {
            self.state.role_of(account, now)?;
        }
        Some(DocHead {
            doc: id,
            access_len: self.access_len(),
            access_head: self.state.head,
            seq: self.head(),
        })
    }
}
