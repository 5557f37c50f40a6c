//! The signed account logs a round reads: this account's, and those of
//! every account it shares documents with. Each is fetched from the last
//! entry held on, which must come back unchanged (a relay that shows less
//! than this device has seen is refused), and verified once a session up
//! to the entry it ends at.
//!
//! This account's log refused stops the round: nothing can be judged
//! without it. Another account's refused (a rollback, a turn this device
//! may not take, entries that do not verify, or a log held here that the
//! relay will not serve) stops only what depends on
//! it: it is left out of the round's account states, every document that
//! account is part of (owner, member, or once a member) is held back,
//! refused and named, and nothing is fetched, taken, disposed of or sealed
//! against that account's log, held or served; the rest of the round goes
//! on. One colleague's log a relay rolled back would otherwise keep a
//! practitioner from syncing any case at all.

use std::collections::BTreeMap;

use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::AccountId;
use casebook_shared::signed::Signed;

use super::{RefusedLog, RollbackError, unexpected};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::session::VerifiedLogs;

/// The new entries of an account log the relay sent from the last one
/// held on (`held_last`): the relay's log must extend the one held, so its
/// first entry is that last one, unchanged.
pub(crate) fn extension<'a>(
    account: &AccountId,
    held_last: Option<&Signed>,
    fetched: &'a [Signed],
) -> std::result::Result<&'a [Signed], RollbackError> {
    match held_last {
        None => Ok(fetched),
        Some(last) => match fetched.split_first() {
            Some((first, rest)) if first == last => Ok(rest),
            Some(_) => Err(RollbackError::AccountLogDiffers(*account)),
            None => Err(RollbackError::AccountLogShorter(*account)),
        },
    }
}

/// What a round does with an account log the relay sent.
#[derive(Debug)]
pub(crate) enum LogStep {
    /// Nothing new, and the log held was verified this session: its state.
    Known(AccountState),
    /// The log verified to its end as `state`; `write` says what to store.
    Verified {
        state: AccountState,
        all: Vec<Signed>,
        write: LogWrite,
    },
}

/// What a verified account log calls for in the store.
#[derive(Debug, PartialEq)]
pub(crate) enum LogWrite {
    Nothing,
    /// This account's log, unchanged: the keys it reaches are stored again
    /// if this device holds fewer (once a session: a home that stopped
    /// between storing its log and those keys heals).
    HealOwnKeys,
    /// New entries of this account's log, from position `first`, stored
    /// with the keys they reach.
    ExtendOwn {
        first: u64,
        new: Vec<Signed>,
    },
    /// New entries of another account's log, from position `first`.
    Append {
        first: u64,
        new: Vec<Signed>,
    },
}

/// Judges the log `fetched` from the relay (from the last entry held on)
/// against the log `held` of `account`: it must extend the one held, and
/// verify, as `account`'s, to its end, unless nothing is new and the log
/// held was verified this session. `mine` is this device's account.
pub(crate) fn judge_log(
    account: &AccountId,
    mine: &AccountId,
    held: Vec<Signed>,
    fetched: &[Signed],
    verified: &VerifiedLogs,
) -> Result<LogStep> {
    let new = extension(account, held.last(), fetched)?;
    if new.is_empty()
        && let Some(state) = verified.unchanged(account, &held)
    {
        return Ok(LogStep::Known(state.clone()));
    }
    let first = held.len() as u64;
    let mut all = held;
    all.extend_from_slice(new);
    let state = AccountState::verify_log(&all)?;
    if state.id != *account {
        return Err(Inconsistent::AnotherAccountsLog.into());
    }
    let new = new.to_vec();
    let write = match (account == mine, new.is_empty()) {
        (true, true) => LogWrite::HealOwnKeys,
        (true, false) => LogWrite::ExtendOwn { first, new },
        (false, true) => LogWrite::Nothing,
        (false, false) => LogWrite::Append { first, new },
    };
    Ok(LogStep::Verified { state, all, write })
}

impl Home {
    /// Brings every account log held up to date; returns their states.
    pub(super) async fn refresh_accounts(
        &mut self,
        relay: &Relay,
    ) -> Result<BTreeMap<AccountId, AccountState>> {
        let mut out = BTreeMap::new();
        let mine = self.account_id();
        let me = self.refresh_log(relay, &mine).await?;
        if !me.is_active(&self.device_id()) {
            return Err(Error::Revoked);
        }
        out.insert(mine, me);
        self.synced.refused_logs.clear();
        for other in self.store.log_owners(32)? {
            let id = AccountId(
                other
                    .try_into()
                    .map_err(|_| Inconsistent::AccountIdLength)?,
            );
            if id != mine
                && let Some(st) = self.other_log(relay, &id).await?
            {
                out.insert(id, st);
            }
        }
        Ok(out)
    }

