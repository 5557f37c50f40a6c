//! An account log that took another turn on the relay.
//!
//! A relay restored from an older copy lost the end of an account's log:
//! say a tablet the laptop paired after the copy was taken. Until a device
//! that holds that end sends it back, the relay takes whatever the account
//! appends on top of what it kept, so a phone that never saw the tablet's
//! pairing can pair a watch meanwhile. The relay's log then shares a
//! beginning with the one the laptop holds and goes on another way: two
//! histories, both signed by the account's devices. Refusing it as a
//! rollback locked the laptop, the tablet, and every colleague holding the
//! laptop's copy out for good.
//!
//! Where the turn held here only adds devices, the relay's can be taken
//! with no device lost, whatever the relay's turn did (a device it revoked
//! is revoked): an owner's device that holds the other turn and is itself
//! in the relay's log signs its devices in again on top of it (the
//! relay's newest account key wrapped to each anew), and then takes it; a
//! device added in the lost turn, and another account's device, take the
//! relay's log once every device of the turn they hold is listed in it.
//! A device signed in again stands later in the log than it did: what it
//! signed at a length of the log where, in the relay's history, it was not
//! yet a device no longer verifies. So a device takes a turn only if every
//! access entry it holds (queued ones too) and every disposal it keeps
//! still verify under the log it would take.
//!
//! What stays refused, named ([`RollbackError::AccountLogTurned`]): a
//! turn held here that revokes a device. Made again on top of the relay's
//! log, the revocation would stand later than it did, and what the revoked
//! device signed on the restored relay meanwhile (active there again: a
//! share with a stranger) would verify, the owner's next rotation sealing
//! the case to that stranger. Made to hold from where it held (a
//! revocation dated back), it would turn access logs the relay and other
//! devices hold and verified into ones that no longer verify. Neither is
//! safe; the laptop refuses, naming why, and keeps its log. Also refused:
//! a turn held here with an entry signed by a device the relay's revokes
//! (what it paired would come back);
//! a log under which something held here would no longer verify (an
//! access entry a device added in the lost turn signed: a case it opened
//! or shared); and a turn below one taken before (a relay showing a device
//! two histories in turn would have it sign devices in again each round).
//! Signing such entries again is not built, and neither can a device
//! added in the lost turn know what others hold: where the tablet opened
//! a case the laptop never fetched, the laptop takes the turn, and the
//! tablet refuses it, its case held there alone.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry};
use casebook_shared::account::{self, AccountEntry, AccountOp, AccountState, DeviceInfo};
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId};
use casebook_shared::signed::Signed;

use super::{RollbackError, unexpected};
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};

/// Where two histories of an account log part, and what the one held here
/// added that the relay's lacks.
#[derive(Debug, PartialEq)]
pub(crate) struct Turn {
    /// How many entries both begin with.
    pub common: u64,
    /// Devices the turn held here added.
    pub added_here: Vec<DeviceId>,
    /// Those of them the relay's log does not list at all, to be signed in
    /// again.
    pub lost: Vec<DeviceInfo>,
}

/// Why a turn is not taken (the rest of the refusal's text is
/// [`RollbackError::AccountLogTurned`]'s).
pub(crate) const REVOKES: &str = "the one held here revokes a device, which made again on top of the relay's would let stand what that device signed there meanwhile";
pub(crate) const REVOKED_SIGNS: &str =
    "the one held here holds an entry signed by a device the relay's revokes";
pub const LACKS_DEVICES: &str =
    "the relay's lacks devices of the one held, which a device of that account adds again";
pub(crate) const ENTRIES_DEPEND: &str = "an access entry or a disposal held here would no longer verify under it (signed by a device the turn held here added, or by one the relay's revokes, after that)";
pub(crate) const UNEXPECTED: &str = "an entry of it is neither an added device nor a revocation";
pub(crate) const BELOW_TAKEN: &str = "it parts no later than another turn of it this device took did (a relay showing two histories in turn)";
pub const MOVED_ON: &str = "the relay's log moved on while this device signed devices in again; the next sync judges it again";

/// The sealed setting that keeps, by account, where a later turn must part
/// at or above: one past where the last turn taken parted.
const TAKEN: &str = "account_turns_taken";

