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
}

/// The answer to a job: for envelopes one result each (its sequence number,
/// the existing one for a repeat); for log appends a single `Ok(0)`.
pub type WriteResult = Vec<Result<u64, StoreError>>;

/// Everything the relay rebuilds its verified state from at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<(AccountId, Vec<Signed>)>,
    pub docs: Vec<(DocId, Vec<Signed>)>,
    /// Highest envelope sequence number per document.
    pub heads: Vec<(DocId, u64)>,
    /// Highest sequence number assigned so far.
    pub cursor: u64,
}

/// What the relay needs of a store.
pub trait Storage: Send + Sync + 'static {
    /// Reads every log and document head (blocking; called once at start).
    fn load(&self) -> Result<Loaded, StoreError>;

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
