//! What the relay showed that is less than this device has already seen.

use casebook_shared::ids::{AccountId, DocId};

/// What the relay showed that is less than this device has already seen:
/// a relay rolled back (restored from an old backup, or lying), refused so
/// that no device takes an older state for the newest.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The last entry held of the account's log is not the relay's.
    #[error(
        "the relay shows less than this device has already seen (the relay's log of account {} differs from the one held); refusing it (rollback)",
        .0.short()
    )]
    AccountLogDiffers(AccountId),
    /// No account on the relay lists this device, and the log sent back
    /// was not taken: the relay's log of its account took another history
    /// (restored from an older copy, and written to since), in which this
    /// device is revoked or was left out (see `turn`), or the relay lies.
    #[error(
        "no account on the relay lists this device, and the relay's log of account {} differs from the one held: the relay was restored from an older copy and written to since, and a device of the account that syncs there may have revoked this one or left it out (pair it again if so); refusing it (rollback)",
        .0.short()
    )]
    NotListed(AccountId),
    #[error(
        "the relay shows less than this device has already seen (the relay's log of account {} is shorter than the one held); refusing it (rollback)",
        .0.short()
    )]
    AccountLogShorter(AccountId),
    /// The relay's log of the account took another turn after `after`
    /// entries, which this device may not take (see `turn`).
    #[error(
        "the relay's log of account {} took another turn after entry {after} than the one held here, and {why}; refusing it (rollback)",
        account.short()
    )]
    AccountLogTurned {
        account: AccountId,
        after: u64,
        why: &'static str,
    },
    /// The relay's listing gave the access log's length as `listed`; the
    /// entries it then sent end at `sent`.
    #[error(
        "the relay shows less than this device has already seen (document {} listed {listed} access entries but sent {sent}); refusing it (rollback)",
        doc.short()
    )]
    AccessEntries { doc: DocId, listed: u64, sent: u64 },
    #[error(
        "the relay shows less than this device has already seen (document {} is listed twice); refusing it (rollback)",
        .0.short()
    )]
    ListedTwice(DocId),
    #[error(
        "the relay shows less than this device has already seen (document {} has {relay} access entries on the relay, {here} here); refusing it (rollback)",
        doc.short()
    )]
    FewerAccessEntries { doc: DocId, relay: u64, here: u64 },
    #[error(
        "the relay shows less than this device has already seen (document {} is at {relay} on the relay, {seen} seen here); refusing it (rollback)",
        doc.short()
    )]
    BehindSeen { doc: DocId, relay: u64, seen: u64 },
    #[error(
        "the relay shows less than this device has already seen (document {} is at {relay} on the relay, which acknowledged a change here at {acked}); refusing it (rollback)",
        doc.short()
    )]
    BehindAcked { doc: DocId, relay: u64, acked: u64 },
    /// A relay cannot make an owner's document vanish.
    #[error(
        "the relay shows less than this device has already seen (document {} is missing from the relay); refusing it (rollback)",
        .0.short()
    )]
    Missing(DocId),
}
