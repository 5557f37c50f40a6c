//! An access log the relay shows with another turn than the one held
//! here, before the end of what the relay had from this device (see
//! [`super::check::Need::fork`]). A relay restored from an older copy lost
//! entries that were signed after the copy, and another device of the
//! owner's signed others in their place; or the relay shows another
//! history. Both histories are signed by the owner's devices, so which is
//! "right" cannot be told from the entries alone: what can be told is
//! whether taking the relay's loses anything this device knows was decided.
//!
//! - An owner's device takes the relay's log and signs again on top of it
//!   what its own lost entries did ([`Home::rebase_access`], as for entries
//!   another device's got ahead of before they were sent): a member it
//!   removed is removed again, one it added is added again.
//! - Another account's device cannot sign for the owner: it takes the
//!   relay's log only where no member its own history removed is a member
//!   there, and otherwise waits until an owner's device has removed them
//!   again on the relay.
//! - Either refuses a turn holding an entry signed by a device whose
//!   revocation the log held here had met (an entry of it was signed at a
//!   longer account log than the revocation): a revocation moves every
//!   owned document to a new epoch signed at the new length, so the only
//!   such entries are ones a stolen device signed after it was revoked,
//!   dated back, to start a history of its own. A device revoked later
//!   may have signed the relay's turn honestly: that stands. So does what
//!   a device revoked again signed there (see `revoked_again`: its
//!   revocation stands later in the log than it did here), but an owner's
//!   device ends each share it granted there first, and another account's
//!   waits until one has.
//! - Either refuses a turn holding an entry this device signed and then
//!   left behind: a relay cannot send a device back and forth between two
//!   histories, each time making it sign and send again.
//!
//! Whatever is taken, this device's changes go again: those sealed under a
//! lost epoch's key went with it.

use std::collections::BTreeMap;