    /// Another account's log, refreshed; `None` where this device refused
    /// what the relay served of it, recorded as the module says.
    pub(crate) async fn other_log(
        &mut self,
        relay: &Relay,
        account: &AccountId,
    ) -> Result<Option<AccountState>> {
        if *account == self.account_id() {
            return self.refresh_log(relay, account).await.map(Some);
        }
        let mut fetched = self.refresh_log(relay, account).await;
        if let Err(Error::Net(NetError::Relay {
            code: ErrorCode::Internal,
            ..
        })) = fetched
        {
            // A passing fault of the relay's is not taken for one on this
            // log alone: asked once more.
            fetched = self.refresh_log(relay, account).await;
        }
        let why = match fetched {
            Ok(st) => return Ok(Some(st)),
            Err(e) if refuses_log(&e) => e.to_string(),
            // The relay's own words stay out of the trail: its code only.
            Err(Error::Net(NetError::Relay { code, .. }))
                if withholds(code) && !self.account_log_of(account)?.is_empty() =>
            {
                format!("the relay does not serve it (it answered {code:?})")
            }
            Err(e) => return Err(e),
        };
        self.synced.refused_logs.insert(*account, why);
        self.synced.verified_logs.forget(account);
        // Sent back, and still not served: not healed.
        self.synced.logs_healed.retain(|a| a != account);
        Ok(None)
    }

    /// Records in the trail each log refused this round that the round
    /// before (in this process or another) did not refuse for the same
    /// reason: a refusal met by every sync is one line, not one per run.
    pub(super) fn audit_refused_logs(&mut self, refused: &[RefusedLog]) -> Result<()> {
        let now: Vec<(AccountId, String)> = refused
            .iter()
            .map(|r| (r.account, r.reason.clone()))
            .collect();
        let before: Vec<(AccountId, String)> = match self.store.get_secret(AUDITED_LOGS)? {
            Some(b) => codec::decode(&b)?,
            None => Vec::new(),
        };
        if now == before {
            return Ok(());
        }
        for (account, reason) in now.iter().filter(|r| !before.contains(r)) {
            self.trail().record(
                &format!(
                    "refused the relay's log of account {}: {reason}; the documents that account is part of wait",
                    account.short()
                ),
                None,
            )?;
        }
        Ok(self.store.put_secret(AUDITED_LOGS, &codec::encode(&now))?)
    }

    /// Why the log of `account` was refused this round, if it was.
    pub(crate) fn log_refused(&self, account: &AccountId) -> Option<String> {
        self.synced.refused_logs.get(account).map(|why| {
            format!(
                "the relay's log of account {} was refused this round: {why}",
                account.short()
            )
        })
    }

