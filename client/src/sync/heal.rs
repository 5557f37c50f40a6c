//! Healing a relay that lost what its devices hold: a device sends back
//! what it holds and the relay lacks. Its own changes, as new envelopes,
//! where a snapshot or a restored relay shows them missing; the access
//! entries it signed, where the relay's access log is shorter than the one
//! held here. Nothing the relay serves is taken on its word: only what this
//! device holds (and signed, or holds signed) goes back.

use std::collections::HashMap;

use casebook_shared::access::Role;
use casebook_shared::frames::DocHead;
use casebook_shared::ids::DocId;

use super::SyncReport;
use super::apply::Batch;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::net::Relay;
use crate::store::OutKind;

/// The most bytes of changes sent again in one envelope: well inside an
/// envelope's limit, so a long loss goes back in several.
const RESEND_BYTES: usize = 1024 * 1024;

impl Home {
    /// After fetching again everything the relay has of `doc`, which holds
    /// fewer of its envelopes than this device had seen (restored from an
    /// older copy, or losing data): the seen mark starts again from the
    /// relay's numbers, and what this device holds goes back to the relay:
    /// its own changes that the relay's snapshot lacks (all of them where
    /// it has none), as new envelopes that every device fetches, whatever
    /// it had seen; and, from an owner's device, a snapshot this round,
    /// which holds every change it has (others' too) for a device that
    /// starts from the relay's numbers. Own changes the relay still has
    /// go again too: each device takes a change it holds once.
    pub(super) fn heal_rewound(
        &mut self,
        doc: &DocId,
        sync: &mut crate::store::DocSync,
        seen: u64,
        batch: &Batch,
        report: &mut SyncReport,
    ) -> Result<()> {
        sync.seen = seen;
        sync.acked = 0;
        sync.since_snapshot = sync.since_snapshot.max(super::SNAPSHOT_EVERY);
        if !self.is_audit_doc(doc) {
            let snapshot = batch.snapshot.as_ref().map(|(_, s)| &s.doc[..]);
            report.resent += self.send_lost_again(doc, snapshot)?;
        }
        report.rewound.push(*doc);
        self.trail().record(
            "the relay held less of this document than this device had seen (restored from an older copy, or losing data): fetched again, and what this device holds sent back",
            Some(*doc),
        )
    }

    /// Queues again this device's changes to `doc` that the snapshot
    /// `saved` lacks (with none, all of them); records
    /// it in the trail, and returns how many.
    pub(super) fn send_lost_again(&mut self, doc: &DocId, saved: Option<&[u8]>) -> Result<usize> {
        let mut pending = Vec::new();
        for row in self.store.outbox()? {
            if row.doc == *doc && row.kind != OutKind::Access {
                pending.extend_from_slice(&row.payload);
            }
        }
        let device = self.device_id();
        let lost = match self
            .docs()
            .own_changes_not_in(doc, saved, &device.0, &pending)
        {
            Ok(found) => found,
            Err(e @ Error::Store(_)) => return Err(e),
            // A snapshot that does not load is refused when it is merged.
            Err(_) => return Ok(0),
        };
        self.queue_resend(doc, lost)
    }

    /// Queues again `lost`, changes this device made to `doc`, if this
    /// account may still send them; records it in the trail, and returns
    /// how many.
    pub(super) fn queue_resend(&mut self, doc: &DocId, lost: Vec<Vec<u8>>) -> Result<usize> {
        if lost.is_empty() {
            return Ok(0);
        }
        let count = lost.len();
        let role = self
            .access()
            .doc_meta(doc)?
            .and_then(|m| m.role_of(&self.account_id(), self.now()));
        let kind = match role {
            Some(Role::Comment) => OutKind::Comment,
            Some(r) if r.can_upload() => OutKind::Change,
            // No longer this account's to send: the change stays here.
            _ => return Ok(0),
        };
        // In envelopes of at most a page each, in order.
        let mut batch = Vec::new();
        for change in lost {
            if !batch.is_empty() && batch.len() + change.len() > RESEND_BYTES {
                self.store
                    .push_outbox(doc, kind, &std::mem::take(&mut batch))?;
            }
            batch.extend_from_slice(&change);
        }
        self.store.push_outbox(doc, kind, &batch)?;
        self.trail().record(
            &format!(
                "{count} change(s) made on this device were missing from the relay (lost, or restored from an older copy): sent again"
            ),
            Some(*doc),
        )?;
        Ok(count)
    }

    /// Where the relay's listing shows a shorter access log than the one
    /// held here (`confirmed`: each document's entries less what is queued
    /// here to send), sends back the entries it lacks, when this device
    /// signed every one of them (the relay takes a device's own entries
    /// only), and counts them as the relay's in `heads`. What cannot be
    /// sent back is left for [`super::check::plan`] to refuse as a
    /// rollback: the device that signed it sends it back when it syncs.
    /// Returns the documents healed.
    pub(super) async fn heal_access(
        &mut self,
        relay: &Relay,
        heads: &mut [DocHead],
        confirmed: &HashMap<DocId, u64>,
    ) -> Result<Vec<DocId>> {
        let me = self.device_id();
        let mut healed = Vec::new();
        for head in heads.iter_mut() {
            let Some(&confirmed) = confirmed.get(&head.doc) else {
                continue;
            };
            if head.access_len >= confirmed {
                continue;
            }
            let log = self.access().access_log(&head.doc)?;
            let Some(lost) = log.get(head.access_len as usize..confirmed as usize) else {
                continue;
            };
            if lost.is_empty() || lost.iter().any(|e| e.signer != me) {
                continue;
            }
            self.push_access(relay, &head.doc, lost.to_vec()).await?;
            self.trail().record(
                &format!(
                    "the relay's access log lacked {} entr(ies) signed on this device (restored from an older copy, or losing data): sent back",
                    lost.len()
                ),
                Some(head.doc),
            )?;
            head.access_len = confirmed;
            healed.push(head.doc);
        }
        Ok(healed)
    }
}
