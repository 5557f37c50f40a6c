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
//! Such a turn can be taken with nothing lost: an owner's device that
//! holds the other turn and is itself in the relay's log does again on top
//! of it what the relay's lacks, and then takes it; a device added in the
//! lost turn, and another account's device, take the relay's log once it
//! holds everything of the turn they hold.
//! - A device the relay's lacks is signed in again, the account key
//!   wrapped to it anew (one added and revoked in the turn held here, as
//!   old recovery words are, only to be revoked again).
//! - A revocation it lacks (the laptop revoked a lost phone after the
//!   copy) is made again to the same account key it made here
//!   ([`account::revoke_device_to`]): what the laptop sealed to that
//!   generation stays readable, now to the devices added on the relay too.
//! - A device the revoked one added on the relay meanwhile (the phone,
//!   active again there, pairing a watch) is revoked too; anything else a
//!   revoked device signed there is refused.
//! - Every revocation made again holds from where it held here, a device
//!   cut from its addition on ([`account::AccountOp::RevokeDeviceSince`]):
//!   what they signed on the restored relay at a longer log (a share with
//!   a stranger) verifies nowhere, though the log reached that length
//!   before the revocation in this history.
//! - Where the generations cannot line up, the keys made here are left
//!   behind: the relay's revoked devices its own way first (a desk, never
//!   told, revoked the lost phone again, to a key of its own), or a device
//!   to be revoked too would be active when a revocation is made again, and
//!   would be wrapped the key that shut the phone out. Each revocation the
//!   relay's lacks is then made again to a new key, and every case sealed
//!   to the left-behind keys moves to a new one: an owner's device moves
//!   its account's cases, another account's device the cases it owns that
//!   account is a member of. (`access::doc_keys` passes over an envelope
//!   sealed to a key left behind, and a device keeps the document keys it
//!   held.)
//!
//! A device signed in again stands later in the log than it did: what it
//! signed at a length of the log where, in the relay's history, it was not
//! yet a device no longer verifies. So a device takes a turn only if every
//! access entry it holds (queued ones too) and every disposal it keeps
//! still verify under the log it would take.
//!
//! What stays refused, named ([`RollbackError::AccountLogTurned`]): the
//! relay's turn holding an entry a device revoked here signed, other than
//! adding a device, or the one held here an entry signed by a device only
//! the relay's revokes (what it paired would come back); a log under which
//! something held here would no longer verify (an access entry a device
//! added in the lost turn signed: a case it opened or shared); and a turn
//! below one taken before (a relay showing a device two histories in turn
//! would have it sign again each round). Signing such entries again is
//! not built, and neither can a device added in the lost turn know what
//! others hold: where the tablet opened a case the laptop never fetched,
//! the laptop takes the turn, and the tablet refuses it, its case held
//! there alone.

use std::collections::BTreeMap;

use casebook_shared::account::{
    self, AccountEntry, AccountKeyPub, AccountOp, AccountState, DeviceInfo,
};
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId};
use casebook_shared::signed::Signed;

use super::{RollbackError, unexpected};
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};

/// Where two histories of an account log part, and what the one held here
/// did that the relay's lacks.
#[derive(Debug, PartialEq)]
pub(crate) struct Turn {
    /// How many entries both begin with.
    pub common: u64,
    /// Devices the turn held here added.
    pub added_here: Vec<DeviceId>,
    /// What the turn held here did that the relay's lacks, in order, to be
    /// done again on top of it.
    pub lost: Vec<Lost>,
    /// Devices the relay's turn added by a device the one held here
    /// revokes (or by one of theirs), not revoked there yet: revoked on
    /// top of it after `lost`, each to a new account key.
    pub cut: Vec<DeviceId>,
    /// Whether the account keys made here are left behind: the relay's
    /// revoked devices its own way first, or a device is to be cut (it
    /// would be wrapped the key a revocation made again keeps).
    pub orphans: bool,
}

/// One thing the turn held here did that the relay's lacks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lost {
    /// A device the relay's log does not list, to be signed in again.
    Device(DeviceInfo),
    /// A revocation, to be made again to the account key of the generation
    /// it made here (see [`account::revoke_device_to`]), holding from the
    /// length `since` it held from here.
    Revocation {
        device: DeviceId,
        key: AccountKeyPub,
        since: u64,
    },
    /// A device added and revoked here, where the keys made here are left
    /// behind: listed again, wrapped a key nobody else holds, and revoked
    /// from its addition on.
    Revoked(DeviceInfo),
}

