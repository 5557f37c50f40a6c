//! The storage trait the relay runs on, and what goes through it.
//!
//! Writes are jobs handed to one writer that commits whatever has queued up in
//! one transaction (group commit) and answers each job only after that commit
//! is durable. SQLite is the default backend ([`crate::sqlite`]); a PostgreSQL
//! backend for relays that outgrow one machine implements the same trait.

use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;
use tokio::sync::oneshot;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("an envelope with this id but other bytes is already stored")]
    Conflict,
    #[error("a log entry at this position is already stored")]
    LogConflict,
    #[error("the document was disposed of")]
    Disposed,
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
}

/// One durable write.
#[derive(Debug)]
pub enum WriteJob {
    /// Entries appended to an account log, starting at `first_seq`.
    Account {
        account: AccountId,
        first_seq: u64,
        entries: Vec<Signed>,
    },
    /// Entries appended to a document's access log, starting at `first_seq`.
    Access {
        doc: DocId,
        first_seq: u64,
        entries: Vec<Signed>,
    },
    /// Envelopes; each gets its own answer.
    Envelopes(Vec<NewEnvelope>),
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
        /// The document's highest sequence number, kept: devices compare
        /// what they saw with it, and the number never goes back.
        head: u64,
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
}

/// The answer to a job: for envelopes one result each; for log appends a
/// single one.
pub type WriteResult = Vec<Result<Written, StoreError>>;

/// Everything the relay rebuilds its verified state from at start.
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

/// What the relay needs of a store.
pub trait Storage: Send + Sync + 'static {
    /// Reads every log and document head (blocking; called once at start).
    fn load(&self) -> Result<Loaded, StoreError>;

    /// Whether the store answers a read (blocking; for a readiness probe).
    fn ping(&self) -> Result<(), StoreError>;

    /// Queues a write; the answer comes after the commit that holds it is durable.
    fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult>;

    /// Envelopes of each document after its sequence number, up to about
    /// `max_bytes` in all (always at least one). A stored snapshot that
    /// covers more than asked for comes first, in place of the changes it
    /// covers (which the store no longer keeps). Blocking.
    fn fetch(
        &self,
        docs: &[(DocId, u64)],
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError>;
}
