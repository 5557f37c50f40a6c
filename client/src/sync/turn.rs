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
//! The relay's log can be taken with no device let back in, and none lost
//! but those a device the one held here revokes paired or revoked there,
//! and those paired here by one the relay's revokes (below); they pair
//! again.
//! An owner's device that holds the other turn and is itself in the
//! relay's log makes again on top of it what the relay's lacks
//! ([`super::turn_judge::Lost`]), and then takes it; a device added in the
//! lost turn, and another account's device, take the relay's log once it
//! has all of that.
//!
//! - A device the turn held here added is signed in again, to the
//!   relay's newest account key (a revocation in the relay's turn is taken:
//!   the desk, never told, revoking a lost phone there).
//! - A revocation held here is made again. The phone the laptop revoked
//!   after the copy is a device again on the restored relay until then,
//!   and what it signed there would verify; so a device it paired there
//!   (and what that one paired) is cut first, and the laptop ends again
//!   each share it granted there ([`super::revoked_again`]). Where the
//!   relay's turn revoked nothing else and nothing is cut, each revocation
//!   takes the key it made here, so what was sealed to that key stays
//!   readable; otherwise each takes a new key, and every case moves to a
//!   new epoch sealed to the newest (it does anyway: a revocation made
//!   again stands later in the log than where it did here, and an entry
//!   the phone signed at a log between the two would verify unless an
//!   owner's entry at the new length comes first). A revocation dated back
//!   instead would turn access logs the relay and other devices hold and
//!   verified into ones that no longer verify.
//!
//! A device signed in again stands later in the log than it did: what it
//! signed at a length of the log where, in the relay's history, it was
//! not yet a device would no longer verify. So every access entry held
//! here (queued ones too) and every disposal kept here that would not is
//! vouched for on top of the log ([`AccountOp::Vouch`]), by each device
//! of the account that takes the log and holds it: the one that signs it
//! in again, and the device itself, which alone may hold what it signed
//! (a case it opened the laptop never fetched). Another account's device
//! holding such an entry (a colleague the tablet shared a case with)
//! waits, refused, until one of them has.
//!
//! A device the phone revoked there (the desk) stays revoked: a revocation
//! is not undone, and the desk pairs again (the trail names it). The
//! phone's revocation made again after it makes the newest key, one the
//! phone never held (checked: `Turn::tainted_key`).
//!
//! A device the turn held here added by a device the relay's revokes (the
//! phone, paired a tablet, and the desk, never told, revoked it as lost
//! on the restored relay) is left out of the log taken
//! ([`super::turn_judge::Turn::dropped`]): it may be the thief's, and a
//! device that is not pairs again. It held the account's keys, so every
//! case moves to a new key, and it is told it is no device any more.
//!
//! What stays refused, named ([`RollbackError::AccountLogTurned`]): a
//! relay's turn in which a device the one held here revokes did anything
//! but pair devices and revoke others, or revoked itself, another device
//! revoked here, one that signed anything here (the laptop that revoked it
//! could not make that again) or the paper device; one whose keys do not open to this
//! device as the log names them; a turn held here with an entry other
//! than a pairing signed by a device the relay's revokes and the one held
//! here does not (or by one it paired); one under which an access entry
//! would no longer verify that cannot be signed again
//! ([`super::resign`]: what no vouch helps, where it is no device there,
//! or as one claiming a length at which the log taken lists its signer,
//! is signed again by an owner's device, and a disposal kept here is given
//! back no more); a turn below one taken before (a relay showing a
//! device two histories in turn would have it sign entries again each
//! round), or whose relay's part a device revoked again in an earlier
//! turn signed (it would be revoked later and later, and what it signed
//! in between verify).
//!
//! [`AccountOp::Vouch`]: casebook_shared::account::AccountOp::Vouch

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry};
use casebook_shared::account::{self, AccountState};
use casebook_shared::codec;
use casebook_shared::crypto::DhSecret;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, Hash};
use casebook_shared::signed::Signed;

