//! A watcher told that a document changed takes that document's changes
//! at once, before the rest of its round: a change typed on one device
//! shows on another without waiting for account logs and the relay's
//! whole listing. A short envelope comes with the push, and is taken
//! without a fetch when the relay says it follows on from what this device
//! has seen of the document; otherwise the document is fetched.
//!
//! Only what it can judge exactly as the full round would is taken here:
//! changes and snapshots of documents this device holds, under key epochs
//! and from devices it already knows, in one page. Anything else (an
//! unknown epoch or device, a refusal, more than a page, the audit
//! document) leaves everything as it was, and the round that follows
//! fetches and judges it with the newest logs.

use std::collections::BTreeMap;

use casebook_shared::account::AccountState;
use casebook_shared::frames::{Response, Stored};
use casebook_shared::ids::{AccountId, DocId};

use super::apply::Batch;
use super::paging::{Paging, Placed};
use super::{Progress, SyncReport, unexpected};
use crate::error::Result;
use crate::home::Home;
use crate::net::{PushedEnvelope, Relay, Told};

/// Of what the relay pushed for one document whose newest told sequence
/// number is `newest`, the envelopes that follow on from `seen` with
/// nothing between (each pushed with the sequence number before it), in
/// order, up to `newest`. `None` when they do not reach it, or the first
/// does not follow on from `seen`: the document is fetched instead.
fn pushed_run(seen: u64, newest: u64, told: &[&Told]) -> Option<Vec<Stored>> {
    let mut pushed: Vec<(&Told, &PushedEnvelope)> = told
        .iter()
        .filter_map(|t| t.pushed.as_ref().map(|p| (*t, p)))
        .collect();
    pushed.sort_by_key(|(t, _)| t.seq);
    let mut at = seen;
    let mut run = Vec::new();
    for (t, p) in pushed {
        if t.seq <= at {
            continue;
        }
        if p.prev != at {
            return None;
        }
        run.push(Stored {
            doc: t.doc,
            seq: t.seq,
            envelope: p.envelope.clone(),
        });
        at = t.seq;
    }
    (at == newest && !run.is_empty()).then_some(run)
}

