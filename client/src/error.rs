//! The client library's error type: each variant says what went wrong and,
//! where there is one, what to do about it.

use casebook_shared::access::AccessError;
use casebook_shared::account::AccountError;
use casebook_shared::codec::CodecError;
use casebook_shared::crypto::CryptoError;
use casebook_shared::envelope::EnvelopeError;

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
    #[error(
        "the relay at {0} does not hold this account; `relay set` moves a home to the same relay at a new address or with a new certificate"
    )]
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
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("the relay shows less than this device has already seen ({0}); refusing it (rollback)")]
    Rollback(String),
    #[error("this device has been revoked from the account; it can no longer sync")]
    Revoked,
    #[error("pairing failed: {0}")]
    Pairing(#[from] crate::pairing::PairingError),
    #[error("recovery: {0}")]
    Recovery(String),
    #[error("local data is inconsistent: {0}")]
    Inconsistent(String),
    #[error("the export could not be drawn: {0}")]
    Export(String),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