use super::turn_judge::{LACKS_DEVICES, Lost, REVOKED_SIGNS, judge_turn};
use super::{RollbackError, unexpected};
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};

/// Why a turn is not taken, besides [`turn_judge`]'s (the rest of the
/// refusal's text is [`RollbackError::AccountLogTurned`]'s).
pub(crate) const ENTRIES_DEPEND: &str = "an access entry held here would no longer verify under it (signed by a device the relay's revokes, after that), and cannot be signed again (the relay's access log of that case begins otherwise, or a member's log it would seal to is not served)";
pub const ENTRIES_WAIT: &str = "an access entry or a disposal held here, signed by a device signed in again there, would not verify under it until a device of that account that holds it vouches for it when it syncs";
pub(crate) const REVOKED_AGAIN_SIGNS: &str = "the relay's holds an entry signed by a device this device revoked again in an earlier turn (a relay showing it history after history)";
pub(crate) const BELOW_TAKEN: &str = "it parts no later than another turn of it this device took did (a relay showing two histories in turn)";
pub(crate) const KEYS_DO_NOT_OPEN: &str = "an account key of the relay's is not wrapped to this device so that it opens and matches the key the log names";
pub const MOVED_ON: &str = "the relay's log moved on while this device signed entries it lacked on top of it; the next sync judges it again";

/// The sealed setting that keeps, by account, where a later turn must part
/// at or above: one past where the last turn taken parted.
const TAKEN: &str = "account_turns_taken";

