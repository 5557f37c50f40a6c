//! Access entries a turned account log leaves unverified, signed again.
//!
//! Taking an account log at a turn ([`super::turn`]) can leave an access
//! entry held here that verified under the log held, and no longer does
//! under the one taken, where no vouch can help: its signer is a device the
//! relay's history revokes before the length the entry claims (the phone,
//! which opened a case after the copy, revoked as lost by the desk on the
//! restored relay), one it does not list (a tablet left out), or one it
//! lists already at that length (a held history longer than the one taken).
//! Refusing the log locked the owner's devices out of their own account.
//!
//! What such an entry did was decided, and this device took it: so a device
//! of the owner's account signs it again, on top of the log taken, from the
//! first entry of a document's access log that does not verify on:
//!
//! - Where the relay lacks them (it lost them with the copy; it never
//!   holds one, as it takes an entry only under a log it holds, which the
//!   one taken extends), each is signed again as it was (the same
//!   operation, key envelopes and time), only chained anew and dated at
//!   the log's length now. This device keeps the document's keys: a key
//!   envelope sealed to a key of the other history opens to no device
//!   here. The document moves on to a new epoch with every other, sealed
//!   to its members' current keys, whose chain of previous keys reaches
//!   every epoch the entries made: at once where the keys parted (the turn
//!   moves every case on then), in upkeep where the relay's history revoked
//!   a device.
//! - Where the relay's log goes another way from before that entry (the
//!   desk moved the case on when it revoked the phone), the relay's is
//!   taken and what the entries held here did is done again on top of it
//!   ([`Home::rebase_access`], as for entries another device's got ahead
//!   of).
//!
//! Either way the changes written under them go back to the relay, which
//! lost them, the revoked device's too (forwarded on its behalf). A share
//! a device the relay's history revokes (or one left out) granted is
//! ended, as `revoked_again` ends one a device revoked here granted there:
//! it may be a thief's, and a share ended by mistake its owner grants
//! again; the trail names it. Where the relay's log went another way it is
//! not granted again at all, nor is a member added and removed again among
//! the entries: an addition seals the relay's newest key to them, and
//! through each rotation's seal of the key before it every older one, so a
//! grant cannot stand on record without its keys.
//!
//! Another device of the account, when one already signed them again (the
//! relay's log holds them from that entry on, twins of those held here),
//! takes those; where the relay's holds twins of only the first of them
//! (this device made more, which the relay lost), it takes the twins and
//! does again on top what the rest did, as where the relay's log went
//! another way. Two devices signing them again at once meet the same way
//! when the second fetches the log (see `rebase_access`). A twin counts
//! only signed by a device the log taken has not revoked, or revoked since
//! where a device active past that built on it ([`stands_in`]). Another
//! account's device (a colleague) may not sign for the owner: it drops
//! the entries from there on (the whole log, where the first does not
//! verify), keeping its keys and what arrived, and takes
//! whatever an owner's device signs again when it fetches the log. What
//! it drops is what the owner's account no longer signs for, but for a
//! removal or a new epoch a device of the log taken made after it: those
//! it drops only where the relay's log of the case is as strict (no
//! member removed holds its newest epoch, and a new epoch in it was made
//! after the owner's last revocation), taking that log at once; otherwise
//! it waits, refused and named (as `fork` does), as it would let a removed
//! member back in, or seal what it writes to a key a revoked device holds. A
//! disposal kept here that would not verify is given back no more (a
//! disposal is a person's act: see `disposals`). A relay's access log with
//! another first entry (not the same signed again, as `stands_in` has it)
//! leaves the turn refused, named.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, DocState, HASH_LABEL, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;

