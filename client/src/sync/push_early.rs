//! An edit sent before the round catches up. The round refreshes every
//! account log and pulls every document before it seals anything, so a
//! change never goes out under a key that a member removed meanwhile
//! holds; that costs several round trips between a save and the moment
//! another device can see it. Here what the outbox holds goes out first,
//! as [`Request::UploadLatest`]: the relay stores only what is sealed
//! under its document's newest epoch (fenced against an access change
//! landing meanwhile), and refuses the rest, which stays queued for the
//! round to seal again and send.
//!
//! A share that expired, or a member's account key replaced (a device of
//! theirs revoked), calls for a rotation that only the owner's devices
//! make, in the round; until it lands the newest epoch is not safe to seal
//! under. The relay refuses an early edit to such a document by the logs
//! it holds, and this device leaves it to the round by what its last round
//! learnt. So this path runs only within [`FRESH_FOR`] of a full round in
//! this session, and leaves to the round every document for which that
//! round's knowledge is not enough.

use std::collections::BTreeSet;

use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::DocId;

use super::sending::{DocTerms, Mode, Sending, Step};
use super::{unexpected, upkeep};
use crate::error::Result;
use crate::home::Home;
use crate::net::Relay;

/// Seconds after a full round began to read the account logs in which
/// what it learnt of members' account keys is trusted to seal an edit
/// before catching up. A person typing saves every second or two, and each
/// save's round renews it; after a pause the first edit takes the round's
/// way. Trusted alone, it would cost this: a member's device revoked within
/// the window (its account key replaced, the rotation not yet made by the
/// owner's devices) could be sent edits under the key it held, readable by
/// whoever holds that device and the relay's bytes; the round's way has
/// such a window too, between its refresh and its upload, only shorter. So
/// the relay judges it as well: it refuses an early edit to a document
/// whose rotation is owed by the logs it holds (`rotation_due` in the
/// relay), and the window left is one account-log append racing one
/// upload, as on the round's way.
pub(crate) const FRESH_FOR: u64 = 10;

impl Home {
    /// Sends the queued changes that may go before the round catches up;
    /// returns how many the relay acknowledged, and how many it refused
    /// because their document's access moved on. Anything it refuses, and
    /// any failure to reach it, leaves the rows queued for the round.
    pub(super) async fn push_early(&mut self, relay: &Relay) -> Result<(usize, usize)> {
        if !self.sends_early()? {
            return Ok((0, 0));
        }
        let now = self.now();
        let last = self.last_round()?;
        let held: Vec<DocId> = (last.iter())
            .flat_map(|l| l.held.iter().map(|h| h.doc))
            .collect();
        // A case kept under a legal hold holds its rows for good; one of
        // its access rows must not keep every other edit from going early.
        // Nor does one a refused account log is part of (see `logs`), nor
        // one the last round held back (its access log refused), nor one
        // a turn left due to move to a new key (see `sync::turn`).
        let mut waits = self.kept_under_hold()?;
        waits.extend(last.into_iter().flat_map(|l| l.held_back));
        waits.extend(self.rotations_due()?);
        let mut rows = self.store.outbox()?;
        for row in &rows {
            if !waits.contains(&row.doc) && self.on_a_refused_log(&row.doc)?.is_some() {
                waits.insert(row.doc);
            }
        }
        rows.retain(|r| !waits.contains(&r.doc));
        // What each is sealed after: the relay takes it only where its
        // access log ends there too (see `Request::UploadLatest`).
        let mut heads = Vec::new();
        for doc in rows.iter().map(|r| r.doc).collect::<BTreeSet<_>>() {
            let len = self.docs().sync_record(&doc)?.access_len;
            if let Some(head) = len
                .checked_sub(1)
                .map(|at| self.access_entry_hash(&doc, at))
            {
                heads.extend(head?.map(|h| (doc, h)));
            }
        }
        let mut sending = Sending::new(Mode::Early, rows, BTreeSet::new()).skip(held);
        let mut moved = 0;
        loop {
            match sending.poll() {
                Step::Terms(doc) => {
                    let terms = self.early_terms(&doc, now)?;
                    sending.terms(doc, terms);
                }
                // One that cannot be sealed here (no key, too large) is the
                // round's to report, after it has caught up.
                Step::Seal(row, epoch) => match self.envelope_for(&row, epoch) {
                    Ok(envelope) => sending.sealed(row.id, row.doc, envelope),
                    Err(_) => sending.unsealable(row.doc),
                },
                Step::Upload(envelopes) => {
                    let n = envelopes.len();
                    // The edits are made durable here while the upload
                    // travels and the relay stores it: neither waits for
                    // the other's disk. The answer is taken only once both
                    // are; if this device's commit is lost after all (the
                    // power fails now), it takes its change back from the
                    // relay, as its own echo it does not hold.
                    let heads = heads.clone();
                    let sent = relay
                        .send(&Request::UploadLatest { envelopes, heads })
                        .await;
                    self.store.durable_barrier()?;
                    let answer = match sent {
                        Ok(sent) => sent.answer().await,
                        Err(e) => Err(e),
                    };
                    let results = match answer {
                        Ok(Response::Uploaded { results }) if results.len() == n => results,
                        Ok(r) => return Err(unexpected(r)),
                        Err(e) => {
                            tracing::debug!(error = %e, "sending edits before the round failed; the round sends them");
                            return Ok((0, 0));
                        }
                    };
                    let uploaded = sending.uploaded(&results);
                    self.rename_conflicted(&uploaded.conflicted)?;
                    self.store_acks(&uploaded.acked)?;
                    moved += uploaded.moved;
                }
                // Not in this mode: access rows are left to the round, and
                // a document disposed of has no early terms.
                Step::Access(_) | Step::Retire(_) | Step::Progress { .. } => {}
                Step::Done => break,
            }
        }
        Ok((sending.acknowledged(), moved))
    }

    /// Whether the next sync sends what is queued before it catches up:
    /// within [`FRESH_FOR`] of when the last full round of this session
    /// began to read the account logs (never from a time ahead of the
    /// clock, one set back), and not on a home restored from a backup
    /// that has not caught up with itself.
    pub(crate) fn sends_early(&self) -> Result<bool> {
        let now = self.now();
        let fresh = self
            .synced
            .caught_up_at
            .is_some_and(|at| at <= now && now - at <= FRESH_FOR);
        Ok(fresh && self.restored_at()?.is_none())
    }

    /// This account's role in `doc` and the epoch to seal under, if what
    /// the last round learnt is enough to seal an edit to it now: not an
    /// owned document with a share expired or a member whose account key
    /// changed since the newest epoch's keys were sealed (its rotation is
    /// due), nor one disposed of.
    fn early_terms(&self, doc: &DocId, now: u64) -> Result<Option<DocTerms>> {
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(None);
        };
        let me = self.account_id();
        let Some(role) = meta.role_of(&me, now).filter(|_| !meta.disposed) else {
            return Ok(None);
        };
        if meta.owner == me {
            let u = upkeep(&meta, &me, now, |a| {
                self.synced.verified_logs.get(a).map(|st| st.key.generation)
            });
            if u.due() || !u.unknown.is_empty() {
                return Ok(None);
            }
        }
        Ok(Some(DocTerms {
            role: Some(role),
            epoch: meta.epoch,
            disposed: false,
        }))
    }
}
