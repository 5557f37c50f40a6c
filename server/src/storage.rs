//! The storage trait the relay runs on, and what goes through it.
//!
//! Writes are jobs handed to one writer that commits whatever has queued up in
//! one transaction (group commit) and answers each job only after that commit
//! is durable. SQLite is the default backend ([`crate::sqlite`]); PostgreSQL
//! ([`crate::postgres`]), for relays that outgrow one machine, implements the
//! same trait and passes the same contract tests.

use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database: no connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database's schema is not one this relay knows.
    #[error("{0}")]
    Schema(String),
    #[error("an envelope with this id but other bytes is already stored")]
    Conflict,
    #[error("a log entry at this position is already stored")]
    LogConflict,
    #[error("the document was disposed of")]
    Disposed,
    /// A device the account log lists is listed by another account's.
    #[error("device {} belongs to another account", .0.short())]
    DeviceClaimed(DeviceId),
    /// The access log or account log an envelope was checked against grew
    /// before it was stored (another relay node appended to it): check it
    /// again against the logs as stored.
    #[error("the logs this was checked against have changed")]
    Stale,
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("the storage writer has stopped")]
    Stopped,
}

/// An envelope to store: the relay has verified its signature and the author's right.
#[derive(Clone, Debug)]
pub struct NewEnvelope {
    pub doc: DocId,
    pub id: EnvelopeId,
    /// `Some(covers)` for a snapshot, which replaces an older one of the document.
    pub snapshot_covers: Option<u64>,
    pub bytes: Vec<u8>,
    /// The logs the author's right was checked against.
    pub fence: Fence,
    /// Whether to say what precedes it ([`Written::prev`]): asked for a
    /// change that will be pushed, with its bytes, to a watching device.
    pub wants_prev: bool,
}

/// The lengths of the logs an envelope was checked against. The store
/// refuses it as [`StoreError::Stale`] if either log is longer when it
/// comes to be written: so an access change or a device's revocation made
/// through another relay node over the same database is ordered with the
/// upload exactly as on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    /// Entries in the document's access log (counting any a disposal deleted).
    pub access_len: u64,
    /// The author's account, and the entries in its log.
    pub account: AccountId,
    pub account_len: u64,
}

/// One document as stored: its access log (of a disposed document, its
/// disposal alone), its newest envelope, its size.
#[derive(Clone, Debug, Default)]
pub struct DocRecord {
    pub log: Vec<Signed>,
    /// For a disposed document, the accounts that could read it.
    pub disposed: Option<Vec<AccountId>>,
    pub head: u64,
    pub bytes: u64,
}

/// A log that changed: an account's or a document's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogChange {
    Account(AccountId),
    Access(DocId),
    /// Changes after the version asked for are no longer listed (the list
    /// is pruned to its newest rows): read every log again.
    Lost,
}

/// What another relay node over the same database wrote, as the store
/// reports it (PostgreSQL's notifications; SQLite has no other node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// Account or access logs grew: read what changed since the version
    /// held ([`Storage::log_changes`]).
    Logs,
    /// Envelopes were stored, the newest at `seq`, changing the
    /// document's stored bytes by `added`.
    Stored { doc: DocId, seq: u64, added: i64 },
    /// A pairing mailbox took a message (the store wakes its waiters; the
    /// relay has nothing to do).
    Mailbox,
    /// Events may have been missed (the listening connection was lost):
    /// catch up on the logs and read every head again.
    Resync,
}

/// One durable write.
#[derive(Debug)]
pub enum WriteJob {
    /// Entries appended to an account log, starting at `first_seq`.
    Account {
        account: AccountId,
        first_seq: u64,
        entries: Vec<Signed>,
        /// Every device the log lists with these entries. The store keeps
        /// which account lists each device, and refuses the append whole
        /// as [`StoreError::DeviceClaimed`] if another account lists one:
        /// two relay nodes cannot both hand one device to two accounts.
        devices: Vec<DeviceId>,
    },
    /// Entries appended to a document's access log, starting at `first_seq`.
    Access {
        doc: DocId,
        first_seq: u64,
        entries: Vec<Signed>,
        /// The document's owner and every account its log names after
        /// these entries: the store keeps, for each account, the documents
        /// it is or was a member of, and for each owner what it owns (its
        /// quota's use), so neither needs every log in memory.
        owner: AccountId,
        members: Vec<AccountId>,
        /// The signer's account and the length of its log when the entries
        /// were checked: refused as [`StoreError::Stale`] if it grew (a
        /// revocation through another node).
        signer: (AccountId, u64),
    },
    /// Envelopes; each gets its own answer. Shared, so the relay still has
    /// them to check again if the store finds one [`StoreError::Stale`].
    Envelopes(std::sync::Arc<[NewEnvelope]>),
    /// Access entries ending in a disposal, appended at `first_seq`; then,
    /// in the same transaction, every envelope and snapshot of the
    /// document and every earlier entry of its log (its key envelopes)
    /// deleted, and the disposal kept alone with the accounts that could
    /// read it (`readers`), so their devices learn of it. `added` in the
    /// answer is minus the bytes freed.
    Dispose {
        doc: DocId,
        first_seq: u64,
        entries: Vec<Signed>,
        readers: Vec<AccountId>,
        /// The document's highest sequence number as the relay knows it;
        /// the store keeps the higher of it and what it holds, and answers
        /// with that (`Written::seq`): devices compare what they saw with
        /// it, and the number never goes back.
        head: u64,
        signer: (AccountId, u64),
        /// A disposal the relay lost, given back alone (see
        /// `relay::disposals`): the log held goes, and `readers` are indexed.
        alone: bool,
    },
}