/// Why a turn is not taken (the rest of the refusal's text is
/// [`RollbackError::AccountLogTurned`]'s).
pub(crate) const REVOKES: &str =
    "a revocation made again here would not make the account key it made before";
pub(crate) const REVOKED_SIGNS: &str = "the relay's holds an entry signed by a device the one held here revokes, other than adding a device, or the one held here an entry signed by a device only the relay's revokes";
pub const LACKS_DEVICES: &str = "the relay's lacks devices or revocations of the one held, which a device of that account adds again";
pub(crate) const ENTRIES_DEPEND: &str = "an access entry or a disposal held here, signed by a device the turn held here added, would no longer verify";
pub(crate) const BELOW_TAKEN: &str = "it parts no later than another turn of it this device took did (a relay showing two histories in turn)";
pub const MOVED_ON: &str = "the relay's log moved on while this device signed entries it lacked on top of it; the next sync judges it again";

/// The sealed setting that keeps, by account, where a later turn must part
/// at or above: one past where the last turn taken parted.
const TAKEN: &str = "account_turns_taken";

/// One entry of a turn: who signed it and what it does.
type Step = (DeviceId, AccountOp);

/// Judges the relay's whole log `theirs` of `account` (verified by the
/// caller) against the one `held`: a turn (they part after a shared
/// beginning) that can be joined, as the module says. Anything else keeps
/// the refusal the fetch met, as `not_a_turn`.
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
    // Both logs verified whole, so every entry opens and none is a genesis
    // (the refusal below is never met).
    let steps = |entries: &[Signed]| -> std::result::Result<Vec<Step>, RollbackError> {
        entries
            .iter()
            .map(|e| match e.open::<AccountEntry>(account::SIG_LABEL) {
                Ok(AccountEntry { op, .. }) if !matches!(op, AccountOp::Genesis { .. }) => {
                    Ok((e.signer, op))
                }
                _ => Err(refused(REVOKES)),
            })
            .collect()
    };
    let here = steps(&held[common..])?;
    let there = steps(&theirs[common..])?;
    let (rev_here, rev_there) = (revocations(&here), revocations(&there));
    // The relay's may have made again a beginning of the revocations held
    // here (a device joined it so far) and then revoke more.
    let matched = rev_there
        .iter()
        .zip(&rev_here)
        .take_while(|(a, b)| a == b)
        .count();
    let in_revs = |revs: &[(DeviceId, AccountKeyPub)], d: &DeviceId| revs.iter().any(|r| r.0 == *d);
    // A device only the relay's part revokes signed nothing held here: what
    // it paired here would come back with it revoked.
    if here
        .iter()
        .any(|(signer, _)| in_revs(&rev_there, signer) && !in_revs(&rev_here, signer))
    {
        return Err(refused(REVOKED_SIGNS));
    }
    // A device revoked here (a lost phone, active again on the restored
    // relay) may have signed there only devices it added (a watch it
    // paired), each revoked too, as is any device one of them added.
    let mut tainted: Vec<DeviceId> = rev_here.iter().map(|r| r.0).collect();
    let mut cut = Vec::new();
    for (signer, op) in &there {
        match op {
            AccountOp::AddDevice { device, .. } if tainted.contains(signer) => {
                tainted.push(device.id);
                cut.push(device.id);
            }
            op if op.revocation().is_some() && !tainted.contains(signer) => {
                if let Some((device, ..)) = op.revocation() {
                    cut.retain(|d| d != device)
                }
            }
            _ if tainted.contains(signer) => return Err(refused(REVOKED_SIGNS)),
            _ => {}
        }
    }
    // Each revocation held here beyond what the relay's made again is made
    // again to the key it made here, so what was sealed to it stays
    // readable, unless the relay's revoked more devices its own way first
    // (the desk, never told, revoked the phone again) or a device to be cut
    // is active when it would be: then the keys made here are left behind,
    // each revocation is made again to a new key, and every case is moved
    // to a key sealed to the log taken.
    let orphans = (matched < rev_there.len() && matched < rev_here.len()) || !cut.is_empty();
    let revoked_here: Vec<DeviceId> = rev_here.iter().map(|r| r.0).collect();
    let added_there: Vec<DeviceId> = there.iter().filter_map(|(_, op)| added(op)).collect();
    let mut added_here = Vec::new();
    let mut lost = Vec::new();
    for (i, (_, op)) in here.iter().enumerate() {
        if let AccountOp::AddDevice { device, .. } = op {
            let gone = revoked_here.contains(&device.id);
            if !gone {
                added_here.push(device.id);
            }
            if added_there.contains(&device.id) {
                continue;
            }
            // Added and revoked here (recovery words replaced twice): with
            // the keys made here left behind, listed only as revoked, so a
            // device holding the log up to its addition alone does not
            // sign it in again.
            lost.push(match gone && orphans {
                true => Lost::Revoked(device.clone()),
                false => Lost::Device(device.clone()),
            });
        } else if let Some((device, key, .., since)) = op.revocation() {
            let made_again = match orphans {
                true => {
                    in_revs(&rev_there, device)
                        || cut.contains(device)
                        || (!added_there.contains(device) && !in_common(device, &here))
                }
                false => rev_there.contains(&(*device, *key)),
            };
            if !made_again {
                lost.push(Lost::Revocation {
                    device: *device,
                    key: *key,
                    since: since.unwrap_or(common as u64 + i as u64),
                })
            }
        }
    }
    Ok(Turn {
        common: common as u64,
        added_here,
        lost,
        cut,
        orphans,
    })
}

