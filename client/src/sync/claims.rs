//! Claims: the changes the relay acknowledged to each device of an
//! account, told to the account's other devices.
//!
//! Automerge's dependency hashes name a change missing from under another
//! (see [`super::check`]), but nothing names a device's newest change until
//! that device writes again. A relay that drops or withholds it, serves an
//! older snapshot that lacks it, or was restored from a copy taken before
//! it, leaves the other devices short without a word. So each device tells
//! the others, in the envelopes of its audit entries, its newest change of
//! each document the relay acknowledged (`Home::store_acks`; a device's
//! changes follow one another, so holding its newest is holding all, and
//! an Automerge change's last operation number says which is newer). Each
//! device keeps the newest it is told, per document and device, until it
//! holds the change.
//!
//! The envelope carrying a claim is stored after the change it names, so a
//! pull whose listing shows the audit document at or past that envelope
//! listed the document after the change landed, and fetched it (a fetch
//! may also bring envelopes stored after the listing: their claims wait
//! for the next pull). A device that still lacks the change then, with
//! nothing of the document refused, was not served it: the
//! document is INCOMPLETE, named with the device that made the change, and
//! each round fetches it again from the start, and takes no snapshot of
//! it, until the change arrives. It asks the account's other devices for
//! it with its own audit entries (and again while it still lacks it,
//! less often each time: see `store::ASK_AGAIN_AFTER`), and the device
//! that made it sends it again, with its changes beneath it
//! (`notes::lineage`). The relay
//! takes a device's own envelopes only, so only the author can; but an
//! owner's device that holds the change sends it on its behalf as well
//! (`Home::forward_held`): the author may be away, or no longer able to
//! (revoked, or its share ended). A claim is met once the change is here; it
//! is dropped when the document is disposed of or no longer shared with
//! this account, or when the device that made it is revoked (a stolen
//! device could otherwise claim what never was, and keep the document
//! incomplete for good).
//!
//! In a document shared with another account, claims and wants go in the
//! document itself, to every member's devices ([`super::signals`]); the
//! audit entries carry the rest. A document the relay does not list for
//! this device at all is not judged (a share may have ended before this
//! device first saw it).

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::account::AccountState;
use casebook_shared::ids::{AccountId, DeviceId, DocId};

use super::heal::Resent;
use super::{Incomplete, SyncReport};
use crate::error::Result;
use crate::home::Home;
use crate::notes::ChangeHash;
use crate::notes::lineage::{RUN_FOR_OTHERS, RUN_FOR_OWN};

/// Wants queued at most per document: what a colleague's change names as
/// its base is asked for too, and nobody's forged base fills the account's
/// audit document.
pub(super) const WANTS_PER_DOC: usize = 16;

/// Wants answered per round.
const ANSWERS_PER_ROUND: usize = 4000;

/// Documents loaded per pull only to judge their claims. A document this
/// device holds in memory already (it applied or wrote to it lately) is
/// judged at once; one stored from a snapshot and never opened would cost
/// a whole load, and a device recovered from its words holds a thousand of
/// those, each claimed: they are judged a few at a time, pull after pull
/// (each judged claim is met, or its document is fetched from the start
/// and loaded anyway; a document with something refused is not judged and
/// takes none of the budget).
const LOADS_PER_PULL: usize = 2;

impl Incomplete {
    /// Counts `lacking` among what the document misses, each change once
    /// (it may be counted already: as what waiting changes build on, or by
    /// an earlier pull of the round that judged the same claim).
    fn count_missing(&mut self, lacking: &[ChangeHash]) {
        for h in lacking {
            if self.counted.insert(*h) {
                self.missing += 1;
                if self.hashes.len() < 3 {
                    self.hashes.push(h.to_string());
                }
            }
        }
    }
}

