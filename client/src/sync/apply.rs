//! Applying one document's fetched envelopes: a snapshot, the changes of
//! its writers in one Automerge call, then commenters' changes, each judged
//! where it was written.

use std::collections::BTreeSet;

use casebook_shared::ids::{AccountId, DocId};

use super::{RefusedEnvelope, SyncReport, snapshot_weight};
use crate::docs::{SnapshotBody, Summary};
use crate::error::{Error, Result};
use crate::home::Home;

impl Home {
    /// Applies one document's fetched batch and records how far it has seen.
    pub(super) fn apply_fetched(
        &mut self,
        doc: &DocId,
        batch: Batch,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut changed = false;
        // Other accounts whose changes or comments went in: what they did
        // is recorded in this account's trail.
        let mut edited_by = BTreeSet::new();
        let mut commented_by = BTreeSet::new();
        let mut sync = self.docs().sync_record(doc)?;
        let refused_before = report.refused.len();
        let has_body = self.store.has_body(doc)?;
        if let Some((seq, snap)) = batch.snapshot {
            let summary_ok = serde_json::from_slice::<Summary>(&snap.summary).is_ok();
            if !has_body && summary_ok {
                self.docs().store_snapshot(doc, &snap.doc, &snap.summary)?;
                report.snapshots_in += 1;
            } else if let Err(e) = self.docs().apply_batch(doc, &snap.doc) {
                report.refused.push(RefusedEnvelope {
                    doc: *doc,
                    seq,
                    reason: format!("snapshot does not merge: {e}"),
                });
            } else {
                report.received += 1;
            }
            sync.since_snapshot = 0;
            changed = true;
        }
        if !batch.changes.is_empty() {
            let all: Vec<u8> = batch
                .changes
                .iter()
                .flat_map(|(_, b, _)| b.iter().copied())
                .collect();
            if self.docs().apply_batch(doc, &all).is_ok() {
                report.received += batch.changes.len();
                sync.since_snapshot += batch
                    .changes
                    .iter()
                    .map(|(_, b, _)| snapshot_weight(b.len()))
                    .sum::<u64>();
                edited_by.extend(batch.changes.iter().map(|(_, _, a)| *a));
            } else {
                // One bad change must not hold back the others: find it.
                for (seq, body, author) in &batch.changes {
                    match self.docs().apply_batch(doc, body) {
                        Ok(()) => {
                            report.received += 1;
                            sync.since_snapshot += snapshot_weight(body.len());
                            edited_by.insert(*author);
                        }
                        Err(e) => report.refused.push(RefusedEnvelope {
                            doc: *doc,
                            seq: *seq,
                            reason: format!("does not merge: {e}"),
                        }),
                    }
                }
            }
            changed = true;
        }
        // A comment may build on another comment, or on a change that waits
        // for another comment: apply in passes until nothing more goes in.
        let mut waiting = batch.comments;
        loop {
            let before = waiting.len();
            let mut next = Vec::new();
            for (seq, body, author) in waiting {
                match self.apply_comment_change(doc, &body) {
                    Ok(true) => {
                        report.received += 1;
                        changed = true;
                        commented_by.insert(author);
                    }
                    Ok(false) => next.push((seq, body, author)),
                    // This device's own store failing is no verdict on
                    // the change: the round fails and nothing is marked seen.
                    Err(e @ Error::Store(_)) => return Err(e),
                    Err(e) => report.refused.push(RefusedEnvelope {
                        doc: *doc,
                        seq,
                        reason: format!("a commenter's change does more than comment: {e}"),
                    }),
                }
            }
            waiting = next;
            if waiting.is_empty() || waiting.len() == before {
                break;
            }
        }
        // What still waits for the changes it builds on is asked for again
        // next round: the seen mark stops before the first of it.
        let mut seen = batch.seen;
        for (seq, _, _) in &waiting {
            seen = seen.min(seq.saturating_sub(1));
            report.refused.push(RefusedEnvelope {
                doc: *doc,
                seq: *seq,
                reason: "a commenter's change waits for changes it builds on; asked for again next round".into(),
            });
        }
        sync.seen = sync.seen.max(seen);
        sync.top_epoch = sync.top_epoch.max(batch.top_epoch);
        self.store.set_doc_sync(doc, sync)?;
        if batch.recovered > 0 && changed && report.refused.len() == refused_before {
            self.trail().record(
                &format!(
                    "{} change(s) made on this device came back from the relay: they were lost here (a power cut, or a restore from a backup)",
                    batch.recovered
                ),
                Some(*doc),
            )?;
        }
        let me = self.account_id();
        edited_by.remove(&me);
        commented_by.remove(&me);
        // A colleague's edits and comments are on the owner's record:
        // who changed the case, as this device received it.
        for (who, did) in edited_by
            .iter()
            .map(|a| (a, "edited"))
            .chain(commented_by.iter().map(|a| (a, "commented on")))
        {
            let name = self.name_of(who)?;
            self.trail()
                .record(&format!("{name} {did} the case"), Some(*doc))?;
        }
        if changed {
            report.docs_updated += 1;
        }
        Ok(())
    }
}

/// One document's fetched envelopes, waiting to be applied together.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) snapshot: Option<(u64, SnapshotBody)>,
    /// Writers' changes: sequence number, body, and the account that wrote it.
    pub(super) changes: Vec<(u64, zeroize::Zeroizing<Vec<u8>>, AccountId)>,
    /// Changes from members who may only comment, checked one by one.
    pub(super) comments: Vec<(u64, zeroize::Zeroizing<Vec<u8>>, AccountId)>,
    /// Highest sequence number fetched.
    pub(super) seen: u64,
    /// Highest key epoch of the envelopes taken so far (see
    /// [`crate::store::DocSync::top_epoch`]).
    pub(super) top_epoch: u32,
    /// How many of the changes are this device's own, which it no longer
    /// held: lost here in a power cut, or written after the backup it was
    /// restored from.
    pub(super) recovered: usize,
}