/// Whether `device` was a device before the turn: not added in `steps`.
fn in_common(device: &DeviceId, steps: &[Step]) -> bool {
    !steps
        .iter()
        .any(|(_, op)| added(op).is_some_and(|d| d == *device))
}

impl Turn {
    /// What this device signed on top of the relay's log, in words.
    fn done_again(&self) -> String {
        let devices = self
            .lost
            .iter()
            .filter(|l| matches!(l, Lost::Device(_)))
            .count();
        let revocations = self.lost.len() - devices;
        let mut done = Vec::new();
        if devices > 0 {
            done.push(format!("{devices} device(s) it lacked signed in again"));
        }
        if revocations > 0 {
            done.push(format!("{revocations} revocation(s) it lacked made again"));
        }
        if !self.cut.is_empty() {
            done.push(format!(
                "{} device(s) a revoked device added there revoked",
                self.cut.len()
            ));
        }
        format!(", and on top of it {}", done.join(", "))
    }
}

/// The revocations among `steps`: which device, to which account key.
fn revocations(steps: &[Step]) -> Vec<(DeviceId, AccountKeyPub)> {
    steps
        .iter()
        .filter_map(|(_, op)| op.revocation().map(|(device, key, ..)| (*device, *key)))
        .collect()
}

/// The device `op` adds, if it adds one.
fn added(op: &AccountOp) -> Option<DeviceId> {
    match op {
        AccountOp::AddDevice { device, .. } => Some(device.id),
        _ => None,
    }
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
        if !turn.lost.is_empty() || !turn.cut.is_empty() {
            if !mine || !state.is_active(&self.device_id()) {
                return Err(refused(LACKS_DEVICES).into());
            }
            signed = self.join_turn(&mut state, &log, &turn)?;
            log.extend(signed.iter().cloned());
        }
        // Listed is enough: one revoked there was revoked by a device that
        // held more of the turn than this one does.
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
        let again = match signed.is_empty() {
            true => String::new(),
            false => turn.done_again(),
        };
        // One transaction: a log half replaced would not verify. (Should it
        // fail after `extend_account_log` set the keys in memory, those are
        // the held ones and maybe newer ones the relay's log has: the next
        // round judges the relay's log again and takes it, keys and all.)
        self.atomically(|home| {
            if mine {
                home.extend_account_log(first, &log[first as usize..])?;
            } else {
                let encoded: Vec<Vec<u8>> =
                    log[first as usize..].iter().map(codec::encode).collect();
                home.store.append_log(&account.0, first, &encoded)?;
            }
            home.store.put_secret(TAKEN, &codec::encode(&taken))?;
            // What this device sealed to an account key of the history left
            // behind, the devices of the relay's cannot open: every case of
            // this account's (or, of another account, shared with it) moves
            // to a key sealed to the log taken.
            let moved = match turn.orphans {
                true => home.move_cases_after_turn((!mine).then_some(account))?,
                false => String::new(),
            };
            home.trail().record(
                &format!(
                    "the relay's copy of {whose} took another turn after entry {first} than the one held here (restored from an older copy, and written to since); it was taken{again}{moved}"
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
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
