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
//! - in a case its own account owns, ends again, with a new key, each
//!   share such a device granted that the log held here lacks: at the
//!   turn, for a case whose access log took another turn too (the relay's
//!   lacks the rotation that followed the revocation; [`super::fork`],
//!   before this device's own lost entries are signed again, so nothing it
//!   wrote after the revocation is sealed to the stranger), and for entries
//!   it fetches later (a case the phone opened there): on the device that
//!   made the revocation, whatever log length they were signed at (it held
//!   everything its account's cases had when it revoked); on another, only
//!   those signed at a log longer than where the histories parted (one
//!   signed at a shorter log cannot be told from a share granted before
//!   the revocation, and stands);
//! - in another account's case, takes an access log holding what such a
//!   device did there only once an owner's device has undone it (each
//!   member it granted is one no longer, and the key moved on after it),
//!   so a colleague does not write under a key the stranger holds.

use std::collections::BTreeMap;

use casebook_shared::access::{DocEntry, DocOp, DocState, SIG_LABEL};
use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

use crate::error::Result;
use crate::home::Home;

/// The sealed setting that keeps them: by account, each device, and the
/// log length from which what it signed counts as signed on the restored
/// relay (where the histories parted; 0 on the device that made the
/// revocation).
const REVOKED_AGAIN: &str = "accounts_revoked_in_a_turn";

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

    /// Of `new` entries fetched for `doc`, a document this account owns:
    /// the members whose last grant among them a device revoked again
    /// signed (at or above the length it counts from), and who were not
    /// members already, to be ended again. `again` is
    /// [`Home::revoked_in_a_turn`], read once per batch.
    pub(super) fn shares_to_end(
        &self,
        doc: &DocId,
        new: &[Signed],
        again: &RevokedAgain,
    ) -> Result<Vec<AccountId>> {
        let Some(of) = again.get(&self.account_id()) else {
            return Ok(Vec::new());
        };
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(granted_by(new, &self.account_id(), of, None));
        };
        if meta.owner != self.account_id() || meta.disposed {
            return Ok(Vec::new());
        }
        let members: Vec<AccountId> = meta.members.iter().map(|(m, _, _)| *m).collect();
        Ok(granted_by(new, &meta.owner, of, Some(&members)))
    }

    /// Ends again the shares `ended` of `doc` (see [`Home::shares_to_end`])
    /// that are still held, after its entries were taken, with a new key;
    /// where `rebased` ([`Home::rebase_access`] removed them before
    /// signing this device's own entries again), only says so.
    pub(super) fn end_shares(
        &mut self,
        doc: &DocId,
        ended: &[AccountId],
        rebased: bool,
    ) -> Result<()> {
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(());
        };
        if meta.owner != self.account_id() || meta.disposed {
            return Ok(());
        }
        let is_member = |m: &AccountId| meta.members.iter().any(|(x, _, _)| x == m);
        if rebased {
            let gone: Vec<AccountId> = ended.iter().copied().filter(|m| !is_member(m)).collect();
            return match gone.is_empty() {
                true => Ok(()),
                false => self.record_ended(doc, &gone),
            };
        }
        let held: Vec<AccountId> = ended.iter().copied().filter(is_member).collect();
        if held.is_empty() {
            return Ok(());
        }
        for member in &held {
            let op = DocOp::RemoveMember { member: *member };
            self.access().append_access_entry(doc, op)?;
        }
        self.rotate_doc(doc)?;
        self.record_ended(doc, &held)
    }

    /// The trail line for shares ended again.
    pub(super) fn record_ended(&self, doc: &DocId, ended: &[AccountId]) -> Result<()> {
        self.trail().record(
            &format!(
                "share(s) to {} ended again: granted on the relay, after the copy it was restored from, by a device this account had revoked; keys rotated",
                self.names_of(ended).join(", ")
            ),
            Some(*doc),
        )
    }
}

/// Of `entries` of a document `owner` owns, the members whose last grant
/// among them a device in `of` signed at or above the length it counts
/// from, leaving out those in `already` (members before them).
pub(super) fn granted_by(
    entries: &[Signed],
    owner: &AccountId,
    of: &BTreeMap<DeviceId, u64>,
    already: Option<&[AccountId]>,
) -> Vec<AccountId> {
    let mut last: BTreeMap<AccountId, bool> = BTreeMap::new();
    for e in entries {
        let Ok(entry) = e.open::<DocEntry>(SIG_LABEL) else {
            continue;
        };
        if let DocOp::AddMember { member, .. } = entry.op {
            let by_revoked = entry.account == *owner
                && of.get(&e.signer).is_some_and(|s| entry.account_len >= *s);
            last.insert(member, by_revoked);
        }
    }
    (last.into_iter())
        .filter(|(m, by_revoked)| *by_revoked && !already.is_some_and(|a| a.contains(m)))
        .map(|(m, _)| m)
        .collect()
}

/// Whether what a device revoked again did in `part`, the entries the
/// relay's access log of a case another account owns has past where it
/// parts from the one held here (`trial` is the whole log with them,
/// verified), is undone there: each member it granted is no longer one,
/// and a rotation by another device of the owner's came after its last
/// entry. Until then a colleague's device waits.
pub(super) fn undone_in(part: &[Signed], trial: &DocState, of: &BTreeMap<DeviceId, u64>) -> bool {
    let mut by_revoked = false;
    for e in part {
        let Ok(entry) = e.open::<DocEntry>(SIG_LABEL) else {
            continue;
        };
        let revoked = entry.account == trial.owner && of.contains_key(&e.signer);
        match entry.op {
            _ if revoked => by_revoked = true,
            DocOp::Rotate { .. } if entry.account == trial.owner => by_revoked = false,
            _ => {}
        }
    }
    let every: BTreeMap<DeviceId, u64> = of.keys().map(|d| (*d, 0)).collect();
    let granted = granted_by(part, &trial.owner, &every, None);
    !by_revoked && granted.iter().all(|m| !trial.members.contains_key(m))
}

#[cfg(test)]
#[path = "revoked_again_tests.rs"]
mod tests;
