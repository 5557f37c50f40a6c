//! Devices whose revocation a restored relay lost, made again later in the
//! account log (see [`super::turn`]).
//!
//! The laptop revokes a lost phone; the relay is restored from a copy older
//! than that, and the desk pairs a watch there before the laptop syncs. The
//! laptop makes the revocation again on top of the watch, so in the log
//! every device now holds the phone stands active for longer than it did
//! here: what it signed on the restored relay meanwhile verifies. A share
//! it granted there (a stranger let into a case) would stand, and the next
//! rotation would seal the case to that stranger. So every device that
//! takes such a turn keeps, by account, the devices revoked again and
//! where the two histories parted, and:
//!
//! - in a case its own account owns, undoes what such a device did there
//!   that the log held here lacks: ends each share it granted and moves
//!   the key on (also where it opened the case or rotated it: it knows
//!   that key). At the turn, for a case whose access log took another turn
//!   too (the relay's lacks the rotation that followed the revocation),
//!   whatever log length it claimed, before this device's own lost entries
//!   are signed again ([`super::fork`]), so nothing it wrote after the
//!   revocation is sealed to the stranger; in entries it fetches later (a
//!   case the phone opened there), those signed at the log length where
//!   the histories parted or later. One signed at a shorter length, in a
//!   case this device never held, cannot be told from one made before the
//!   revocation, and stands;
//! - in another account's case, takes an access log holding what such a
//!   device did there only once an owner's device has undone it (each
//!   member it granted is one no longer, and the key moved on after it),
//!   so a colleague does not write under a key the stranger holds.
//!
//! A member whose terms such a device changed, who held the case before,
//! keeps it on the changed terms.

use std::collections::BTreeMap;