use super::turn::{ENTRIES_DEPEND, verifies_under};
use super::{Undo, unexpected};
use crate::error::{Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::rebase::{made_again, stands_in};
use crate::store::OutKind;

/// Why another account's device waits.
pub const RESIGN_WAIT: &str = "an access entry held here, signed by a device the relay's revokes or does not list, would not verify under it, and a removal or a new key a device of that account made after it is not in the relay's access log of that case: it waits until a device of that account signs them again when it syncs (or, where that ended this account's share, shares the case again)";

/// What becomes of one document's access log held here, from the first
/// entry that does not verify (`from`).
pub(super) enum Resign {
    /// The relay lacks them: this device signs them again.
    Sign { doc: DocId, from: usize },
    /// The relay holds them signed again by another device: taken.
    Take {
        doc: DocId,
        from: usize,
        theirs: Vec<Signed>,
    },
    /// The relay's log goes another way from entry `at`: taken, and what
    /// the entries held here from there did done again on top.
    Rebase {
        doc: DocId,
        at: usize,
        theirs: Vec<Signed>,
    },
    /// Another account's device drops them, taking the relay's from
    /// there where it served a log (checked as strict as what it drops):
    /// taken at once, so a shorter answer to the round's fetch cannot
    /// leave it at the epoch it cut to.
    Drop {
        doc: DocId,
        from: usize,
        theirs: Vec<Signed>,
    },
}

impl Resign {
    /// Whether this device signs entries again.
    fn signs(&self) -> bool {
        matches!(self, Resign::Sign { .. } | Resign::Rebase { .. })
    }
}

/// How many documents of `plans` this device signs entries of again.
pub(super) fn signed(plans: &[Resign]) -> usize {
    plans.iter().filter(|p| p.signs()).count()
}

impl Home {
    /// For each document whose access log held here holds an entry of
    /// `account` that does not verify under its log as `state` leaves it
    /// (it did under `held`): what becomes of it, as the module says (this
    /// device signs again only where `may_sign`; a grant one of
    /// `distrusted` made it does not make again), or why the log is
    /// refused.
    pub(super) async fn plan_resign(
        &mut self,
        relay: &Relay,
        account: &AccountId,
        (held_state, state): (&AccountState, &AccountState),
        may_sign: bool,
        distrusted: &[DeviceId],
    ) -> Result<std::result::Result<Vec<Resign>, &'static str>> {
        // A disposal kept here that no longer verifies is not this
        // module's: given back, it no longer counts, and `disposals`
        // forgets it, saying so (a disposal is a person's act).
        let mut plans = Vec::new();
        let lookup = |a: &AccountId| (a == account).then_some(state);
        for doc in self.store.doc_ids()? {
            let held = self.access().access_log(&doc)?;
            let Some(from) = held.iter().position(|e| !verifies_under(e, account, state)) else {
                continue;
            };
            let theirs = match relay.request(&Request::GetAccess { doc, from: 0 }).await {
                Ok(Response::Log { entries }) => entries,
                // It lacks the document, or (to another account's device)
                // the share.
                Err(NetError::Relay {
                    code: ErrorCode::NotFound | ErrorCode::Forbidden,
                    ..
                }) => Vec::new(),
                Ok(r) => return Err(unexpected(r)),
                Err(e) => return Err(e.into()),
            };
            let common = held.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
            // Twins of every entry held here from `from` on, and nothing
            // else: the rest the round's fetch takes as it takes any.
            let signed_again = (theirs.get(from..held.len()))
                .filter(|_| common >= from)
                .filter(|part| {
                    (held[from..].iter().zip(*part).enumerate())
                        .all(|(i, p)| stands_in(p, &theirs[from + i + 1..], lookup))
                })
                .filter(|_| DocState::verify_log(&theirs[..held.len()], lookup).is_ok());
            let plan = if let Some(part) = signed_again {
                Resign::Take {
                    doc,
                    from,
                    theirs: part.to_vec(),
                }
            } else if !may_sign {
                // It drops from `from` on (from where the relay's log goes
                // another way, if before), taking the relay's from there,
                // but not a removal or a new epoch a device of the log
                // taken made, unless the relay's log is as strict
                // ([`as_strict`]): it would let a removed member back in
                // here, or seal what this device writes to a key a revoked
                // device holds. Then it waits (as `fork` does).
                let cut = if theirs.is_empty() {
                    from
                } else {
                    from.min(common)
                };
                let trusted: Vec<DocOp> = (held[cut..].iter())
                    .filter(|e| verifies_under(e, account, state))
                    .filter_map(|e| e.open::<DocEntry>(SIG_LABEL).ok())
                    .map(|e| e.op)
                    .filter(|op| matches!(op, DocOp::RemoveMember { .. } | DocOp::Rotate { .. }))
                    .collect();
                // Served, it is this case's log and verifies, or it waits.
                let there = match theirs.is_empty() {
                    true => None,
                    false => match DocState::verify_log(&theirs, lookup) {
                        Ok(st) if st.doc == doc => Some(st),
                        _ => return Ok(Err(RESIGN_WAIT)),
                    },
                };
                let strict = there
                    .filter(|_| theirs.len() > cut)
                    .is_some_and(|st| as_strict(&trusted, &theirs[cut..], &st, state));
                if !trusted.is_empty() && !strict {
                    return Ok(Err(RESIGN_WAIT));
                }
                Resign::Drop {
                    doc,
                    from: cut,
                    theirs: theirs.get(cut..).unwrap_or_default().to_vec(),
                }
            } else if DocState::verify_log(&held, |a| (a == account).then_some(held_state)).is_err()
            {
                // It signs again only what it verified.
                return Ok(Err(ENTRIES_DEPEND));
            } else if common == theirs.len() {
                Resign::Sign { doc, from }
            } else {
                // The relay's may begin with twins another device signed
                // again, of only some of those held here: taken, and the
                // rest done again on top (see `rebase_access`).
                let twinned = (held[common..].iter().zip(&theirs[common..]).enumerate())
                    .take_while(|(i, p)| stands_in(*p, &theirs[common + i + 1..], lookup))
                    .count();
                if common + twinned == 0 {
                    return Ok(Err(ENTRIES_DEPEND));
                }
                let mut trial = held[..common].to_vec();
                trial.extend_from_slice(&theirs[common..]);
                let Ok(there) = DocState::verify_log(&trial, lookup) else {
                    return Ok(Err(ENTRIES_DEPEND));
                };
                // Its closing epoch is sealed to each member of the
                // relay's, and an addition replayed to its member: their
                // logs are held first (fetched in the round, after this).
                let mine = &held[common + twinned..];
                let added = (mine.iter().zip(made_again(mine, distrusted)))
                    .filter(|(_, again)| *again)
                    .filter_map(|(e, _)| match e.open::<DocEntry>(SIG_LABEL) {
                        Ok(DocEntry {
                            op: DocOp::AddMember { member, .. },
                            ..
                        }) => Some(member),
                        _ => None,
                    });
                for member in there.members.keys().copied().chain(added) {
                    if !self.hold_log_of(relay, &member).await? {
                        return Ok(Err(ENTRIES_DEPEND));
                    }
                }
                Resign::Rebase {
                    doc,
                    at: common,
                    theirs: theirs[common..].to_vec(),
                }
            };
            plans.push(plan);
        }
        Ok(Ok(plans))
    }

    /// Carries out `plans` under the log `state` leaves, which is stored
    /// already (in the turn's transaction), ending each share a device of
    /// `distrusted` granted in what this device signs again.
    pub(super) fn resign(
        &mut self,
        plans: &[Resign],
        state: &AccountState,
        distrusted: &[DeviceId],
    ) -> Result<()> {
        let accounts = BTreeMap::from([(state.id, state.clone())]);
        for plan in plans {
            let (doc, from) = match plan {
                Resign::Sign { doc, from }
                | Resign::Take { doc, from, .. }
                | Resign::Drop { doc, from, .. } => (doc, *from),
                Resign::Rebase { doc, at, .. } => (doc, *at),
            };
            let held = self.access().access_log(doc)?;
            let whose = signers(&held[from..]);
            let what = match plan {
                Resign::Take { theirs, .. } => {
                    // What is queued here the relay holds: up to `from` as
                    // it is, after it signed again.
                    self.drop_access_outbox(doc)?;
                    let keys = self.access().doc_keys(doc)?;
                    self.store.truncate_log(&doc.0, from as u64)?;
                    self.access()
                        .accept_access_entries(doc, theirs, &accounts)?;
                    // The same envelopes: the same keys.
                    self.access().keep_doc_keys(doc, keys)?;
                    format!(
                        "took the relay's, which another device of the account signed again from entry {from} on"
                    )
                }
                Resign::Drop { theirs, .. } => {
                    self.access().truncate_access(doc, from)?;
                    if !theirs.is_empty() {
                        self.access()
                            .accept_access_entries(doc, theirs, &accounts)?;
                    }
                    format!(
                        "dropped from entry {from} on (what that account signs for no more, or what its log went past); the relay's taken from there"
                    )
                }
                Resign::Sign { .. } => {
                    self.sign_again(doc, from, &held, state)?;
                    format!("signed again from entry {from} on by this device")
                }
                Resign::Rebase { theirs, .. } => {
                    let undo = Undo {
                        passed_over: distrusted.to_vec(),
                        ..Undo::default()
                    };
                    let at = from as u64;
                    if self
                        .rebase_access(doc, at, theirs, &accounts, &undo)?
                        .is_some()
                    {
                        return Err(Inconsistent::AccessLogNotOurs(*doc).into());
                    }
                    format!(
                        "the relay's taken, which goes another way from entry {from}, and what they did done again on top of it by this device"
                    )
                }
            };
            self.trail().record(
                &format!(
                    "access entries signed by device(s) {whose} no longer verify under the account log taken at a turn (revoked there, or not listed): {what}"
                ),
                Some(*doc),
            )?;
            if plan.signs() {
                // The relay lacked the entries, and so the changes written
                // under them: they go back, the revoked device's too,
                // forwarded on its behalf (each device takes a change it
                // holds once). A trail heals its own way.
                if !self.is_audit_doc(doc) {
                    self.send_unserved(doc, None, &[])?;
                }
                // After a rebase none is made again (see `rebase_access`).
                if matches!(plan, Resign::Sign { .. }) {
                    self.end_distrusted_shares(doc, &held[from..], distrusted)?;
                }
            }
        }
        Ok(())
    }

    /// Signs again `held`, `doc`'s access log, from entry `from` on, on top
    /// of the log `state` leaves, and queues them (with what was queued
    /// before `from`), keeping the document's keys.
    fn sign_again(
        &mut self,
        doc: &DocId,
        from: usize,
        held: &[Signed],
        state: &AccountState,
    ) -> Result<()> {
        let accounts = BTreeMap::from([(state.id, state.clone())]);
        let keys = self.access().doc_keys(doc)?;
        let queued = self.drop_access_outbox(doc)?;
        let first_queued = held.len().saturating_sub(queued);
        self.store.truncate_log(&doc.0, from as u64)?;
        let mut prev = from.checked_sub(1).map(|i| held[i].hash(HASH_LABEL));
        let mut again = Vec::new();
        for e in &held[from..] {
            let mut entry: DocEntry = e.open(SIG_LABEL).map_err(access::AccessError::from)?;
            entry.prev = prev;
            entry.account_len = state.len;
            let s = Signed::sign(&self.id.signer, SIG_LABEL, &entry);
            prev = Some(s.hash(HASH_LABEL));
            again.push(s);
        }
        self.access()
            .accept_access_entries(doc, &again, &accounts)?;
        self.access().keep_doc_keys(doc, keys)?;
        let mut send = held[first_queued.min(from)..from].to_vec();
        send.extend(again);
        self.store
            .push_outbox(doc, OutKind::Access, &codec::encode(&send))?;
        Ok(())
    }

    /// Ends each share of `doc` that an entry of `held` signed by a device
    /// of `distrusted` granted, and moves the document on if it did.
    fn end_distrusted_shares(
        &mut self,
        doc: &DocId,
        held: &[Signed],
        distrusted: &[DeviceId],
    ) -> Result<()> {
        let mut ended = Vec::new();
        for e in held.iter().filter(|e| distrusted.contains(&e.signer)) {
            let Ok(DocEntry {
                op: DocOp::AddMember { member, .. },
                ..
            }) = e.open(SIG_LABEL)
            else {
                continue;
            };
            let meta = (self.access().doc_meta(doc)?).ok_or(Inconsistent::NoAccessLog(*doc))?;
            if meta.disposed || !meta.members.iter().any(|(m, _, _)| *m == member) {
                continue;
            }
            self.access()
                .append_access_entry(doc, DocOp::RemoveMember { member })?;
            self.trail().record(
                &format!(
                    "share to {} ended: granted by device {}, which the account log taken at a turn revokes (or left out); grant it again if it was yours",
                    member.short(),
                    e.signer.short()
                ),
                Some(*doc),
            )?;
            ended.push(member);
        }
        // One that cannot move on now (a member's log not held yet) does
        // in upkeep, after the members' logs are fetched.
        if !ended.is_empty() {
            match self.rotate_doc(doc) {
                Ok(()) => {}
                Err(e @ crate::error::Error::Store(_)) => return Err(e),
                Err(_) => self.rotation_due(&[*doc])?,
            }
        }
        Ok(())
    }

    /// Whether this device holds `account`'s log, fetching it whole from
    /// the relay where it holds none (verified, and stored as it came).
    async fn hold_log_of(&mut self, relay: &Relay, account: &AccountId) -> Result<bool> {
        if !self.account_log_of(account)?.is_empty() {
            return Ok(true);
        }
        let get = Request::GetAccount {
            account: *account,
            from: 0,
        };
        let entries = match relay.request(&get).await {
            Ok(Response::Log { entries }) => entries,
            Ok(r) => return Err(unexpected(r)),
            Err(NetError::Relay {
                code: ErrorCode::NotFound | ErrorCode::Forbidden,
                ..
            }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        match AccountState::verify_log(&entries) {
            Ok(st) if st.id == *account => {}
            _ => return Ok(false),
        }
        let encoded: Vec<Vec<u8>> = entries.iter().map(codec::encode).collect();
        self.store.append_log(&account.0, 0, &encoded)?;
        Ok(true)
    }
}

/// Whether the relay's access log, which ends in `there` and holds
/// `after` past where a colleague's device would cut its own, is as strict
/// as the removals and new epochs (`dropped`) that a device of the
/// owner's log (as `owner` leaves it) made in the part it would cut: no
/// member removed holds the newest epoch there (each grant of theirs ended
/// before it); and where a new epoch is dropped, one in `after` was signed
/// at a length of the owner's log past its last revocation, so no device
/// revoked by then made or holds it. A shorter prefix that stops before a
/// removal's new epoch is not.
fn as_strict(dropped: &[DocOp], after: &[Signed], there: &DocState, owner: &AccountState) -> bool {
    let last_revoked = (owner.devices.values()).filter_map(|d| d.revoked_seq).max();
    let rotated_since = after.iter().any(|e| {
        e.open::<DocEntry>(SIG_LABEL).is_ok_and(|x| {
            matches!(x.op, DocOp::Rotate { .. }) && last_revoked.is_none_or(|r| x.account_len > r)
        })
    });
    dropped.iter().all(|op| match op {
        DocOp::RemoveMember { member } => (there.grants.iter())
            .filter(|g| g.account == *member)
            .all(|g| g.until_epoch.is_some_and(|u| u < there.epoch)),
        DocOp::Rotate { .. } => rotated_since,
        _ => true,
    })
}

/// The devices that signed `entries`, short, each once.
fn signers(entries: &[Signed]) -> String {
    let mut devices: Vec<String> = entries.iter().map(|e| e.signer.short()).collect();
    devices.sort();
    devices.dedup();
    devices.join(", ")
}
