//! What a session remembers of its sync rounds for the next ones. None of
//! it is stored: a new session verifies and learns it again. A home holds
//! it, and sync rounds read and write it, so it sits below both.

use std::collections::{BTreeMap, HashMap, HashSet};

use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

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
    /// Outbox rows given a new envelope id this session because the relay
    /// held other bytes under the old one: a fresh random id cannot clash
    /// honestly, so a second clash fails the round.
    pub renamed: HashSet<i64>,
    /// Account logs sent back to a relay that lacked their end since the
    /// last round's report (a connection sends this account's back before
    /// it authenticates, outside any round).
    pub logs_healed: Vec<AccountId>,
    /// Account logs whose other turn on the relay was taken (see
    /// `sync::turn`), likewise.
    pub logs_turned: Vec<AccountId>,
    /// Devices left revoked by such a turn, likewise.
    pub stay_revoked: Vec<DeviceId>,
    /// Cases kept under a legal hold though the relay holds their
    /// disposal, this round (see `app::disposal::Taken`).
    pub kept_under_hold: Vec<crate::app::KeptCase>,
    /// Other accounts' logs the last round refused, with why, kept until
    /// the next round reads the logs again: the documents they are part
    /// of wait, refused, while the rest goes on, and neither an early push
    /// nor a watcher's told pull touches them meanwhile (see `sync::logs`).
    pub refused_logs: BTreeMap<AccountId, String>,
}

/// Account logs verified this session, each with the last entry it was
/// verified up to: a log the relay shows unchanged is not verified again,
/// signature by signature, every round.
#[derive(Default)]
pub(crate) struct VerifiedLogs(HashMap<AccountId, (Vec<u8>, AccountState)>);

impl VerifiedLogs {
    /// The state of `account`'s log if `log` is the one verified: the same
    /// length and the same last entry (each entry chains to the one before
    /// it, so the rest is the same too).
    pub fn unchanged(&self, account: &AccountId, log: &[Signed]) -> Option<&AccountState> {
        let (last, state) = self.0.get(account)?;
        (state.len == log.len() as u64 && log.last().is_some_and(|l| codec::encode(l) == *last))
            .then_some(state)
    }

    /// Remembers that `log` verified as `state`.
    pub fn remember(&mut self, account: AccountId, log: &[Signed], state: &AccountState) {
        if let Some(last) = log.last() {
            self.0.insert(account, (codec::encode(last), state.clone()));
        }
    }

    /// The verified state of `account`'s log, if it was verified.
    pub fn get(&self, account: &AccountId) -> Option<&AccountState> {
        self.0.get(account).map(|(_, st)| st)
    }

    /// Every verified state.
    pub fn states(&self) -> BTreeMap<AccountId, AccountState> {
        self.0.iter().map(|(a, (_, st))| (*a, st.clone())).collect()
    }

    /// Forgets `account`'s log, refused this round: nothing is judged
    /// against it until a round verifies it again.
    pub fn forget(&mut self, account: &AccountId) {
        self.0.remove(account);
    }
}