/// Judges the relay's whole log `theirs` of `account` (verified by the
/// caller) against the one `held`: a turn (they part after a shared
/// beginning) in which the side held here only adds devices, none signed
/// by a device the relay's side revokes. Anything else keeps the refusal
/// the fetch met, as `not_a_turn`.
pub(crate) fn judge_turn(
    account: &AccountId,
    held: &[Signed],
    theirs: &[Signed],
    not_a_turn: RollbackError,
) -> std::result::Result<Turn, RollbackError> {
    let common = held.iter().zip(theirs).take_while(|(a, b)| a == b).count();
    // No shared genesis, or one log is the other's beginning: a rollback
    // or another account's log, not a turn.
    if common == 0 || common == held.len() || common == theirs.len() {
        return Err(not_a_turn);
    }
    let refused = |why: &'static str| RollbackError::AccountLogTurned {
        account: *account,
        after: common as u64,
        why,
    };
    // Both logs verified whole, so every entry opens and none is a genesis.
    let mut here = Vec::new();
    for e in &held[common..] {
        match e.open::<AccountEntry>(account::SIG_LABEL) {
            Ok(AccountEntry {
                op: AccountOp::AddDevice { device, .. },
                ..
            }) => here.push((e.signer, device)),
            _ => return Err(refused(REVOKES)),
        }
    }
    let mut added_there = Vec::new();
    let mut revoked_there = Vec::new();
    for e in &theirs[common..] {
        match e.open::<AccountEntry>(account::SIG_LABEL).map(|e| e.op) {
            Ok(AccountOp::AddDevice { device, .. }) => added_there.push(device.id),
            Ok(AccountOp::RevokeDevice { device, .. }) => revoked_there.push(device),
            _ => return Err(refused(UNEXPECTED)),
        }
    }
    // A device the relay's turn revoked (the desk revoking a lost phone
    // on the restored relay) that paired a device held here: signed in
    // again, that one would come back though its pairer is gone.
    if here
        .iter()
        .any(|(signer, _)| revoked_there.contains(signer))
    {
        return Err(refused(REVOKED_SIGNS));
    }
    let lost = here
        .iter()
        .map(|(_, d)| d)
        .filter(|d| !added_there.contains(&d.id))
        .cloned()
        .collect();
    Ok(Turn {
        common: common as u64,
        added_here: here.into_iter().map(|(_, d)| d.id).collect(),
        lost,
    })
}