    /// Makes sure the log of every member of every document this account
    /// owns is held: a rotation seals the new key to each of them. A round
    /// that accepted a share's entries and then failed before fetching the
    /// new member's log would otherwise leave every later rotation unable
    /// to seal to that member.
    pub(super) async fn member_logs(
        &mut self,
        relay: &Relay,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<()> {
        let me = self.account_id();
        for doc in self.store.doc_ids()? {
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            if meta.owner != me {
                continue;
            }
            for member in meta.members.iter().map(|(a, _, _)| *a) {
                // Its documents are held back this round (see the module).
                if self.synced.refused_logs.contains_key(&member) {
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member)
                    && let Some(st) = self.other_log(relay, &member).await?
                {
                    slot.insert(st);
                }
            }
        }
        Ok(())
    }

    /// Fetches an account log's new entries, checking that the relay's log
    /// extends the one held (the last held entry must come back unchanged).
    pub(crate) async fn refresh_log(
        &mut self,
        relay: &Relay,
        account: &AccountId,
    ) -> Result<AccountState> {
        let held = self.account_log_of(account)?;
        let from = held.len().saturating_sub(1) as u64;
        let get = Request::GetAccount {
            account: *account,
            from,
        };
        let mut fetched = relay.request(&get).await;
        // The relay holds less of the log than this device has seen, or
        // none of it (restored from an older copy, or losing data): the
        // log goes back whole, the relay takes what it lacks, and what it
        // then serves is judged as any other. It is fetched again whatever
        // the relay answered: another device (or another relay node) may
        // have sent it back meanwhile.
        if !held.is_empty() && lacks_log(&fetched) {
            self.send_log_back(relay, account, &held).await?;
            fetched = relay.request(&get).await;
        }
        let entries = match fetched? {
            Response::Log { entries } => entries,
            r => return Err(unexpected(r)),
        };
        // Two histories, as after a restore written to since: taken where
        // the one held here only adds devices (see `turn`).
        if let Err(refusal) = extension(account, held.last(), &entries) {
            return self.take_turned_log(relay, account, held, refusal).await;
        }
        let step = judge_log(
            account,
            &self.account_id(),
            held,
            &entries,
            &self.synced.verified_logs,
        )?;
        let (state, all, write) = match step {
            LogStep::Known(state) => return Ok(state),
            LogStep::Verified { state, all, write } => (state, all, write),
        };
        match write {
            LogWrite::Nothing => {}
            LogWrite::HealOwnKeys => self.heal_account_keys(&all)?,
            LogWrite::ExtendOwn { first, new } => self.extend_account_log(first, &new)?,
            LogWrite::Append { first, new } => {
                let encoded: Vec<Vec<u8>> = new.iter().map(codec::encode).collect();
                self.store.append_log(&account.0, first, &encoded)?;
            }
        }
        self.synced.verified_logs.remember(*account, &all, &state);
        Ok(state)
    }

    /// Sends `log`, this device's whole copy of `account`'s log, to a relay
    /// that lacks its end: the relay takes the entries it lacks when what
    /// it holds is where `log` begins (see the relay's `restore_account`).
    /// Returns whether it did; a relay whose log begins otherwise (two
    /// histories) refuses, and the caller's fetch or sign-in after it
    /// shows which.
    pub(crate) async fn send_log_back(
        &mut self,
        relay: &Relay,
        account: &AccountId,
        log: &[Signed],
    ) -> Result<bool> {
        let entries = log.to_vec();
        match relay.request(&Request::CreateAccount { entries }).await {
            Ok(_) => {}
            Err(NetError::Relay {
                code: ErrorCode::Conflict,
                ..
            }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let whose = if *account == self.account_id() {
            "this account's log".to_string()
        } else {
            format!("the log of account {}", account.short())
        };
        self.trail().record(
            &format!(
                "the relay lacked the end of {whose} (restored from an older copy, or losing data): sent back"
            ),
            None,
        )?;
        if !self.synced.logs_healed.contains(account) {
            self.synced.logs_healed.push(*account);
        }
        // It may have lost more than the log: see `sync::heal::RECHECK`.
        self.relay_lost_data()?;
        Ok(true)
    }
}

/// The sealed setting that keeps the logs the last round refused, with why.
const AUDITED_LOGS: &str = "audited_log_refusals";

/// Whether `e`, met fetching an account log, refuses what the relay
/// served (rather than failing to reach it, or to store it).
fn refuses_log(e: &Error) -> bool {
    matches!(
        e,
        Error::Rollback(_)
            | Error::Account(_)
            | Error::Inconsistent(Inconsistent::AnotherAccountsLog)
    )
}

/// Whether the relay's `code`, answering a fetch of a log this device
/// holds, or the sending back of it, withholds that log: it lacks it,
/// will not take back what verified here, or fails on it (twice running,
/// while this account's log, read first, came through: its copy damaged,
/// most likely). One colleague's log is then left out of the round like
/// one refused; the next round asks again. A relay that is busy, or has
/// forgotten the session, fails the round.
fn withholds(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotFound | ErrorCode::Invalid | ErrorCode::Forbidden | ErrorCode::Internal
    )
}

/// Whether the relay's answer to a fetch of a log from its last entry held
/// shows less than is held: no entry at all, or no such account.
fn lacks_log(fetched: &std::result::Result<Response, NetError>) -> bool {
    match fetched {
        Ok(Response::Log { entries }) => entries.is_empty(),
        Err(NetError::Relay { code, .. }) => *code == ErrorCode::NotFound,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use casebook_shared::crypto::{DeviceSigner, DhSecret};

    use super::*;

    fn log(entries: usize) -> Vec<Signed> {
        let signer = DeviceSigner::generate();
        let (genesis, _) = casebook_shared::account::genesis(&signer, &DhSecret::generate(), 1);
        let mut log = vec![genesis];
        for n in 1..entries {
            let mut next = log[0].clone();
            next.body.push(n as u8);
            log.push(next);
        }
        log
    }

    #[test]
    fn a_relay_log_must_extend_the_one_held() {
        let a = AccountId([7; 32]);
        let held = log(3);
        assert_eq!(extension(&a, None, &held).unwrap().len(), 3);
        assert!(extension(&a, held.last(), &held[2..]).unwrap().is_empty());
        let mut longer = held[2..].to_vec();
        longer.push(held[0].clone());
        assert_eq!(extension(&a, held.last(), &longer).unwrap().len(), 1);
        assert!(matches!(
            extension(&a, held.last(), &held[1..]),
            Err(RollbackError::AccountLogDiffers(x)) if x == a
        ));
        assert!(matches!(
            extension(&a, held.last(), &[]),
            Err(RollbackError::AccountLogShorter(x)) if x == a
        ));
    }

    #[test]
    fn a_log_is_taken_as_verified_only_at_the_length_and_last_entry_verified() {
        let held = log(1);
        let state = AccountState::verify_log(&held).unwrap();
        let mut verified = VerifiedLogs::default();
        assert!(verified.unchanged(&state.id, &held).is_none());
        verified.remember(state.id, &held, &state);
        assert!(verified.unchanged(&state.id, &held).is_some());
        assert!(verified.get(&state.id).is_some());
        assert_eq!(verified.states().len(), 1);
        // Another last entry, or another length, is verified afresh.
        let mut other = held.clone();
        other[0].body.push(0);
        assert!(verified.unchanged(&state.id, &other).is_none());
        let longer = log(2);
        assert!(verified.unchanged(&state.id, &longer).is_none());
        assert!(verified.unchanged(&AccountId([1; 32]), &held).is_none());
    }

    /// A real account log of `n` entries: a genesis and devices added.
    fn real_log(n: usize) -> Vec<Signed> {
        let signer = DeviceSigner::generate();
        let (genesis, key) = casebook_shared::account::genesis(&signer, &DhSecret::generate(), 1);
        let mut state = AccountState::from_genesis(&genesis).unwrap();
        let mut log = vec![genesis];
        for _ in 1..n {
            let other = DeviceSigner::generate();
            let info = casebook_shared::account::DeviceInfo {
                id: other.device_id(),
                dh: DhSecret::generate().public(),
                kind: casebook_shared::account::DeviceKind::Device,
            };
            let e = casebook_shared::account::add_device(&state, &signer, &key, info, 2).unwrap();
            state.apply(&e).unwrap();
            log.push(e);
        }
        log
    }

    #[test]
    fn a_fetched_log_is_judged_by_whose_it_is_and_what_is_new() {
        let log = real_log(3);
        let id = AccountState::verify_log(&log).unwrap().id;
        let other = AccountId([9; 32]);
        let none = VerifiedLogs::default();
        let write = |held: &[Signed], fetched: &[Signed], mine: &AccountId| match judge_log(
            &id,
            mine,
            held.to_vec(),
            fetched,
            &none,
        )
        .unwrap()
        {
            LogStep::Verified { write, all, .. } => (write, all.len()),
            LogStep::Known(_) => panic!("nothing was verified this session"),
        };
        assert_eq!(
            write(&log[..1], &log, &id),
            (
                LogWrite::ExtendOwn {
                    first: 1,
                    new: log[1..].to_vec()
                },
                3
            )
        );
        assert_eq!(
            write(&log[..2], &log[1..], &other),
            (
                LogWrite::Append {
                    first: 2,
                    new: log[2..].to_vec()
                },
                3
            )
        );
        assert_eq!(write(&log, &log[2..], &id), (LogWrite::HealOwnKeys, 3));
        assert_eq!(write(&log, &log[2..], &other), (LogWrite::Nothing, 3));
        // Verified this session and unchanged: not verified again.
        let mut seen = VerifiedLogs::default();
        let state = AccountState::verify_log(&log).unwrap();
        seen.remember(id, &log, &state);
        assert!(matches!(
            judge_log(&id, &id, log.clone(), &log[2..], &seen),
            Ok(LogStep::Known(_))
        ));
        // Another account's log served under this id.
        let theirs = real_log(1);
        assert!(matches!(
            judge_log(&other, &id, Vec::new(), &theirs, &none),
            Err(Error::Inconsistent(Inconsistent::AnotherAccountsLog))
        ));
        // A relay that shows less than was held.
        assert!(matches!(
            judge_log(&id, &id, log.clone(), &[], &none),
            Err(Error::Rollback(_))
        ));
    }
}
