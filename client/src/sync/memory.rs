//! What a session remembers of its sync rounds for the next ones. None of
//! it is stored: a new session verifies and learns it again.

use std::collections::HashSet;

use casebook_shared::ids::DocId;

use super::VerifiedLogs;

/// A session's memory of its rounds.
#[derive(Default)]
pub(crate) struct SyncMemory {
    /// Account logs verified this session.
    pub verified_logs: VerifiedLogs,
    /// Refusals already in the audit this session: one the relay keeps
    /// sending is recorded once, not every round (each line is synced to
    /// the account's other devices and would set off rounds there).
    pub audited_refusals: HashSet<(DocId, u64, String)>,
    /// When (by the home's clock) the last full round of this session that
    /// finished began to read the account logs: for a short while after,
    /// an edit may be sent before the next round catches up (see
    /// `push_early`).
    pub caught_up_at: Option<u64>,
}