/// One envelope's (or one log append's) stored outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The envelope's sequence number (the existing one for a repeat, what
    /// it covers for a snapshot); 0 for a log append.
    pub seq: u64,
    /// How the document's stored bytes changed: an envelope's size when
    /// new, nothing for a repeat, and for a snapshot its size less what it
    /// replaced. The relay keeps each account's usage from these.
    pub added: i64,
    /// For a change stored with [`NewEnvelope::wants_prev`], the highest
    /// sequence number of its document's envelopes below it (0 if none):
    /// what a device must have seen of the document to take this one next
    /// and miss nothing. Read in the transaction that stores it, after
    /// every earlier one of the document (a document's numbers become
    /// visible in the order they are drawn), so one read costs no extra
    /// trip to the store between the commit and the push.
    pub prev: Option<u64>,
}

/// The answer to a job: for envelopes one result each; for log appends a
/// single one.
pub type WriteResult = Vec<Result<Written, StoreError>>;

/// Every log and head of a store, read whole: to index or check a whole
/// store (a relay serving requests reads only what they need).
#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<(AccountId, Vec<Signed>)>,
    pub docs: Vec<(DocId, Vec<Signed>)>,
    /// Highest envelope sequence number per document.
    pub heads: Vec<(DocId, u64)>,
    /// Highest sequence number assigned so far.
    pub cursor: u64,
    /// Bytes of envelopes and snapshots stored per document.
    pub doc_bytes: Vec<(DocId, u64)>,
    /// Documents disposed of, with the accounts that could read them; their
    /// access log in `docs` is the disposal entry alone.
    pub disposed: Vec<(DocId, Vec<AccountId>)>,
}