impl Home {
    /// After a pull that listed the documents `listed`, and the audit
    /// document's head at `audit_head`, with the account logs `accounts`: meets the claims now held, and
    /// names each document still lacking a claimed change as incomplete.
    /// Only claims told at or below that head are judged: the relay stored
    /// them, and the changes they name, before this pull listed the
    /// documents (a claim fetched past the listing waits for the next).
    /// Returns the documents that came to lack a claimed change this pull:
    /// not fetched from their start, they may hold it below the seen mark
    /// (see `Round::pulled`).
    pub(super) fn judge_claims(
        &mut self,
        audit_head: u64,
        listed: &BTreeSet<DocId>,
        accounts: &BTreeMap<AccountId, AccountState>,
        report: &mut SyncReport,
    ) -> Result<Vec<DocId>> {
        let mut newly = Vec::new();
        let kept = self.store.kept_claims(audit_head)?;
        if kept.is_empty() {
            return Ok(newly);
        }
        let mut by_doc: BTreeMap<DocId, Vec<([u8; 32], DeviceId)>> = BTreeMap::new();
        for (doc, hash, device) in kept {
            by_doc.entry(doc).or_default().push((hash, device));
        }
        let disposed = self.disposed_docs()?;
        // Kept under a legal hold, its disposal on the relay: nothing of it
        // is served, and its claims wait (judged again if the relay drops
        // the disposal).
        let under_hold = self.kept_under_hold()?;
        // This account as the round read and verified it.
        let me = match accounts.get(&self.account_id()) {
            Some(me) => me.clone(),
            None => self.account_state()?,
        };
        let now = self.now();
        let mut loads = 0;
        // Read once: a device recovered from its words holds a thousand
        // claimed documents it has not loaded, each skipped here a pull.
        let bodies: BTreeSet<DocId> = self.store.doc_ids_with_body()?.into_iter().collect();
        // Met in one transaction at the end: a thousand claims are a
        // thousand writes.
        let mut met: Vec<(DocId, [u8; 32])> = Vec::new();
        for (doc, claims) in by_doc {
            // Not listed: nothing to judge it by (a share that ended, say).
            // Something of it refused: the seen mark stopped, and the
            // refusal is reported (and fails the sync) on its own.
            if !listed.contains(&doc)
                || under_hold.contains(&doc)
                || report.refused.iter().any(|r| r.doc == doc)
            {
                continue;
            }
            // Changes of it wait for ones not served: a claimed change may
            // be among them, here but not applied. Judged once they go in
            // (the document is fetched from the start until then).
            if report
                .incomplete
                .iter()
                .any(|x| x.doc == doc && !x.waiting.is_empty())
            {
                continue;
            }
            if !self.docs().is_loaded(&doc) && bodies.contains(&doc) {
                if loads == LOADS_PER_PULL {
                    continue;
                }
                loads += 1;
            }
            // Disposed of, no longer shared with this account, or claimed
            // by a device revoked since (a stolen one may claim what it
            // likes): nobody's due.
            let meta = self.access().doc_meta(&doc)?;
            let gone = disposed.contains(&doc)
                || meta
                    .as_ref()
                    .is_some_and(|m| m.disposed || m.role_of(&me.id, now).is_none());
            let mut live = Vec::new();
            for (hash, device) in claims {
                // A colleague's device, told in a signal, is in the
                // colleague's log; one in no log the round read waits.
                // A colleague who may no longer write there cannot send it
                // again, nor keep the document incomplete with a claim of
                // what never was.
                let record = std::iter::once(&me)
                    .chain(accounts.values())
                    .find_map(|a| a.devices.get(&device).map(|r| (a.id, r)));
                match record {
                    _ if gone => met.push((doc, hash)),
                    Some((_, r)) if r.revoked_seq.is_some() => met.push((doc, hash)),
                    Some((account, _))
                        if meta.as_ref().is_some_and(|m| {
                            m.role_of(&account, now).is_none_or(|r| !r.can_upload())
                        }) =>
                    {
                        met.push((doc, hash))
                    }
                    Some((account, _)) => live.push((ChangeHash(hash), device, account)),
                    None => {}
                }
            }
            // Not held here yet (its access log did not verify).
            if live.is_empty() || meta.is_none() {
                continue;
            }
            let hashes: Vec<ChangeHash> = live.iter().map(|(h, ..)| *h).collect();
            let lacking = self.docs().lacking(&doc, &hashes)?;
            for (hash, ..) in live.iter().filter(|(h, ..)| !lacking.contains(h)) {
                met.push((doc, hash.0));
            }
            if lacking.is_empty() {
                continue;
            }
            let mut sync = self.docs().sync_record(&doc)?;
            self.want(&doc, &lacking)?;
            if sync.missing == 0 {
                newly.push(doc);
            }
            sync.missing = sync.missing.max(lacking.len() as u64);
            self.store.set_doc_sync(&doc, sync)?;
            let lacked = live.iter().filter(|(h, ..)| lacking.contains(h));
            let by: Vec<DeviceId> = lacked.clone().map(|(_, d, _)| *d).collect();
            let whom = self.whom(lacked.map(|(.., a)| *a))?;
            let x = match report.incomplete.iter_mut().position(|x| x.doc == doc) {
                Some(i) => {
                    report.incomplete[i].count_missing(&lacking);
                    &mut report.incomplete[i]
                }
                None => {
                    report
                        .incomplete
                        .push(Incomplete::new(doc, &lacking, Vec::new()));
                    report.incomplete.last_mut().expect("just pushed")
                }
            };
            x.claimed_by.extend(by);
            x.claimed_by.sort();
            x.claimed_by.dedup();
            x.claimed_by_whom.extend(whom);
            x.claimed_by_whom.sort();
            x.claimed_by_whom.dedup();
        }
        self.store.transaction(|s| {
            for (doc, hash) in &met {
                s.meet_claim(doc, hash)?;
            }
            Ok(())
        })?;
        Ok(newly)
    }