impl Home {
    /// The relay's log of `account` differs from the one `held` here (the
    /// fetch met `refusal`): takes it if it took another turn this device
    /// may take, as the module says, signing lost devices in again where
    /// this device can. Returns the new log's state, or the refusal.
    pub(super) async fn take_turned_log(
        &mut self,
        relay: &Relay,
        account: &AccountId,
        held: Vec<Signed>,
        refusal: RollbackError,
    ) -> Result<AccountState> {
        let theirs = match relay
            .request(&Request::GetAccount {
                account: *account,
                from: 0,
            })
            .await?
        {
            Response::Log { entries } => entries,
            r => return Err(unexpected(r)),
        };
        // Verified first: an entry that does not open is the relay's doing,
        // not a turn's (see `judge_turn`). None at all is the rollback the
        // fetch met.
        if theirs.is_empty() {
            return Err(refusal.into());
        }
        let mut state = AccountState::verify_log(&theirs)?;
        if state.id != *account {
            return Err(crate::error::Inconsistent::AnotherAccountsLog.into());
        }
        let turn = judge_turn(account, &held, &theirs, refusal)?;
        let refused = |why| RollbackError::AccountLogTurned {
            account: *account,
            after: turn.common,
            why,
        };
        let mut taken: BTreeMap<AccountId, u64> = match self.store.get_secret(TAKEN)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeMap::new(),
        };
        if turn.common < taken.get(account).copied().unwrap_or(0) {
            return Err(refused(BELOW_TAKEN).into());
        }
        let mine = *account == self.account_id();
        let mut log = theirs;
        let mut signed = Vec::new();
        if !turn.lost.is_empty() {
            if !mine || !state.is_active(&self.device_id()) {
                return Err(refused(LACKS_DEVICES).into());
            }
            // The relay's newest account key, which a revocation in its turn
            // may have made: wrapped to this device there, or it is not one.
            let me = self.device_id();
            let keys = account::account_keys(&log, account, &me, &self.id.dh)?;
            let key = keys
                .get(state.key.generation as usize)
                .ok_or(crate::error::Error::Revoked)?;
            for info in &turn.lost {
                let entry =
                    account::add_device(&state, &self.id.signer, key, info.clone(), self.now())?;
                state.apply(&entry)?;
                signed.push(entry);
            }
            log.extend(signed.iter().cloned());
        }
        // Listed is enough: one revoked there was revoked by a device that
        // saw it.
        if turn
            .added_here
            .iter()
            .any(|d| !state.devices.contains_key(d))
        {
            return Err(refused(LACKS_DEVICES).into());
        }
        if !self.held_entries_verify_under(account, &state)? {
            return Err(refused(ENTRIES_DEPEND).into());
        }
        if !signed.is_empty() {
            let append = Request::AppendAccount {
                entries: signed.clone(),
            };
            match relay.request(&append).await {
                Ok(_) => {}
                // Another device signed them in first, or wrote on (the
                // relay answers that the entries do not continue its log,
                // or that another write won): judged again next round, if
                // the relay's log did move on. Any other refusal stands.
                Err(NetError::Relay {
                    code: code @ (ErrorCode::Conflict | ErrorCode::Invalid),
                    reason,
                }) => {
                    let again = Request::GetAccount {
                        account: *account,
                        from: log.len() as u64 - signed.len() as u64 - 1,
                    };
                    return match relay.request(&again).await? {
                        Response::Log { entries } if entries.len() > 1 => {
                            Err(refused(MOVED_ON).into())
                        }
                        _ => Err(NetError::Relay { code, reason }.into()),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        let first = turn.common;
        // Showing the history left behind again parts where this one did:
        // refused from now on. One parting above (a restore from a copy
        // that holds the relay's side, written to again) may be taken.
        taken.insert(*account, turn.common + 1);
        let whose = match mine {
            true => "this account's log".to_string(),
            false => format!("the log of account {}", account.short()),
        };
        let again = match signed.len() {
            0 => String::new(),
            n => format!(", and {n} device(s) it lacked signed in again on top of it"),
        };
        // One transaction: a log half replaced would not verify. (Should it
        // fail after `extend_account_log` set the keys in memory, those are
        // the held ones and maybe newer ones a revocation in the relay's
        // turn made: the next round judges the relay's log again and takes
        // it, keys and all.)
        self.atomically(|home| {
            if mine {
                home.extend_account_log(first, &log[first as usize..])?;
            } else {
                let encoded: Vec<Vec<u8>> =
                    log[first as usize..].iter().map(codec::encode).collect();
                home.store.append_log(&account.0, first, &encoded)?;
            }
            home.store.put_secret(TAKEN, &codec::encode(&taken))?;
            home.trail().record(
                &format!(
                    "the relay's copy of {whose} took another turn after entry {first} than the one held here (restored from an older copy, and written to since); the one held here only adds devices, so the relay's was taken{again}"
                ),
                None,
            )?;
            // The relay lost the end of the log, and maybe more: see
            // `sync::heal::RECHECK`.
            home.relay_lost_data()
        })?;
        self.synced.logs_turned.push(*account);
        self.synced.verified_logs.remember(*account, &log, &state);
        Ok(state)
    }

    /// Whether every access entry held here (queued ones too) and every
    /// disposal kept here that a device of `account` signed still
    /// verifies under its log as `state` leaves it.
    fn held_entries_verify_under(&self, account: &AccountId, state: &AccountState) -> Result<bool> {
        for doc in self.store.doc_ids()? {
            for signed in self.access().access_log(&doc)? {
                if !verifies_under(&signed, account, state) {
                    return Ok(false);
                }
            }
        }
        let kept = self.kept_disposals()?;
        Ok(kept
            .values()
            .all(|k| verifies_under(&k.gone, account, state)))
    }
}

/// Whether an access entry, if `account` signed it, verifies under its log
/// as `state` leaves it: its signer active at the log length it was signed
/// at ([`AccountState::active_at`], as the access log's own check asks).
/// Another account's entry, or one that does not open, is not this check's
/// to judge.
fn verifies_under(signed: &Signed, account: &AccountId, state: &AccountState) -> bool {
    let Ok(entry) = signed.open::<DocEntry>(access::SIG_LABEL) else {
        return true;
    };
    if entry.account != *account {
        return true;
    }
    state.active_at(&signed.signer, entry.account_len)
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