/// What the relay needs of a store. Reads are async so a backend over the
/// network (PostgreSQL) waits without a thread; SQLite's reads run on the
/// blocking pool.
pub trait Storage: Send + Sync + 'static {
    /// Reads every log and document head (a relay does not, to serve).
    fn load(&self) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// Whether the store answers a read and takes writes (a readiness probe).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Queues a write; the answer comes after the commit that holds it is durable.
    fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult>;

    /// Envelopes of each document after its sequence number, up to about
    /// `max_bytes` in all (always at least one). A stored snapshot that
    /// covers more than asked for comes first, in place of the changes it
    /// covers (which the store no longer keeps).
    fn fetch(
        &self,
        docs: Vec<(DocId, u64)>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<Stored>, bool), StoreError>> + Send;

    /// Stops taking jobs and waits until what was queued is committed.
    fn close(&self) -> impl Future<Output = ()> + Send;

    /// One account's log as stored (empty if there is none).
    fn account_log(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<Signed>, StoreError>> + Send;

    /// One document as stored (`None` if there is none).
    fn doc_record(
        &self,
        doc: DocId,
    ) -> impl Future<Output = Result<Option<DocRecord>, StoreError>> + Send;

    /// What other relay nodes over the same store write, for a store that
    /// can be shared; `None` for one that cannot. The first call gets
    /// everything announced since the store was opened.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>>;

    /// Whether other relay nodes may write the same store.
    fn is_shared(&self) -> bool;

    /// Where a shared store's log changes stand: every append to an
    /// account or access log raises it (always 0 where nothing is shared).
    fn log_version(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The logs that changed after `version`, and the version they reach.
    fn log_changes(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<(Vec<LogChange>, u64), StoreError>> + Send;

    /// Puts the one message of a pairing mailbox's slot
    /// ([`crate::mailbox`]), waking whoever waits for it on any node.
    fn mailbox_put(
        &self,
        mailbox: [u8; 16],
        slot: u8,
        msg: Vec<u8>,
    ) -> impl Future<Output = Result<(), crate::mailbox::MailboxError>> + Send;

    /// Takes a slot's message if it is there.
    fn mailbox_take(
        &self,
        mailbox: [u8; 16],
        slot: u8,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Woken whenever a mailbox message is put (through any node).
    fn mailbox_changed(&self) -> &tokio::sync::Notify;

    /// The newest envelope of each document, as stored now.
    fn heads(
        &self,
        docs: Vec<DocId>,
    ) -> impl Future<Output = Result<Vec<(DocId, u64)>, StoreError>> + Send;

    /// The account whose log lists `device`, if one does.
    fn device_account(
        &self,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<AccountId>, StoreError>> + Send;

    /// Every document `account` is or was a member of (a disposed one
    /// too, so its readers learn of the disposal).
    fn member_docs(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<DocId>, StoreError>> + Send;

    /// Bytes of envelopes and snapshots stored now for the documents
    /// `owner` owns: its quota's use.
    fn owner_usage(&self, owner: AccountId)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The highest envelope sequence number handed out (numbers only rise,
    /// even past envelopes since deleted).
    fn cursor(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Bytes of every envelope and snapshot stored (reads every size: for
    /// the metrics, once, in the background).
    fn stored_bytes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Most jobs one transaction takes; past that the next commit takes the rest.
pub const MAX_GROUP: usize = 1024;

/// The answers to a batch whose commit failed: every job fails, each of its
/// envelopes with its own error, so no caller takes silence for success.
pub fn all_failed<'a>(jobs: impl Iterator<Item = &'a WriteJob>) -> Vec<WriteResult> {
    jobs.map(|job| {
        let n = match job {
            WriteJob::Envelopes(v) => v.len(),
            _ => 1,
        };
        (0..n)
            .map(|_| Err(StoreError::Damaged("commit failed".into())))
            .collect()
    })
    .collect()
}

/// A job and where its answer goes.
pub type Queued = (WriteJob, oneshot::Sender<WriteResult>);

/// The queue into a store's one writer (a thread for SQLite, a task for
/// PostgreSQL).
pub struct Jobs(Mutex<Option<mpsc::UnboundedSender<Queued>>>);

impl Jobs {
    /// A queue and the writer's end of it.
    pub fn new() -> (Jobs, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Jobs(Mutex::new(Some(tx))), rx)
    }

    /// A queue that takes nothing (a store opened to be read only).
    pub fn closed() -> Jobs {
        Jobs(Mutex::new(None))
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Option<mpsc::UnboundedSender<Queued>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job; once the queue is closed the answer is a dropped
    /// sender, which the caller sees as `Stopped`.
    pub fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(jobs) = self.sender().as_ref() {
            let _ = jobs.send((job, tx));
        }
        rx
    }

    /// Whether jobs are still taken.
    pub fn is_open(&self) -> bool {
        self.sender().is_some()
    }

    /// Stops taking jobs: the writer ends once it has committed what was queued.
    pub fn close(&self) {
        drop(self.sender().take());
    }
}

/// Drops [`Written::prev`] from the changes of documents a disposal in the
/// same group commit deleted: what preceded them is gone, so no device is
/// pushed such an envelope; told plainly, it fetches and finds the
/// disposal.
pub fn drop_prev_of_disposed<'a>(
    jobs: impl Iterator<Item = &'a WriteJob> + Clone,
    results: &mut [WriteResult],
) {
    let disposed: std::collections::HashSet<DocId> = jobs
        .clone()
        .zip(results.iter())
        .filter_map(|(j, r)| match j {
            WriteJob::Dispose { doc, .. } if r.first().is_some_and(Result::is_ok) => Some(*doc),
            _ => None,
        })
        .collect();
    if disposed.is_empty() {
        return;
    }
    for (j, r) in jobs.zip(results.iter_mut()) {
        if let WriteJob::Envelopes(envs) = j {
            for (e, w) in envs.iter().zip(r.iter_mut()) {
                if let Ok(w) = w
                    && disposed.contains(&e.doc)
                {
                    w.prev = None;
                }
            }
        }
    }
}

/// The outcome of storing an envelope whose id the document already has,
/// with `stored` the bytes kept under it: the same envelope again (or one a
/// snapshot replaced, kept empty) is acknowledged with its number and
/// nothing added; other bytes under the same id are refused.
pub fn repeated(seq: i64, stored: &[u8], new: &[u8]) -> Result<Written, StoreError> {
    if stored == new || stored.is_empty() {
        Ok(Written {
            seq: seq as u64,
            added: 0,
            prev: None,
        })
    } else {
        Err(StoreError::Conflict)
    }
}

/// The outcome of storing a snapshot that covers up to `covers`: its size
/// less the one it `replaced` (`older` bytes, if it replaced one at all),
/// less the changes it `freed`.
pub fn snapshot_written(
    covers: u64,
    replaced: bool,
    size: usize,
    older: Option<i64>,
    freed: i64,
) -> Written {
    let stored = if replaced {
        size as i64 - older.unwrap_or(0)
    } else {
        0
    };
    Written {
        seq: covers,
        added: stored - freed,
        prev: None,
    }
}

/// What a store indexes of its logs, for a store made before it kept
/// the indexes: read from every log as stored, verified again.
#[derive(Debug, Default)]
pub struct Index {
    /// Which account lists each device. A device two accounts list (which
    /// the relay refused on one node before the store kept the index)
    /// stays with one of them; it is logged.
    pub devices: Vec<(DeviceId, AccountId)>,
    /// Each document's owner and every account its log names (for a
    /// disposed document, everyone who could read it).
    pub docs: Vec<(DocId, AccountId, Vec<AccountId>)>,
}

impl Index {
    pub fn of(loaded: Loaded) -> Result<Index, StoreError> {
        let state = crate::state::State::rebuild(loaded)?;
        let mut owner: std::collections::HashMap<DeviceId, AccountId> = Default::default();
        for (id, a) in state.held_accounts() {
            for d in a.state.devices.keys() {
                match owner.get(d) {
                    Some(first) if first != id => tracing::warn!(
                        device = %d.short(),
                        kept = %first.short(),
                        dropped = %id.short(),
                        "two accounts list one device; the index keeps one"
                    ),
                    _ => {
                        owner.insert(*d, *id);
                    }
                }
            }
        }
        let docs = state
            .held_doc_entries()
            .map(|(id, d)| {
                (
                    *id,
                    d.state.owner,
                    d.state.members.keys().copied().collect(),
                )
            })
            .collect();
        Ok(Index {
            devices: owner.into_iter().collect(),
            docs,
        })
    }
}

/// What this transaction has read of the logs and disposals it holds
/// locked: no other writer changes them before it commits, so each is read
/// once per batch (a round trip each), and forgotten when a job of the
/// batch changes it.
#[derive(Default)]
pub struct Known {
    pub access_len: std::collections::HashMap<DocId, i64>,
    pub account_len: std::collections::HashMap<AccountId, i64>,
    pub disposed: std::collections::HashMap<DocId, bool>,
}

impl Known {
    pub fn forget(&mut self, job: &WriteJob) {
        match job {
            WriteJob::Account { account, .. } => {
                self.account_len.remove(account);
            }
            WriteJob::Access { doc, .. } | WriteJob::Dispose { doc, .. } => {
                self.access_len.remove(doc);
                self.disposed.remove(doc);
            }
            WriteJob::Envelopes(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casebook_shared::ids::EnvelopeId;

    fn change(doc: u8) -> NewEnvelope {
        NewEnvelope {
            doc: DocId([doc; 16]),
            id: EnvelopeId([doc; 24]),
            snapshot_covers: None,
            bytes: vec![doc],
            fence: Fence {
                access_len: 0,
                account: AccountId([0; 32]),
                account_len: 0,
            },
            wants_prev: true,
        }
    }

    fn told(seq: u64, prev: u64) -> Result<Written, StoreError> {
        Ok(Written {
            seq,
            added: 1,
            prev: Some(prev),
        })
    }

    #[test]
    fn a_change_of_a_document_disposed_in_the_same_commit_says_nothing_precedes_it() {
        let dispose = |ok: bool| {
            (
                WriteJob::Dispose {
                    doc: DocId([1; 16]),
                    first_seq: 3,
                    entries: Vec::new(),
                    readers: Vec::new(),
                    head: 9,
                    signer: (AccountId([0; 32]), 1),
                    alone: false,
                },
                vec![if ok {
                    Ok(Written::default())
                } else {
                    Err(StoreError::Stale)
                }],
            )
        };
        for ok in [true, false] {
            let (disposal, answer) = dispose(ok);
            let jobs = [
                WriteJob::Envelopes(vec![change(1), change(2)].into()),
                disposal,
            ];
            let mut results = vec![vec![told(7, 5), told(8, 6)], answer];
            drop_prev_of_disposed(jobs.iter(), &mut results);
            let prevs: Vec<Option<u64>> = results[0]
                .iter()
                .map(|w| w.as_ref().unwrap().prev)
                .collect();
            match ok {
                true => assert_eq!(prevs, [None, Some(6)], "the disposed one only"),
                false => assert_eq!(
                    prevs,
                    [Some(5), Some(6)],
                    "a refused disposal deleted nothing"
                ),
            }
        }
    }
}
