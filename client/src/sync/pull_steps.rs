//! What [`Pulling`](super::pulling::Pulling) is handed of the store, and
//! the steps it yields for the shell in `pull` to carry out.

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::frames::{Request, Stored};
use casebook_shared::ids::{DocId, Hash};
use casebook_shared::signed::Signed;

use crate::store::DocSync;

/// What this device holds of one document, as far as pulling goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeldDoc {
    pub sync: DocSync,
    /// This account owns it.
    pub owned: bool,
    /// Disposed of here (the disposal may still wait to be sent).
    pub disposed: bool,
    /// Access entries signed here that wait to be sent.
    pub unsent: u64,
    /// The chain hash of the last entry held that the relay has had (of
    /// entry `sync.access_len - unsent - 1`); `None` when none is.
    pub head: Option<Hash>,
}

/// What the store holds, read before the pull starts.
#[derive(Clone, Debug)]
pub(crate) struct Here {
    pub docs: BTreeMap<DocId, HeldDoc>,
    /// Documents known to be disposed of (their disposal stays listed).
    pub disposed: BTreeSet<DocId>,
    /// This account's audit document, and whether its access log is held.
    pub audit: DocId,
    pub audit_held: bool,
}

/// Access entries to take into a document's log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TakeAccess {
    pub doc: DocId,
    pub entries: Vec<Signed>,
    /// Entries of the relay's log before these.
    pub confirmed: u64,
    /// Entries signed here but not sent are replayed on top of these.
    pub rebase: bool,
    /// These are the relay's whole log, which differs from the one held
    /// here before its end: see [`check::Need::fork`].
    pub fork: bool,
}

/// The next thing the shell does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Delete everything held of this disposed document.
    Purge(DocId),
    /// Ask the relay for its listing; then [`super::pulling::Pulling::listed`].
    List,
    /// Create this account's audit document on the relay; then
    /// [`super::pulling::Pulling::audit_created`] with what is held of it.
    EnsureAudit,
    /// Mark the shares of `ended` as ended and look again at `listed`
    /// (documents this account does not own), recording each change.
    Shares {
        ended: Vec<DocId>,
        listed: Vec<DocId>,
    },
    /// Fetch a document's access entries from `from`; then
    /// [`super::pulling::Pulling::access`].
    GetAccess { doc: DocId, from: u64 },
    /// Check and carry out a disposal the relay shows; then
    /// [`super::pulling::Pulling::disposal_taken`].
    TakeDisposal { doc: DocId, entry: Signed },
    /// Make sure the account log of every signer of these entries (and of
    /// every member they add) is held; then [`super::pulling::Pulling::signers`].
    Signers { doc: DocId, entries: Vec<Signed> },
    /// Take these entries, in one transaction; then
    /// [`super::pulling::Pulling::access_taken`] with the refusals.
    TakeAccess(Vec<TakeAccess>),
    /// Read the account log of every member these documents ever had.
    MemberLogs(Vec<DocId>),
    /// Send this fetch; then [`super::pulling::Pulling::page`].
    Fetch(Request),
    /// Check each envelope and add it to its document's batch.
    Take(Vec<Stored>),
    /// How far the fetching has got.
    Fetched {
        docs: usize,
        of: usize,
        bytes: usize,
    },
    /// Apply the batches taken, a few dozen documents at a time.
    Apply,
    /// Nothing more; [`super::pulling::Pulling::finish`] gives what was held back.
    Done,
}
