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
//! of the owner's account signs it again, on top of the log taken. From the
//! first entry of a document's access log that does not verify, every entry
//! is signed again as it was (the same operation, key envelopes and time),
//! only chained anew and dated at the log's length now; then the document
//! moves to a new epoch, sealed to its members' current keys, whose chain
//! of previous keys reaches every epoch the entries made (a key envelope
//! sealed to a key of the other history opens to no device here). A share
//! a revoked device granted stands as this device had it, and the trail
//! says whose entries were signed again. The relay never holds the entries
//! signed again: it takes an entry only under a log it holds, which the
//! one taken extends, and under that one they do not verify.
//!
//! A device that holds the same entries, when another device of the owner's
//! already signed them again (the relay's log holds them from that entry
//! on, twins of those held here), takes the relay's instead: another
//! device of the account, which may not sign for the owner, only so, and
//! waits, refused, until one has. Where the relay's log goes another way
//! from that entry, or a kept disposal would not verify, the turn stays
//! refused, named.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, HASH_LABEL, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::turn::{ENTRIES_DEPEND, verifies_under};
use super::unexpected;
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::store::OutKind;

/// Why a device of another account (or one that may not sign) waits.
pub const RESIGN_WAIT: &str = "an access entry held here, signed by a device the relay's revokes or does not list, would not verify under it until a device of that account signs it again when it syncs";

/// What becomes of one document's access log held here.
pub(super) struct Resign {
    doc: DocId,
    /// The first entry that does not verify: it and every later one are
    /// signed again, or taken from the relay.
    from: usize,
    /// The relay's entries from `from` on, where another device signed
    /// them again first; none where this device signs them.
    theirs: Option<Vec<Signed>>,
}

impl Resign {
    /// Whether this device signs the entries again (and rotates after).
    pub(super) fn signs(&self) -> bool {
        self.theirs.is_none()
    }

    pub(super) fn doc(&self) -> &DocId {
        &self.doc
    }
}

impl Home {
    /// For each document whose access log held here holds an entry of
    /// `account` that does not verify under its log as `state` leaves it:
    /// what becomes of it, as the module says (this device signs again
    /// only where `may_sign`), or why the log is refused.
    pub(super) async fn plan_resign(
        &mut self,
        relay: &Relay,
        account: &AccountId,
        state: &AccountState,
        may_sign: bool,
    ) -> Result<std::result::Result<Vec<Resign>, &'static str>> {
        let kept = self.kept_disposals()?;
        if kept
            .values()
            .any(|k| !verifies_under(&k.gone, account, state))
        {
            return Ok(Err(ENTRIES_DEPEND));
        }
        let lookup = |a: &AccountId| (a == account).then_some(state);
        let mut plans = Vec::new();
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
            let agrees = |n: usize| theirs.get(..n) == held.get(..n);
            let plan = if theirs.len() <= from && agrees(theirs.len()) {
                // The relay lacks them: this device signs them again.
                if !may_sign {
                    return Ok(Err(RESIGN_WAIT));
                }
                None
            } else if theirs.len() >= held.len()
                && agrees(from)
                && held[from..].iter().zip(&theirs[from..]).all(twins)
                && access::DocState::verify_log(&theirs, lookup).is_ok()
            {
                Some(theirs[from..].to_vec())
            } else if may_sign {
                return Ok(Err(ENTRIES_DEPEND));
            } else {
                return Ok(Err(RESIGN_WAIT));
            };
            plans.push(Resign {
                doc,
                from,
                theirs: plan,
            });
        }
        Ok(Ok(plans))
    }

    /// Carries out `plans` under the log `state` leaves, which is stored
    /// already (in the turn's transaction); returns how many entries this
    /// device signed again. The documents it signed again still move to a
    /// new epoch ([`Resign::signs`]).
    pub(super) fn resign(&mut self, plans: &[Resign], state: &AccountState) -> Result<usize> {
        let accounts = BTreeMap::from([(state.id, state.clone())]);
        let mut signed = 0;
        for plan in plans {
            let doc = &plan.doc;
            let held = self.access().access_log(doc)?;
            let keys = self.access().doc_keys(doc)?;
            let mut queued = Vec::new();
            for row in self.store.access_outbox()? {
                if row.doc == *doc {
                    queued.extend(codec::decode::<Vec<Signed>>(&row.payload)?);
                    self.store.remove_outbox(row.id)?;
                }
            }
            let first_queued = held.len().saturating_sub(queued.len());
            self.store.truncate_log(&doc.0, plan.from as u64)?;
            let whose = signers(&held[plan.from..]);
            let what = match &plan.theirs {
                Some(theirs) => {
                    // Queued ones before `from` the relay holds (it agrees
                    // up to there); those after, it holds signed again.
                    self.access()
                        .accept_access_entries(doc, theirs, &accounts)?;
                    format!(
                        "took the relay's, which another device of the account signed again from entry {} on",
                        plan.from
                    )
                }
                None => {
                    let mut prev = plan.from.checked_sub(1).map(|i| held[i].hash(HASH_LABEL));
                    let mut again = Vec::new();
                    for e in &held[plan.from..] {
                        let mut entry: DocEntry =
                            e.open(SIG_LABEL).map_err(access::AccessError::from)?;
                        entry.prev = prev;
                        entry.account_len = state.len;
                        let s = Signed::sign(&self.id.signer, SIG_LABEL, &entry);
                        prev = Some(s.hash(HASH_LABEL));
                        again.push(s);
                    }
                    self.access()
                        .accept_access_entries(doc, &again, &accounts)?;
                    signed += again.len();
                    let mut send = held[first_queued.min(plan.from)..plan.from].to_vec();
                    send.extend(again);
                    self.store
                        .push_outbox(doc, OutKind::Access, &codec::encode(&send))?;
                    // The relay lacked the entries, and so the changes
                    // written under them: they go back, the revoked
                    // device's too, forwarded on its behalf (each device
                    // takes a change it holds once). A trail heals its own
                    // way.
                    if !self.is_audit_doc(doc) {
                        self.send_unserved(doc, None, &[])?;
                    }
                    format!("signed again from entry {} on by this device", plan.from)
                }
            };
            // The same keys, epoch by epoch: the entries are the same, but
            // an envelope sealed to a key of the other history opens no
            // more here.
            self.access().keep_doc_keys(doc, keys)?;
            self.trail().record(
                &format!(
                    "access entries signed by device(s) {whose} no longer verify under the account log taken at a turn (revoked there, or not listed): {what}; what they did stands"
                ),
                Some(*doc),
            )?;
        }
        Ok(signed)
    }
}

/// Whether `a` held here and `b` the relay's are the same entry signed
/// again: all but the chain, the log length and the signature alike.
fn twins(pair: (&Signed, &Signed)) -> bool {
    let (Ok(a), Ok(b)) = (
        pair.0.open::<DocEntry>(SIG_LABEL),
        pair.1.open::<DocEntry>(SIG_LABEL),
    ) else {
        return false;
    };
    (a.doc, a.seq, a.at, a.account, a.op) == (b.doc, b.seq, b.at, b.account, b.op)
}

/// The devices that signed `entries`, short, each once.
fn signers(entries: &[Signed]) -> String {
    let mut devices: Vec<String> = entries.iter().map(|e| e.signer.short()).collect();
    devices.sort();
    devices.dedup();
    devices.join(", ")
}