use casebook_shared::access::{DocEntry, DocOp, DocState, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

use crate::error::Result;
use crate::home::Home;

/// The sealed setting that keeps them: by account, each device, and the
/// log length from which what it signed counts as signed on the restored
/// relay (where the histories parted).
const REVOKED_AGAIN: &str = "accounts_revoked_in_a_turn";

/// Why a colleague's device does not take an access log yet.
pub(super) const WAITS: &str = "a device its owner revoked signed an entry there on the relay after the copy it was restored from (the revocation made again since), which an owner's device undoes when it syncs";

/// By account, the devices revoked again and from which log length what
/// they signed counts (see [`REVOKED_AGAIN`]).
pub(super) type RevokedAgain = BTreeMap<AccountId, BTreeMap<DeviceId, u64>>;

impl Home {
    /// Keeps `devices` of `account`, revoked in a turn of its log held here
    /// and taken on top of the relay's, counting what they signed from
    /// log length `since`.
    pub(super) fn revoked_again(
        &self,
        account: &AccountId,
        devices: &[DeviceId],
        since: u64,
    ) -> Result<()> {
        let mut again = self.revoked_in_a_turn()?;
        let of = again.entry(*account).or_default();
        for d in devices {
            let at = of.entry(*d).or_insert(since);
            *at = (*at).min(since);
        }
        Ok(self
            .store
            .put_secret(REVOKED_AGAIN, &codec::encode(&again))?)
    }

    /// Every device revoked again in a turn this device took.
    pub(super) fn revoked_in_a_turn(&self) -> Result<RevokedAgain> {
        Ok(match self.store.get_secret(REVOKED_AGAIN)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeMap::new(),
        })
    }

    /// What to undo of `new` entries fetched for `doc`, a document this
    /// account owns (see [`undo_of`]), against its members before them.
    /// `again` is [`Home::revoked_in_a_turn`], read once per batch.
    pub(super) fn undo_fetched(
        &self,
        doc: &DocId,
        new: &[Signed],
        again: &RevokedAgain,
        accounts: &BTreeMap<AccountId, AccountState>,
    ) -> Result<Undo> {
        let mine = self.account_id();
        let Some(of) = again.get(&mine) else {
            return Ok(Undo::default());
        };
        if !new.iter().any(|e| of.contains_key(&e.signer)) {
            return Ok(Undo::default());
        }
        if let Some(meta) = self.access().doc_meta(doc)?
            && (meta.owner != mine || meta.disposed)
        {
            return Ok(Undo::default());
        }
        let mut log = self.access().access_log(doc)?;
        log.extend_from_slice(new);
        let already = members_before(&log, of, accounts);
        Ok(undo_of(new, &mine, of, &already))
    }

    /// For `doc`, a document another account owns: why `new` entries
    /// fetched for it are not taken yet, if they hold what a device that
    /// account revoked again did there, not undone (see [`undone_in`]).
    pub(super) fn waits_for_owner(
        &self,
        doc: &DocId,
        new: &[Signed],
        again: &RevokedAgain,
        accounts: &BTreeMap<AccountId, AccountState>,
    ) -> Result<Option<String>> {
        // Most batches hold nothing such a device signed: told by the
        // signer alone, before anything is verified.
        if !new
            .iter()
            .any(|e| again.values().any(|of| of.contains_key(&e.signer)))
        {
            return Ok(None);
        }
        let held = self.access().access_log(doc)?;
        let lookup = |a: &AccountId| accounts.get(a);
        let mut trial = held.clone();
        trial.extend_from_slice(new);
        // One that does not verify is refused when taken, for that.
        let Ok(there) = DocState::verify_log(&trial, lookup) else {
            return Ok(None);
        };
        let Some(of) = again.get(&there.owner) else {
            return Ok(None);
        };
        if there.owner == self.account_id() {
            return Ok(None);
        }
        let already = members_before(&trial, of, accounts);
        let Some(owner) = accounts.get(&there.owner) else {
            return Ok(None);
        };
        Ok((!undone_in(new, &there, of, &already, owner)).then(|| WAITS.to_string()))
    }

    /// Undoes `undo` in `doc` once its entries were taken: ends each share
    /// still held and moves the key on. Where `rebased`
    /// ([`Home::rebase_access`] did it before signing this device's own
    /// entries again), only says so.
    pub(super) fn undo(&mut self, doc: &DocId, undo: &Undo, rebased: bool) -> Result<()> {
        if !undo.needed() {
            return Ok(());
        }
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(());
        };
        if meta.owner != self.account_id() || meta.disposed {
            return Ok(());
        }
        let is_member = |m: &AccountId| meta.members.iter().any(|(x, _, _)| x == m);
        let ended: Vec<AccountId> = match rebased {
            true => undo
                .members
                .iter()
                .copied()
                .filter(|m| !is_member(m))
                .collect(),
            false => undo.members.iter().copied().filter(is_member).collect(),
        };
        if !rebased {
            for member in &ended {
                let op = DocOp::RemoveMember { member: *member };
                self.access().append_access_entry(doc, op)?;
            }
            self.rotate_doc(doc)?;
        }
        let what = match ended.is_empty() {
            true => "keys rotated: a device this account had revoked changed this case's access on the relay, after the copy it was restored from".to_string(),
            false => format!(
                "share(s) to {} ended again: granted on the relay, after the copy it was restored from, by a device this account had revoked; keys rotated",
                self.names_of(&ended).join(", ")
            ),
        };
        self.trail().record(&what, Some(*doc))
    }
}

/// What an owner's device undoes of what a device revoked again did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Undo {
    /// Members whose last grant such a device signed, to be removed.
    pub members: Vec<AccountId>,
    /// Such a device signed an entry (opened the case, rotated it, shared
    /// it or ended a share): the key moves on after it.
    pub rotate: bool,
    /// Devices whose grants among the entries replayed are not made again
    /// (a turned account log's: see `resign`).
    pub passed_over: Vec<DeviceId>,
}

impl Undo {
    pub fn needed(&self) -> bool {
        self.rotate || !self.members.is_empty()
    }
}

