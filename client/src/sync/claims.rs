//! Claims: the changes the relay acknowledged to each device of an
//! account, told to the account's other devices.
//!
//! Automerge's dependency hashes name a change missing from under another
//! (see [`super::check`]), but nothing names a device's newest change until
//! that device writes again. A relay that drops or withholds it, serves an
//! older snapshot that lacks it, or was restored from a copy taken before
//! it, leaves the other devices short without a word. So each device tells
//! the others, in the envelopes of its audit entries, the hash of each
//! change of its own the relay acknowledged (`Home::store_acks`), and each
//! device keeps what it is told until it holds the change.
//!
//! The envelope carrying a claim is stored after the change it names, so a
//! pull that fetched the claim listed the document after the change landed,
//! and fetched it since. A device that still lacks the change, with nothing
//! of the document refused, was not served it: the document is
//! INCOMPLETE, named with the device that made the change, and each round
//! fetches it again from the start until the change arrives. It asks the
//! device that made the change for it, once, with its own audit entries,
//! and that device sends it again (the relay takes a device's own
//! envelopes only, so only the author can). A claim is dropped once the
//! change is here, or when the document is disposed of. A device revoked
//! since keeps its claims: what it sent before its revocation is still
//! every device's to read, and a device that knows it lacks one takes no
//! snapshot that would let the relay drop it for good.
//!
//! Only the account's own devices tell each other: a colleague's claims
//! reach the colleague's devices. A document the relay does not list for
//! this device at all is not judged (a share may have ended before this
//! device first saw it).

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::ids::{DeviceId, DocId};

use super::{Incomplete, SyncReport};
use crate::error::Result;
use crate::home::Home;
use crate::notes::ChangeHash;

/// What becomes of a document's kept claims after a pull.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing to judge yet: the relay does not list the document, or the
    /// pull refused some of it (which stops the seen mark, and is
    /// reported, and the sync fails, on its own).
    Wait,
    /// The pull fetched everything the relay serves of the document and
    /// the changes are not here.
    Unmet,
}

/// Judges a document's claims that are not held: whether this pull's
/// listing holds it, and whether the pull refused any of it.
pub(super) fn judge(listed: bool, refused: bool) -> Verdict {
    match listed && !refused {
        true => Verdict::Unmet,
        false => Verdict::Wait,
    }
}

impl Home {
    /// After a pull that listed the documents `listed`: drops the claims
    /// now held, and names each document still lacking a claimed change as
    /// incomplete.
    pub(super) fn judge_claims(
        &mut self,
        listed: &BTreeSet<DocId>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let kept = self.store.kept_claims()?;
        if kept.is_empty() {
            return Ok(());
        }
        let mut by_doc: BTreeMap<DocId, Vec<([u8; 32], DeviceId)>> = BTreeMap::new();
        for (doc, hash, device) in kept {
            by_doc.entry(doc).or_default().push((hash, device));
        }
        for (doc, claims) in by_doc {
            let disposed = self.access().doc_meta(&doc)?.is_some_and(|m| m.disposed);
            let mut live = Vec::new();
            for (hash, device) in claims {
                if disposed {
                    self.store.drop_claim(&doc, &hash)?;
                } else {
                    live.push((ChangeHash(hash), device));
                }
            }
            if live.is_empty() {
                continue;
            }
            let hashes: Vec<ChangeHash> = live.iter().map(|(h, _)| *h).collect();
            let lacking = self.docs().lacking(&doc, &hashes)?;
            for (hash, _) in live.iter().filter(|(h, _)| !lacking.contains(h)) {
                self.store.drop_claim(&doc, &hash.0)?;
            }
            if lacking.is_empty() {
                continue;
            }
            let refused = report.refused.iter().any(|r| r.doc == doc);
            if judge(listed.contains(&doc), refused) == Verdict::Wait {
                continue;
            }
            let mut sync = self.docs().sync_record(&doc)?;
            self.want(&doc, &lacking)?;
            sync.missing = sync.missing.max(lacking.len() as u64);
            self.store.set_doc_sync(&doc, sync)?;
            let mut by: Vec<DeviceId> = live
                .iter()
                .filter(|(h, _)| lacking.contains(h))
                .map(|(_, d)| *d)
                .collect();
            by.sort();
            by.dedup();
            match report.incomplete.iter_mut().find(|x| x.doc == doc) {
                Some(x) => {
                    x.missing += lacking.len();
                    x.claimed_by.extend(by);
                    x.claimed_by.sort();
                    x.claimed_by.dedup();
                }
                None => {
                    let mut x = Incomplete::new(doc, &lacking, Vec::new());
                    x.claimed_by = by;
                    report.incomplete.push(x);
                }
            }
        }
        Ok(())
    }

    /// Asks the account's other devices, once, for changes `doc` lacks:
    /// the one that made a change sends it again.
    pub(super) fn want(&self, doc: &DocId, lacking: &[ChangeHash]) -> Result<()> {
        for hash in lacking {
            self.store.queue_want(doc, &hash.0)?;
        }
        Ok(())
    }

    /// Sends again the changes of this device's that the account's other
    /// devices asked for: they were claimed and never served to them.
    pub(super) fn answer_wants(&mut self, report: &mut SyncReport) -> Result<()> {
        let mut by_doc: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
        for (doc, hash) in self.store.take_wants()? {
            by_doc.entry(doc).or_default().push(ChangeHash(hash));
        }
        let device = self.device_id();
        for (doc, hashes) in by_doc {
            let own = self.docs().own_changes_of(&doc, &hashes, &device.0)?;
            report.resent += self.queue_resend(&doc, own)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_judged_only_where_the_pull_listed_and_refused_nothing() {
        assert_eq!(judge(false, false), Verdict::Wait);
        assert_eq!(judge(true, true), Verdict::Wait);
        assert_eq!(judge(true, false), Verdict::Unmet);
    }
}
