//! Applying one document's fetched envelopes: a snapshot, the changes of
//! its writers in one Automerge call, then commenters' changes, each judged
//! where it was written.

use std::collections::BTreeSet;

use casebook_shared::ids::{AccountId, DeviceId, DocId};

use super::{Incomplete, RefusedEnvelope, SyncReport, snapshot_weight};
use crate::docs::{SnapshotBody, Summary};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::notes::NoteError;
use crate::notes::lineage::holds_operations;
use crate::sharing::CommentRefusal;

impl Home {
    /// Applies one document's fetched batch and records how far it has seen.
    pub(super) fn apply_fetched(
        &mut self,
        doc: &DocId,
        mut batch: Batch,
        report: &mut SyncReport,
    ) -> Result<Applied> {
        let mut changed = false;
        // Other accounts whose changes or comments went in: what they did
        // is recorded in this account's trail.
        let mut edited_by = BTreeSet::new();
        let mut commented_by = BTreeSet::new();
        let mut sync = self.docs().sync_record(doc)?;
        // As `check::plan` (and `Pulling::recheck`) decide: such a document
        // was fetched whole.
        let fetched_whole = sync.seen == 0 || sync.missing > 0 || batch.rewind || batch.recheck;
        // Fetched whole because the relay showed it lost data: what is held
        // here and was not served goes back (judged before what is held
        // already is set aside below). This subsumes the snapshot's checks.
        if batch.recheck && self.store.has_body(doc)? {
            let served: Vec<&[u8]> = batch
                .changes
                .iter()
                .chain(&batch.comments)
                .map(|c| &c.body[..])
                .chain(batch.echoes.iter().map(|b| &b[..]))
                .collect();
            let snapshot = batch.snapshot.as_ref().map(|(_, s)| &s.doc[..]);
            report.resent += self.send_unserved(doc, snapshot, &served)?;
        }
        let refused_before = report.refused.len();
        let has_body = self.store.has_body(doc)?;
        // Whether the document was loaded and changed here this round, so
        // that what it lacks can be asked of it without loading it for
        // that alone (a snapshot is stored without loading).
        let mut loaded = sync.missing > 0;
        // Changes of a document not held here yet whose first changes are
        // missing: they cannot even wait inside it.
        let mut unfounded: Vec<Taken> = Vec::new();
        if let Some((seq, snap)) = &batch.snapshot {
            let seq = *seq;
            let summary_ok = serde_json::from_slice::<Summary>(&snap.summary).is_ok();
            if !has_body && summary_ok {
                self.docs().store_snapshot(doc, &snap.doc, &snap.summary)?;
                report.snapshots_in += 1;
                changed = true;
            } else {
                loaded = true;
                // The snapshot holds every change the relay stored up to
                // it. Where that is past every upload of this device's
                // own, the snapshot must hold them all: one it lacks was
                // lost by the relay, and is sent again.
                if sync.acked > 0 && seq >= sync.acked && !batch.recheck {
                    report.resent += self.send_lost_again(doc, Some(&snap.doc))?;
                }
                // So must it hold every change this device fetched: each
                // was served at or below the seen mark (see `forward_lost`).
                if sync.seen > 0 && sync.missing == 0 && seq >= sync.seen && !batch.recheck {
                    report.resent += self.forward_lost(doc, seq, &snap.doc)?;
                }
                match self.docs().apply_batch(doc, &snap.doc) {
                    Err(e) => report.refused.push(RefusedEnvelope {
                        doc: *doc,
                        seq,
                        reason: format!("snapshot does not merge: {e}"),
                    }),
                    Ok(false) => {}
                    Ok(true) => {
                        report.received += 1;
                        changed = true;
                    }
                }
            }
            // Fetched again, a snapshot held here already is nobody's news.
            sync.since_snapshot = 0;
        }
        // What is held already (fetched again: the document was
        // incomplete, a refusal held the seen mark back, or the relay lost
        // what was seen) changes nothing and is nobody's news.
        if self.store.has_body(doc)? {
            for list in [&mut batch.changes, &mut batch.comments] {
                let mut kept = Vec::with_capacity(list.len());
                for c in list.drain(..) {
                    if !self.docs().holds_changes(doc, &c.body)? {
                        kept.push(c);
                    }
                }
                *list = kept;
            }
        }
        if !batch.changes.is_empty() {
            loaded = true;
            let all: Vec<u8> = batch
                .changes
                .iter()
                .flat_map(|c| c.body.iter().copied())
                .collect();
            match self.docs().apply_batch(doc, &all) {
                // Fetched again (the document was incomplete, or a refusal
                // before them held the seen mark back): nothing new.
                Ok(false) => {}
                Ok(true) => {
                    report.received += batch.changes.len();
                    sync.since_snapshot += batch
                        .changes
                        .iter()
                        .map(|c| snapshot_weight(c.body.len()))
                        .sum::<u64>();
                    // A mark after a snapshot edits nothing.
                    let me = self.account_id();
                    edited_by.extend(
                        batch
                            .changes
                            .iter()
                            .filter(|c| c.account != me && holds_operations(&c.body))
                            .map(|c| c.account),
                    );
                }
                // One bad change must not hold back the others: find it.
                Err(_) => {
                    for c in &batch.changes {
                        let (seq, body, author) = (&c.seq, &c.body, &c.account);
                        match self.docs().apply_batch(doc, body) {
                            Ok(false) => {}
                            Ok(true) => {
                                report.received += 1;
                                sync.since_snapshot += snapshot_weight(body.len());
                                if holds_operations(body) {
                                    edited_by.insert(*author);
                                }
                            }
                            // Nothing here to wait in: the document's
                            // first changes have not arrived.
                            Err(Error::Note(NoteError::MissingDeps)) => unfounded.push(c.clone()),
                            Err(e) => report.refused.push(RefusedEnvelope {
                                doc: *doc,
                                seq: *seq,
                                reason: format!("does not merge: {e}"),
                            }),
                        }
                    }
                }
            }
            changed = true;
        }
        // A comment may build on another comment, or on a change that waits
        // for another comment: apply in passes until nothing more goes in.
        let mut waiting = batch.comments.clone();
        loop {
            let before = waiting.len();
            let mut next = Vec::new();
            for c in waiting {
                loaded = true;
                match self.apply_comment_change(doc, &c.body) {
                    Ok(true) => {
                        report.received += 1;
                        changed = true;
                        commented_by.insert(c.account);
                    }
                    Ok(false) => next.push(c),
                    // This device's own store failing is no verdict on
                    // the change: the round fails and nothing is marked seen.
                    Err(e @ Error::Store(_)) => return Err(e),
                    // Nothing here to judge it in: the document's first
                    // changes have not arrived. It waits, as a writer's
                    // change does, and what it builds on is asked for.
                    Err(Error::Comment(CommentRefusal::DocNotHeld)) => unfounded.push(c),
                    Err(e) => report.refused.push(RefusedEnvelope {
                        doc: *doc,
                        seq: c.seq,
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
        // next round: the seen mark stops before the first of it, as it
        // does before an envelope refused for what the relay could mend.
        let mut stop = batch.stop;
        for c in &unfounded {
            stop = Some(stop.map_or(c.seq, |s| s.min(c.seq)));
        }
        for c in &waiting {
            stop = Some(stop.map_or(c.seq, |s| s.min(c.seq)));
            report.refused.push(RefusedEnvelope {
                doc: *doc,
                seq: c.seq,
                reason: WAITS.into(),
            });
        }
        // Sequence numbers run across documents: the mark is the last
        // envelope of this one fetched before the stop, not the number
        // before it (which the relay may never have given this document).
        let seen = match stop {
            None => batch.seen,
            Some(stop) => batch
                .fetched
                .iter()
                .copied()
                .filter(|&q| q < stop)
                .max()
                .unwrap_or(0),
        };
        sync.seen = sync.seen.max(seen);
        if batch.rewind {
            self.heal_rewound(doc, &mut sync, seen, &batch, report)?;
        }
        if !unfounded.is_empty() && !self.store.has_body(doc)? {
            let mut missing: Vec<crate::notes::ChangeHash> = unfounded
                .iter()
                .flat_map(|c| crate::notes::base_of(&c.body).unwrap_or_default())
                .collect();
            missing.sort();
            missing.dedup();
            sync.missing = missing.len().max(1) as u64;
            self.want(doc, &missing)?;
            report.incomplete.retain(|x| x.doc != *doc);
            let mut waiting: Vec<(DeviceId, usize)> = Vec::new();
            for c in &unfounded {
                match waiting.iter_mut().find(|(d, _)| *d == c.author) {
                    Some((_, n)) => *n += 1,
                    None => waiting.push((c.author, 1)),
                }
            }
            report
                .incomplete
                .push(Incomplete::new(*doc, &missing, waiting));
        } else if loaded {
            let mut missing = self.docs().missing_deps(doc)?;
            // A commenter's change waits outside the document, checked one
            // by one: what it builds on and the document lacks is missing
            // as much as what a writer's waiting change builds on.
            // (Their base as one batch: one waiting comment built on
            // another is not missing.)
            if !waiting.is_empty() {
                let all: Vec<u8> = waiting
                    .iter()
                    .flat_map(|c| c.body.iter().copied())
                    .collect();
                let base = crate::notes::base_of(&all).unwrap_or_default();
                missing.extend(self.docs().lacking(doc, &base)?);
                missing.sort();
                missing.dedup();
            }
            // A claimed change not here keeps the document incomplete until
            // the claim is judged again (see `claims`).
            let claimed: Vec<crate::notes::ChangeHash> = self
                .store
                .unmet_claims(doc)?
                .into_iter()
                .map(crate::notes::ChangeHash)
                .collect();
            let unmet = self.docs().lacking(doc, &claimed)?.len();
            sync.missing = (missing.len() + unmet) as u64;
            // A later pull of the round knows better.
            report.incomplete.retain(|x| x.doc != *doc);
            if missing.is_empty() {
                self.store.forget_met_wants(doc)?;
            } else {
                self.want(doc, &missing)?;
                report
                    .incomplete
                    .push(self.incomplete(doc, &missing, &batch)?);
            }
        }
        // Past a stop, the envelopes are fetched again next round: the
        // fence they raised must not judge the one before them. Those
        // before it the seen mark passes, and what is fetched after the
        // mark comes after them: their fence stands.
        let fence = match stop {
            None => batch.top_epoch,
            Some(stop) => batch
                .fences
                .iter()
                .filter(|(q, _)| *q < stop)
                .map(|(_, e)| *e)
                .max()
                .unwrap_or(0),
        };
        sync.top_epoch = sync.top_epoch.max(fence);
        if batch.reordered {
            sync.missing = sync.missing.max(1);
        }
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
        Ok(Applied {
            whole: fetched_whole,
            lacking: !fetched_whole && sync.missing > 0,
        })
    }
}

impl Home {
    /// Names what `doc` lacks: the missing changes, and whose fetched
    /// changes wait for them.
    fn incomplete(
        &mut self,
        doc: &DocId,
        missing: &[crate::notes::ChangeHash],
        batch: &Batch,
    ) -> Result<Incomplete> {
        let mut waiting: Vec<(DeviceId, usize)> = Vec::new();
        for c in batch.changes.iter().chain(&batch.comments) {
            if self.docs().holds_changes(doc, &c.body)? {
                continue;
            }
            match waiting.iter_mut().find(|(d, _)| *d == c.author) {
                Some((_, n)) => *n += 1,
                None => waiting.push((c.author, 1)),
            }
        }
        Ok(Incomplete::new(*doc, missing, waiting))
    }
}

/// Why a commenter's change is not applied yet: what it builds on has not
/// arrived. A round that fetches its document again from the start drops
/// this refusal (see `Round::pulled`).
pub(super) const WAITS: &str =
    "a commenter's change waits for changes it builds on; asked for again next round";

/// What applying a document's batch found.
pub(super) struct Applied {
    /// The document was fetched from its start this pull.
    pub(super) whole: bool,
    /// It came to lack changes its new ones build on though it was fetched
    /// only from its seen mark: what it lacks may lie below the mark (a
    /// repaired relay puts back what it lost where it was, a swap left it
    /// at another's place), and a fetch from its start may find it.
    pub(super) lacking: bool,
}

/// A fetched change, checked and opened.
#[derive(Clone)]
pub(super) struct Taken {
    pub(super) seq: u64,
    pub(super) body: zeroize::Zeroizing<Vec<u8>>,
    /// The account that wrote it, and its device.
    pub(super) account: AccountId,
    pub(super) author: DeviceId,
}

/// One document's fetched envelopes, waiting to be applied together.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) snapshot: Option<(u64, SnapshotBody)>,
    /// Writers' changes.
    pub(super) changes: Vec<Taken>,
    /// Changes from members who may only comment, checked one by one.
    pub(super) comments: Vec<Taken>,
    /// Highest sequence number fetched, and every one fetched.
    pub(super) seen: u64,
    pub(super) fetched: Vec<u64>,
    /// The relay holds fewer of the document's envelopes than this device
    /// has seen (see [`super::check::Need::rewind`]): what was fetched is
    /// everything it has.
    pub(super) rewind: bool,
    /// Fetched whole because the relay showed this round that it lost data
    /// (see [`super::heal::RECHECK`]): what it did not serve goes back.
    pub(super) recheck: bool,
    /// With [`Batch::recheck`], the bodies of changes held here already that
    /// the relay served and were set aside unapplied: this device's own
    /// echoes, and copies refused for the relay's order.
    pub(super) echoes: Vec<zeroize::Zeroizing<Vec<u8>>>,
    /// The first envelope refused for something the relay could have done
    /// (damaged, moved, an author or key not known yet): the seen mark
    /// stops before it, so a repaired relay delivers it next round.
    pub(super) stop: Option<u64>,
    /// Highest key epoch of the envelopes taken so far (see
    /// [`crate::store::DocSync::top_epoch`]).
    pub(super) top_epoch: u32,
    /// How many of the changes are this device's own, which it no longer
    /// held: lost here in a power cut, or written after the backup it was
    /// restored from.
    pub(super) recovered: usize,
    /// The fence ([`Batch::top_epoch`]) after each envelope taken, in
    /// relay order: what the seen mark passes when it stops early.
    pub(super) fences: Vec<(u64, u32)>,
    /// An envelope was refused only for the relay's order (see
    /// [`super::check::Refused::AfterRemoval`]): the document is fetched
    /// again from its start, its fence rising from nothing.
    pub(super) reordered: bool,
}