impl Home {
    /// Fetches, checks and applies what the relay said changed in `told`
    /// (documents and their newest sequence numbers, some with the
    /// envelope pushed along); what it took, or an empty report when it
    /// left it all to the next round.
    pub(super) async fn pull_told(
        &mut self,
        relay: &Relay,
        told: &[Told],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        // The account logs this session verified; a device not among them
        // is left to the round, which fetches its account's log first.
        let accounts: BTreeMap<AccountId, AccountState> = self.synced.verified_logs.states();
        let mut docs: Vec<DocId> = told.iter().map(|t| t.doc).collect();
        docs.sort();
        docs.dedup();
        // Envelopes to take as pushed, and documents to fetch after what
        // was seen of them.
        let mut pushed: Vec<Stored> = Vec::new();
        let mut after: Vec<(DocId, u64)> = Vec::new();
        for doc in docs {
            if self.is_audit_doc(&doc) {
                continue;
            }
            match self.access().doc_meta(&doc)? {
                Some(meta) if !meta.disposed => {}
                _ => continue,
            }
            // One a refused account log is part of waits for a round that
            // verifies that log (see `logs`).
            if self.on_a_refused_log(&doc)?.is_some() {
                continue;
            }
            let of_doc: Vec<&Told> = told.iter().filter(|t| t.doc == doc).collect();
            let newest = of_doc.iter().map(|t| t.seq).max().unwrap_or(0);
            // One that lacks changes (or was refused for the relay's order)
            // is fetched from its start: the round after this does that.
            let sync = self.docs().sync_record(&doc)?;
            let seen = sync.seen;
            if newest <= seen || sync.missing > 0 {
                continue;
            }
            match pushed_run(seen, newest, &of_doc) {
                Some(run) => pushed.extend(run),
                None => after.push((doc, seen)),
            }
        }
        if (pushed.is_empty() && after.is_empty()) || accounts.is_empty() {
            return Ok(report);
        }
        let taken_pushed = pushed.len();
        let mut items = pushed;
        let mut paging = Paging::new(after);
        if let Some(request) = paging.request() {
            let (fetched, more) = match relay.request(&request).await? {
                Response::Changes { items, more } => (items, more),
                r => return Err(unexpected(r)),
            };
            if more {
                return Ok(report);
            }
            let Ok(placed) = paging.page(fetched, more) else {
                return Ok(report);
            };
            for p in placed {
                let Placed::Take(item) = p else {
                    return Ok(report);
                };
                items.push(item);
            }
        }
        let mut taken: Vec<DocId> = items.iter().map(|i| i.doc).collect();
        taken.dedup();
        progress(Progress::Fetched {
            docs: taken.len(),
            of: taken.len(),
            bytes: items.iter().map(|i| i.envelope.len()).sum(),
        });
        let mut batches: BTreeMap<DocId, Batch> = BTreeMap::new();
        for item in &items {
            self.take_into(&mut batches, item, &accounts, &mut report, false)?;
            if !report.refused.is_empty() {
                return Ok(SyncReport::default());
            }
        }
        // What was fetched can be fetched again: its commit need not wait
        // for the disk (see `Store::wait_for_disk`). A change refused while
        // it is applied (a commenter's that does more than comment, one
        // that waits for another) is the round's to judge and record: then
        // nothing of this is kept.
        self.store.wait_for_disk(false)?;
        let started = self.store.begin()?;
        let mut applied = Ok(());
        for (doc, batch) in batches {
            // A document that came to lack changes is fetched from its
            // start by the next round (its record says it lacks them).
            applied = self.apply_fetched(&doc, batch, &mut report).map(|_| ());
            if applied.is_err() {
                break;
            }
        }
        let keep = applied.is_ok() && report.refused.is_empty() && report.incomplete.is_empty();
        let ended = self.store.end(started, keep);
        if !keep || ended.is_err() {
            self.cache.clear();
        }
        let restored = self.store.wait_for_disk(true);
        applied?;
        ended?;
        restored?;
        if !keep {
            return Ok(SyncReport::default());
        }
        let received = report.received + report.snapshots_in;
        if received > 0 {
            progress(Progress::Visible { received });
        }
        report.taken_pushed = taken_pushed;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn told(seq: u64, prev: Option<u64>) -> Told {
        Told {
            doc: DocId([1; 16]),
            seq,
            pushed: prev.map(|prev| PushedEnvelope {
                envelope: vec![seq as u8],
                prev,
            }),
        }
    }

    fn run(seen: u64, newest: u64, told: &[Told]) -> Option<Vec<u64>> {
        let refs: Vec<&Told> = told.iter().collect();
        pushed_run(seen, newest, &refs).map(|r| r.iter().map(|s| s.seq).collect())
    }

    #[test]
    fn pushed_envelopes_that_follow_on_from_what_was_seen_are_taken() {
        assert_eq!(run(4, 7, &[told(7, Some(4))]), Some(vec![7]));
        // In any order, repeated, and past what was seen already.
        let t = [
            told(9, Some(7)),
            told(3, Some(1)),
            told(7, Some(4)),
            told(9, Some(7)),
        ];
        assert_eq!(run(4, 9, &t), Some(vec![7, 9]));
    }

    #[test]
    fn a_gap_or_a_change_told_without_its_envelope_is_fetched() {
        // Something lies between what was seen and the pushed envelope.
        assert_eq!(run(4, 7, &[told(7, Some(5))]), None);
        assert_eq!(run(4, 9, &[told(7, Some(4)), told(9, Some(8))]), None);
        // The newest was told without its envelope (too long to push).
        assert_eq!(run(4, 9, &[told(7, Some(4)), told(9, None)]), None);
        assert_eq!(run(4, 7, &[told(7, None)]), None);
        // A relay that says the envelope precedes what was seen.
        assert_eq!(run(4, 7, &[told(7, Some(2))]), None);
    }
}
