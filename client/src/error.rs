//! The client library's error type: each variant says what went wrong and,
//! where there is one, what to do about it.

use std::path::PathBuf;

use casebook_shared::access::AccessError;
use casebook_shared::account::AccountError;
use casebook_shared::codec::CodecError;
use casebook_shared::crypto::CryptoError;
use casebook_shared::envelope::EnvelopeError;
use casebook_shared::ids::{DeviceId, DocId};
use casebook_shared::signed::SignedError;

use crate::net::NetError;
use crate::notes::NoteError;
use crate::store::StoreError;

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("account log: {0}")]
    Account(#[from] AccountError),
    #[error("access log: {0}")]
    Access(#[from] AccessError),
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("stored data does not decode: {0}")]
    Codec(#[from] CodecError),
    #[error("no case matches {0:?}")]
    UnknownCase(String),
    /// A case whose psychotherapy notes this account does not hold: they
    /// were not shared with it.
    #[error("this case's psychotherapy notes are not shared with you")]
    PrivateNotShared,
    #[error("{0:?} matches more than one case: {cases}; give more of the id or the name", cases = .1.join(", "))]
    AmbiguousCase(String, Vec<String>),
    #[error("no device matches {0:?}")]
    UnknownDevice(String),
    #[error("no contact named {0:?}")]
    UnknownContact(String),
    #[error("a contact with that name or card exists already")]
    ContactExists,
    #[error("{0} is not verified: compare safety numbers with them first")]
    ContactUnverified(String),
    #[error("the relay at {0} does not hold this account")]
    NotThisRelay(String),
    #[error("{0}'s account is not on this relay; nothing was shared")]
    ContactNotOnRelay(String),
    #[error(
        "that device is the recovery key; revoking it alone would leave no way to recover the account, so it is replaced with new recovery words instead"
    )]
    RecoveryKey,
    #[error("this device has no practitioner name, and notes are written and signed under one")]
    NoName,
    #[error("the name {0} holds control characters; type it as plain text")]
    BadName(String),
    /// A case may not be shared (or unshared) as asked.
    #[error(transparent)]
    Share(#[from] crate::sharing::ShareError),
    /// A contact's card or safety number does not check out.
    #[error(transparent)]
    Contact(#[from] crate::sharing::ContactError),
    /// A commenter's change that does more than comment.
    #[error(transparent)]
    Comment(#[from] crate::sharing::CommentRefusal),
    /// This account's role on a document does not allow the change.
    #[error(transparent)]
    Role(#[from] crate::docs::RoleError),
    /// A retention period, legal hold or disposal refused.
    #[error(transparent)]
    RecordLife(#[from] crate::app::retention::RecordLifeError),
    /// Held edits cannot be saved or discarded as asked.
    #[error(transparent)]
    Held(#[from] crate::app::HeldError),
    /// A device of the account cannot be revoked as asked.
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    /// The key a document is written under now is not held here.
    #[error("not allowed: no key for document {}", .0.short())]
    NoKey(DocId),
    /// One edit does not fit in an envelope, so it can never be sent.
    #[error("not allowed: one edit of {bytes} bytes is larger than an envelope may be")]
    EditTooLarge { bytes: usize },
    /// The relay shows less than this device has already seen.
    #[error(transparent)]
    Rollback(#[from] crate::sync::RollbackError),
    #[error("this device has been revoked from the account; it can no longer sync")]
    Revoked,
    #[error("pairing failed: {0}")]
    Pairing(#[from] crate::pairing::PairingError),
    #[error(transparent)]
    Recovery(#[from] crate::recovery::RecoveryError),
    #[error(transparent)]
    Inconsistent(#[from] Inconsistent),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// A folder of the caller's could not be made.
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file of the caller's could not be written.
    #[error("cannot write {}", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

/// This device's own data does not fit together: a bug, or a store
/// changed behind the client's back. Nothing the person did caused it, so
/// each says what was found, for a report.
#[derive(Debug, thiserror::Error)]
pub enum Inconsistent {
    #[error("local data is inconsistent: this account's log was not read before the pull")]
    OwnLogUnread,
    #[error("local data is inconsistent: no access log for {}", .0.short())]
    NoAccessLog(DocId),
    #[error("local data is inconsistent: no key of epoch {0} held")]
    NoEpochKey(u32),
    #[error("local data is inconsistent: a second genesis entry")]
    SecondGenesis,
    /// A relay's access log that this device's unsent entries cannot be
    /// replayed onto.
    #[error(
        "local data is inconsistent: the relay's access log of {} does not start with this device's",
        .0.short()
    )]
    AccessLogNotOurs(DocId),
    /// Entries sent here were refused as a conflict, and the relay's log
    /// does not hold them.
    #[error(
        "local data is inconsistent: the access log of {} changed elsewhere: {reason}",
        doc.short()
    )]
    AccessLogChanged { doc: DocId, reason: String },
    #[error("local data is inconsistent: an empty access outbox row")]
    EmptyOutboxRow,
    /// A signed entry held here (or just checked) does not open.
    #[error("local data is inconsistent: a signed entry does not open")]
    EntryDoesNotOpen(#[source] SignedError),
    /// An envelope admitted a moment ago does not decode.
    #[error("local data is inconsistent: an admitted envelope does not decode")]
    EnvelopeDoesNotDecode(#[source] EnvelopeError),
    #[error("local data is inconsistent: an account id has the wrong length")]
    AccountIdLength,
    #[error("local data is inconsistent: the relay sent another account's log")]
    AnotherAccountsLog,
    #[error("local data is inconsistent: the identity record is missing")]
    IdentityMissing,
    #[error("local data is inconsistent: the private document is not one")]
    NotPrivateDoc,
    #[error("local data is inconsistent: the kept drafts do not read")]
    Drafts(#[source] serde_json::Error),
    #[error("local data is inconsistent: today's date does not read")]
    Today(#[source] jiff::Error),
    #[error("local data is inconsistent: the audit head is malformed")]
    AuditHead,
    /// The audit store itself does not open: changed or moved.
    #[error(
        "local data is inconsistent: the audit trail is broken at entry 0: an entry does not open: changed or moved"
    )]
    AuditUnreadable(#[source] StoreError),
    #[error("local data is inconsistent: the audit trail is broken at entry {entry}: {why}")]
    AuditBroken { entry: u64, why: &'static str },
    #[error(
        "local data is inconsistent: the audit trail of device {} is broken at entry {entry}",
        device.short()
    )]
    DeviceAuditBroken { device: DeviceId, entry: u64 },
    /// The relay holds an audit entry of this device's that its chain
    /// (restored from a backup) does not lead to.
    #[error(
        "local data is inconsistent: this device's audit entry {0} from the relay does not follow on from its chain"
    )]
    OwnAuditGap(u64),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