impl Home {
    /// The relay's log of `account` differs from the one `held` here (the
    /// fetch met `refusal`): takes it if it took another turn this device
    /// may take, as the module says, making again on top of it what it
    /// lacks where this device can. Returns the new log's state, or the
    /// refusal.
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
        let held_state = AccountState::verify_log(&held)?;
        // A device revoked again once that signed the relay's part: a
        // relay showing it another history, each with what that device
        // signed since, would have this device revoke it again later and
        // later, and what it signed in between verify.
        let again = self.revoked_in_a_turn()?;
        let signed_again = |e: &Signed| {
            again
                .get(account)
                .is_some_and(|of| of.contains_key(&e.signer))
        };
        if theirs[turn.common as usize..].iter().any(signed_again) {
            return Err(RollbackError::AccountLogTurned {
                account: *account,
                after: turn.common,
                why: REVOKED_AGAIN_SIGNS,
            }
            .into());
        }
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
        // Left out of the log it would take (a relay that lets it sign in
        // nonetheless): no device of it any more.
        if mine && turn.dropped.contains(&self.device_id()) {
            return Err(crate::error::Error::Revoked);
        }
        let mut log = theirs;
        let mut signed = Vec::new();
        let remade = turn.lost.iter().filter(|l| l.revokes().is_some()).count();
        // The relay's account keys, which a revocation in its turn may have
        // made: wrapped to this device there so that they open, or the log
        // is refused, named (a revoked phone's revocation there, its wraps
        // made up), whether or not this device makes anything again.
        let me = self.device_id();
        let held_keys = match mine && state.is_active(&me) {
            true => Some(
                account::account_keys(&log, account, &me, &self.id.dh)
                    .map_err(|_| refused(KEYS_DO_NOT_OPEN))?,
            ),
            false => None,
        };
        let mut vouched = 0;
        if !turn.lost.is_empty() {
            let Some(mut keys) = held_keys else {
                return Err(refused(LACKS_DEVICES).into());
            };
            // Devices signed in again first, then what they signed before
            // vouched for while they are active, then the revocations (a
            // device added and revoked here, whose keys the relay's turn
            // did not move on, is signed in and revoked again so).
            for lost in &turn.lost {
                let Lost::Device(info) = lost else { continue };
                let current = keys
                    .get(state.key.generation as usize)
                    .ok_or(crate::error::Error::Revoked)?;
                let entry = account::add_device(
                    &state,
                    &self.id.signer,
                    current,
                    info.clone(),
                    self.now(),
                )?;
                state.apply(&entry)?;
                signed.push(entry);
            }
            vouched =
                match self.vouch_unverified(account, &held_state, &mut state, mine, &mut signed)? {
                    Ok(n) => n,
                    Err(why) => return Err(refused(why).into()),
                };
            let mut same_keys = turn.same_keys;
            for lost in &turn.lost {
                let current = keys
                    .get(state.key.generation as usize)
                    .ok_or(crate::error::Error::Revoked)?;
                let (device, made_here) = match lost {
                    Lost::Device(_) => continue,
                    Lost::Cut(device) => (*device, None),
                    Lost::Revocation { device, key } => (*device, Some(key)),
                };
                if !state.is_active(&device) {
                    return Err(refused(LACKS_DEVICES).into());
                }
                // The key this revocation made here, at the same generation,
                // so what was sealed to it stays readable; where the
                // generations part, or this device lacks it, a new one.
                let held_key = made_here
                    .filter(|_| same_keys)
                    .filter(|key| key.generation == state.key.generation + 1)
                    .and_then(|key| {
                        (self.account_keys.get(key.generation as usize))
                            .filter(|k| k.public() == key.public)
                    })
                    .map(|k| DhSecret::from_bytes(*k.expose()));
                same_keys &= held_key.is_some();
                // A cut goes first, while the device that paired it is
                // still listed, so that one is wrapped the cut's key (the
                // log wants every device left wrapped each new key). Nothing
                // is ever sealed to it: the revocations go in one append,
                // and only the last key is any device's current one.
                let new_key = held_key.unwrap_or_else(DhSecret::generate);
                let entry = account::revoke_device_to(
                    &state,
                    &self.id.signer,
                    current,
                    device,
                    &new_key,
                    self.now(),
                )?;
                keys.push(new_key);
                state.apply(&entry)?;
                signed.push(entry);
            }
        }
        // A revocation the revoked device made there made a key it knows.
        if turn.tainted_key.is_some_and(|g| state.key.generation <= g) {
            return Err(refused(REVOKED_SIGNS).into());
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
        // What a device signed in again signed before, claiming a length
        // of the log where it is not yet a device there: vouched for (above,
        // where this device signs entries again; here where it does not,
        // the tablet taking the log the laptop signed it in again to).
        if turn.lost.is_empty() {
            vouched =
                match self.vouch_unverified(account, &held_state, &mut state, mine, &mut signed)? {
                    Ok(n) => n,
                    Err(why) => return Err(refused(why).into()),
                };
        }
        // What held here still does not verify under the log taken is
        // signed again, or taken signed again ([`super::resign`]).
        let may_sign = mine && state.is_active(&me);
        let states = (&held_state, &state);
        let distrusted = &turn.distrusted;
        let plans = match (self.plan_resign(relay, account, states, may_sign, distrusted)).await? {
            Ok(plans) => plans,
            Err(why) => return Err(refused(why).into()),
        };
        log.extend(signed.iter().cloned());
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
        let me = self.device_id();
        let revoker = mine && turn.revokers.contains(&me);
        let mut made = Vec::new();
        let added = (turn.lost.iter())
            .filter(|l| matches!(l, Lost::Device(_)))
            .count();
        if added > 0 {
            made.push(format!("{added} device(s) signed in again"));
        }
        if remade > 0 {
            made.push(format!("{remade} device(s) revoked again"));
        }
        if vouched > 0 {
            made.push(format!(
                "a vouch for {vouched} entry(s) a device signed in again had signed before"
            ));
        }
        let resigned = super::resign::signed(&plans);
        if resigned > 0 {
            made.push(format!(
                "the access entries of {resigned} case(s) signed again that no longer verified"
            ));
        }
        let again = match made.is_empty() {
            true => String::new(),
            false => format!(", and on top of it {}", made.join(" and ")),
        };
        // A device left out held this account's keys until now (upkeep
        // would move each case on too: the relay's part revoked a device,
        // so the account key moved on; this does it at once, or upkeep
        // after the members' logs are fetched: see below). And keys the
        // turn held here made may be other than the relay's of the same
        // generation (a colleague's case sealed to one the lost phone
        // holds): every case this device owns that the account is part of
        // moves on, as upkeep, judging by generation, would not.
        let rotate = remade > 0 || revoker || turn.keys_parted || !turn.dropped.is_empty();
        let moved = match (rotate, mine) {
            (false, _) => "",
            (true, true) => "; every case of this account moves to a new key",
            (true, false) => {
                "; every case this device's account owns that it is part of moves to a new key"
            }
        };
        let named = |devices: &[DeviceId], what: &str| match devices.is_empty() || !mine {
            true => String::new(),
            false => format!(
                "; device(s) {} {what}: pair them again",
                (devices.iter())
                    .map(|d| d.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let stay = named(
            &turn.stay_revoked,
            "revoked there by a device revoked again stay revoked",
        ) + &named(
            &turn.dropped,
            "paired here by a device the relay's log revokes are left out",
        );
        // One transaction: a log half replaced would not verify. (Should it
        // fail after `extend_account_log` set the keys in memory, those are
        // the held ones and maybe newer ones a revocation in the relay's
        // turn made: the next round judges the relay's log again and takes
        // it, keys and all.)
        self.atomically(|home| {
            // The log taken may be shorter than the one held.
            home.store.truncate_log(&account.0, first)?;
            if mine {
                home.extend_account_log(first, &log[first as usize..])?;
            } else {
                let encoded: Vec<Vec<u8>> =
                    log[first as usize..].iter().map(codec::encode).collect();
                home.store.append_log(&account.0, first, &encoded)?;
            }
            home.store.put_secret(TAKEN, &codec::encode(&taken))?;
            home.resign(&plans, &state, &turn.distrusted)?;
            // What a device revoked again signed counts from where the
            // histories part (at that length itself, too: signed there or
            // before the revocation cannot be told apart: a share ended
            // by mistake its owner grants again, one left by mistake no
            // one takes back).
            if !turn.revoked_again.is_empty() {
                home.revoked_again(account, &turn.revoked_again, turn.common)?;
            }
            // Also where this device made a revocation held here and the
            // relay's log has it made again already: by this device, in a
            // round that ended before it kept the log.
            // One that cannot move on now (a member's log not held yet)
            // does in upkeep, after the members' logs are fetched.
            // A case signed again moves on with them; where the keys did
            // not part, in upkeep if the relay's part moved the account key
            // (see `resign`).
            if rotate {
                let mut due = Vec::new();
                for doc in home.owned_shared_with((!mine).then_some(account))? {
                    match home.rotate_doc(&doc) {
                        Ok(()) => {}
                        Err(e @ crate::error::Error::Store(_)) => return Err(e),
                        Err(_) => due.push(doc),
                    }
                }
                home.rotation_due(&due)?;
            }
            home.trail().record(
                &format!(
                    "the relay's copy of {whose} took another turn after entry {first} than the one held here (restored from an older copy, and written to since); the relay's was taken{again}{moved}{stay}"
                ),
                None,
            )?;
            // The relay lost the end of the log, and maybe more: see
            // `sync::heal::RECHECK`.
            home.relay_lost_data()
        })?;
        self.synced.logs_turned.push(*account);
        if mine {
            let left = turn.stay_revoked.iter().chain(&turn.dropped);
            self.synced.stay_revoked.extend(left.copied());
        }
        self.synced.verified_logs.remember(*account, &log, &state);
        Ok(state)
    }

    /// Vouches, on top of `state` (and `signed`), for every entry held here
    /// that no longer verifies under it, signed by a device of it that is
    /// active and not yet listed at the length the entry claims, and that
    /// verified under the log held (`held_state`): how many, or why not (another
    /// account's log, whose devices vouch).
    fn vouch_unverified(
        &self,
        account: &AccountId,
        held_state: &AccountState,
        state: &mut AccountState,
        mine: bool,
        signed: &mut Vec<Signed>,
    ) -> Result<std::result::Result<usize, &'static str>> {
        // One claiming a length the log does not reach yet is judged once
        // the revocations are made (the check after them).
        let mut unverified = self.held_entries_unverified_under(account, state)?;
        unverified.retain(|e| {
            e.open::<DocEntry>(access::SIG_LABEL)
                .is_ok_and(|entry| entry.account_len <= state.len)
        });
        if unverified.is_empty() {
            return Ok(Ok(0));
        }
        // Verified here, by a device active now, claiming a length at
        // which this log does not list it yet (see `vouched_for`).
        let vouchable = |e: &Signed| {
            let before_listed = (e.open::<DocEntry>(access::SIG_LABEL).ok())
                .zip(state.devices.get(&e.signer))
                .is_some_and(|(entry, d)| entry.account_len <= d.added_seq);
            before_listed && state.is_active(&e.signer) && verifies_under(e, account, held_state)
        };
        // The rest is signed again, or refused, once the log is whole
        // ([`super::resign`]).
        unverified.retain(vouchable);
        if unverified.is_empty() {
            return Ok(Ok(0));
        }
        // Another account's log: one of its devices that holds them
        // vouches when it syncs.
        if !mine || !state.is_active(&self.device_id()) {
            return Ok(Err(ENTRIES_WAIT));
        }
        let mut by_device: BTreeMap<DeviceId, Vec<Hash>> = BTreeMap::new();
        for e in &unverified {
            let of = by_device.entry(e.signer).or_default();
            of.push(e.hash(access::HASH_LABEL));
        }
        let mut vouched = 0;
        for (device, mut hashes) in by_device {
            hashes.sort();
            hashes.dedup();
            for named in hashes.chunks(account::MAX_VOUCHED) {
                let entry =
                    account::vouch(state, &self.id.signer, device, named.to_vec(), self.now());
                state.apply(&entry)?;
                signed.push(entry);
                vouched += named.len();
            }
        }
        Ok(Ok(vouched))
    }

    /// The access entries held here (queued ones too) and the disposals
    /// kept here that a device of `account` signed and that would no
    /// longer verify under its log as `state` leaves it.
    fn held_entries_unverified_under(
        &self,
        account: &AccountId,
        state: &AccountState,
    ) -> Result<Vec<Signed>> {
        let mut unverified = Vec::new();
        for doc in self.store.doc_ids()? {
            for signed in self.access().access_log(&doc)? {
                if !verifies_under(&signed, account, state) {
                    unverified.push(signed);
                }
            }
        }
        let kept = self.kept_disposals()?;
        (kept.into_values())
            .filter(|k| !verifies_under(&k.gone, account, state))
            .for_each(|k| unverified.push(k.gone));
        Ok(unverified)
    }
}

/// Whether an access entry, if `account` signed it, verifies under its log
/// as `state` leaves it: its signer active at the log length it was signed
/// at ([`AccountState::active_at`], as the access log's own check asks), or a
/// vouch in it naming it.
/// Another account's entry, or one that does not open, is not this check's
/// to judge.
pub(super) fn verifies_under(signed: &Signed, account: &AccountId, state: &AccountState) -> bool {
    let Ok(entry) = signed.open::<DocEntry>(access::SIG_LABEL) else {
        return true;
    };
    if entry.account != *account {
        return true;
    }
    state.active_at(&signed.signer, entry.account_len)
        || state.vouched_for(
            &signed.hash(access::HASH_LABEL),
            &signed.signer,
            entry.account_len,
        )
}