/// What to undo of `entries` of a document `owner` owns: the members whose
/// last grant among them a device in `of` signed at or above the length
/// it counts from, leaving out `already` (members before them: a
/// colleague whose terms it changed keeps the share), and whether such a
/// device signed any of them (opened the case, rotated it, shared it or
/// ended a share: the key moves on after it either way).
pub(super) fn undo_of(
    entries: &[Signed],
    owner: &AccountId,
    of: &BTreeMap<DeviceId, u64>,
    already: &[AccountId],
) -> Undo {
    let mut last: BTreeMap<AccountId, bool> = BTreeMap::new();
    let mut rotate = false;
    for e in entries {
        let Ok(entry) = e.open::<DocEntry>(SIG_LABEL) else {
            continue;
        };
        let by_revoked = counted(e, owner, of);
        // Whatever it signed, the key moves on after it: a colleague waits
        // for that ([`undone_in`]).
        rotate |= by_revoked;
        if let DocOp::AddMember { member, .. } = entry.op {
            last.insert(member, by_revoked);
        }
    }
    let members = (last.into_iter())
        .filter(|(m, by_revoked)| *by_revoked && !already.contains(m))
        .map(|(m, _)| m)
        .collect();
    Undo {
        members,
        rotate,
        passed_over: Vec::new(),
    }
}

/// Whether what a device revoked again did in `part`, entries of a case
/// another account owns that this device did not hold (`trial` is the
/// whole log with them, verified; `already` as [`members_before`] finds
/// them; `owner` the owner's account log as this device holds it), is
/// undone there: each member it granted is one no longer, and the newest
/// key is sealed to an account key of the owner's made at or after the
/// revocation of each such device, so none of them holds it. Until then
/// a colleague's device waits, so it writes under no key such a device
/// made or handed out, nor one sealed to an account key it held.
pub(super) fn undone_in(
    part: &[Signed],
    trial: &DocState,
    of: &BTreeMap<DeviceId, u64>,
    already: &[AccountId],
    owner: &AccountState,
) -> bool {
    if !part.iter().any(|e| counted(e, &trial.owner, of)) {
        return true;
    }
    let revoked_at = of
        .keys()
        .map(|d| owner.devices.get(d).and_then(|d| d.revoked_generation))
        .collect::<Option<Vec<u32>>>();
    let sealed_to = trial.wraps.get(&(trial.epoch, trial.owner));
    let fresh = match (revoked_at, sealed_to) {
        (Some(at), Some(g)) => at.iter().all(|r| g >= r),
        _ => false,
    };
    let undo = undo_of(part, &trial.owner, of, already);
    fresh && undo.members.iter().all(|m| !trial.members.contains_key(m))
}

/// Whether a device in `of` signed `e`, an entry of a document `owner`
/// owns, at or above the log length it counts from.
fn counted(e: &Signed, owner: &AccountId, of: &BTreeMap<DeviceId, u64>) -> bool {
    e.open::<DocEntry>(SIG_LABEL).is_ok_and(|entry| {
        entry.account == *owner && of.get(&e.signer).is_some_and(|s| entry.account_len >= *s)
    })
}

/// The members of `log`, a whole access log that verifies, just before
/// its first entry a device in `of` signed (counted as [`undo_of`] counts):
/// those its owner's devices granted, which such a device's entries leave
/// standing. Every device judging the same log finds the same ones,
/// however much of it it held before.
pub(super) fn members_before(
    log: &[Signed],
    of: &BTreeMap<DeviceId, u64>,
    accounts: &BTreeMap<AccountId, AccountState>,
) -> Vec<AccountId> {
    let owner = match log.first().map(|g| g.open::<DocEntry>(SIG_LABEL)) {
        Some(Ok(genesis)) => genesis.account,
        _ => return Vec::new(),
    };
    let Some(first) = (log.iter())
        .position(|e| counted(e, &owner, of))
        .filter(|f| *f > 0)
    else {
        return Vec::new();
    };
    DocState::verify_log(&log[..first], |a| accounts.get(a))
        .map(|st| st.members.keys().copied().collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "revoked_again_tests.rs"]
mod tests;