use casebook_shared::access::{DocEntry, DocOp, DocState, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

use super::revoked_again::{RevokedAgain, Undo, WAITS, members_before, undo_of, undone_in};
use crate::error::Result;
use crate::home::Home;

impl Home {
    /// Takes `relay`, the relay's whole access log of `doc`, where it
    /// differs from the one held here as the module says. Returns how many
    /// changes went again, or why the relay's log is refused (nothing here
    /// changes then).
    pub(super) fn rebase_fork(
        &mut self,
        doc: &DocId,
        relay: &[Signed],
        accounts: &BTreeMap<AccountId, AccountState>,
        again: &RevokedAgain,
    ) -> Result<std::result::Result<usize, String>> {
        let held = self.access().access_log(doc)?;
        let turn = held.iter().zip(relay).take_while(|(a, b)| a == b).count();
        if turn == relay.len() && turn < held.len() {
            return Ok(Err(format!(
                "the relay's log ends at entry {turn}, before the one held here, and did not take back what it lacks; refusing it this round"
            )));
        }
        let refuse = |why: &str| {
            Ok(Err(format!(
                "the relay's log differs from the one held here from entry {turn} on: {why}; refusing it"
            )))
        };
        let Some(meta) = self.access().doc_meta(doc)? else {
            return refuse("no log is held here");
        };
        if turn == 0 {
            return refuse("another first entry");
        }
        // The highest account-log length an entry held here was signed
        // at: a device revoked at or before it cannot have signed after it.
        let floor = match DocState::verify_log(&held, |a| accounts.get(a)) {
            Ok(st) => st.account_len,
            Err(e) => return refuse(&format!("the log held here does not verify ({e})")),
        };
        let me = self.device_id();
        let owned = meta.owner == self.account_id();
        // A device the owner's account revoked, whose revocation a turn of
        // its log taken since made stand later (see `revoked_again`): what
        // it signed in the relay's turn here was signed on the restored
        // relay meanwhile. An owner's device ends each share it granted
        // there before signing its own lost entries again; another
        // account's waits until that is done.
        // What it signed past where the logs part counts whatever log
        // length it claims: this device held everything before.
        let of: Option<BTreeMap<DeviceId, u64>> =
            (again.get(&meta.owner)).map(|of| of.keys().map(|d| (*d, 0)).collect());
        let of = of.as_ref();
        let is_again = |e: &Signed| of.is_some_and(|of| of.contains_key(&e.signer));
        for e in &relay[turn..] {
            if e.signer == me {
                return refuse("it holds an entry this device signed and has since left behind");
            }
            let Ok(entry) = e.open::<DocEntry>(SIG_LABEL) else {
                return refuse("an entry does not open");
            };
            if entry.account == meta.owner && is_again(e) {
                continue;
            }
            // Revoked by an account entry the held log has met since (an
            // entry at `floor` or above was signed after the revocation).
            let revoked_before = accounts
                .get(&entry.account)
                .and_then(|a| a.devices.get(&e.signer))
                .and_then(|d| d.revoked_seq)
                .is_some_and(|r| r < floor);
            if entry.account_len < floor && revoked_before {
                return refuse(
                    "an entry is signed by a device revoked since, at an account log older than the log held here has met",
                );
            }
        }
        let part = &relay[turn..];
        // Judged on the relay's whole log, as every device holding it
        // judges it, however much of it each held.
        let before: Vec<AccountId> = match of {
            Some(of) => members_before(relay, of, accounts),
            None => Vec::new(),
        };
        let undo = match of {
            Some(of) if owned => undo_of(part, &meta.owner, of, &before),
            _ => Undo::default(),
        };
        if owned {
            let rebased = self.rebase_access(doc, turn as u64, &relay[turn..], accounts, &undo)?;
            if let Some(reason) = rebased {
                return Ok(Err(reason));
            }
            self.undo(doc, &undo, true)?;
        } else {
            let mut trial = held[..turn].to_vec();
            trial.extend_from_slice(&relay[turn..]);
            let there = match DocState::verify_log(&trial, |a| accounts.get(a)) {
                Ok(st) => st,
                Err(e) => return refuse(&format!("its entries do not verify ({e})")),
            };
            if let Some(of) = of
                && part.iter().any(is_again)
                && !accounts
                    .get(&meta.owner)
                    .is_some_and(|owner| undone_in(part, &there, of, &before, owner))
            {
                return refuse(WAITS);
            }
            if removed(&held[turn..]).any(|m| there.members.contains_key(&m)) {
                return refuse(
                    "a member removed in the log held here is a member there (an owner's device removes them again when it syncs)",
                );
            }
            self.store.truncate_log(&doc.0, turn as u64)?;
            self.access()
                .accept_access_entries(doc, &relay[turn..], accounts)?;
        }
        if turn == held.len() {
            // Nothing held here was lost: the relay's log went on after it.
            return Ok(Ok(0));
        }
        let what = match owned {
            true => {
                "took the relay's, and signed again on top of it what this device's lost entries did"
            }
            false => "took the relay's (it removes no one the log held here removed)",
        };
        self.trail().record(
            &format!(
                "the relay's access log differs from the one held here from entry {turn} on (restored from an older copy, and another device signed in the place of the lost entries): {what}"
            ),
            Some(*doc),
        )?;
        if self.is_audit_doc(doc) {
            // The trail and its claims, as after a rewind.
            self.store
                .put_secret(crate::audit_sync::SENT, &0u64.to_be_bytes())?;
            self.store.retell_every_claim()?;
            return Ok(Ok(0));
        }
        self.send_lost_again(doc, None).map(Ok)
    }
}

/// The members that `entries` remove.
fn removed(entries: &[Signed]) -> impl Iterator<Item = AccountId> + '_ {
    entries
        .iter()
        .filter_map(|e| match e.open::<DocEntry>(SIG_LABEL) {
            Ok(DocEntry {
                op: DocOp::RemoveMember { member },
                ..
            }) => Some(member),
            _ => None,
        })
}