    /// The people `accounts` are, as this device knows them: this account by
    /// its name, a contact by the name given it, another by its short id.
    fn whom(&self, accounts: impl Iterator<Item = AccountId>) -> Result<Vec<String>> {
        let mut contacts = None;
        let mut out = Vec::new();
        for a in accounts {
            if a == self.account_id() {
                out.push(self.name().to_string());
                continue;
            }
            if contacts.is_none() {
                contacts = Some(self.contacts().list()?);
            }
            let named = contacts.iter().flatten().find(|c| c.account == a);
            out.push(match named {
                Some(c) => c.name.clone(),
                None => format!("account {}", a.short()),
            });
        }
        Ok(out)
    }

    /// Asks the account's other devices for changes `doc` lacks (at most
    /// [`WANTS_PER_DOC`] queued; asked again while still lacking, see
    /// `store::ASK_AGAIN_AFTER`): the one that made a change sends it
    /// again.
    pub(super) fn want(&self, doc: &DocId, lacking: &[ChangeHash]) -> Result<()> {
        for hash in lacking {
            self.store.queue_want(doc, &hash.0, WANTS_PER_DOC)?;
        }
        Ok(())
    }

    /// Sends again the changes of this device's that other devices asked
    /// for, with this device's changes beneath them (a device short of one
    /// is usually short of the run it sat in; see `notes::lineage`), each
    /// want once however often it is served, in the transaction that marks
    /// it answered. From an owner's device, a change asked for that another
    /// device made goes on its behalf too (`Home::forward_held`).
    pub(super) fn answer_wants(&mut self, report: &mut SyncReport) -> Result<()> {
        let wants = self.store.wants_to_answer(ANSWERS_PER_ROUND)?;
        if wants.is_empty() {
            return Ok(());
        }
        // In the audit document a want names a device whose trail has a
        // gap, not a change; one that must wait stays unanswered.
        let waiting = self.answer_audit_wants(&wants)?;
        let wants: Vec<_> = wants.into_iter().filter(|w| !waiting.contains(w)).collect();
        let audit = crate::audit_sync::audit_doc(&self.account_id());
        let mut by_doc: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
        for (doc, hash) in wants.iter().filter(|(d, _)| *d != audit) {
            by_doc.entry(*doc).or_default().push(ChangeHash(*hash));
        }
        // This account's own devices get the longer run.
        let own_asked: BTreeSet<DocId> = self
            .store
            .wants_from_this_account(ANSWERS_PER_ROUND)?
            .into_iter()
            .map(|(doc, _)| doc)
            .collect();
        let device = self.device_id();
        let resent = self.atomically(|home| {
            let mut resent = 0;
            for (doc, hashes) in &by_doc {
                let run = match own_asked.contains(doc) {
                    true => RUN_FOR_OWN,
                    false => RUN_FOR_OTHERS,
                };
                let own = home.docs().own_lineage(doc, hashes, &device.0, run)?;
                resent += home.queue_resend(doc, own, Resent::Asked)?;
                resent += home.forward_held(doc, hashes)?;
            }
            home.store.wants_answered(&wants)?;
            Ok(resent)
        })?;
        report.resent += resent;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_change_counted_again_in_the_same_round_counts_once() {
        let h = |n: u8| ChangeHash([n; 32]);
        // What a waiting change builds on, then a claim of it and another,
        // then the same claim judged again by the round's next pull.
        let mut x = Incomplete::new(DocId([1; 16]), &[h(1)], Vec::new());
        x.count_missing(&[h(1), h(2)]);
        x.count_missing(&[h(2)]);
        assert_eq!(x.missing, 2);
        assert_eq!(x.hashes, vec![h(1).to_string(), h(2).to_string()]);
    }
}
