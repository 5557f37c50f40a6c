//! A watcher told that a document changed fetches that document at once,
//! before the rest of its round: a change typed on one device shows on
//! another without waiting for account logs and the relay's whole listing.
//!
//! Only what it can judge exactly as the full round would is taken here:
//! changes and snapshots of documents this device holds, under key epochs
//! and from devices it already knows, in one page. Anything else (an
//! unknown epoch or device, a refusal, more than a page, the audit
//! document) leaves everything as it was, and the round that follows
//! fetches and judges it with the newest logs.

use std::collections::BTreeMap;

use casebook_shared::account::AccountState;
use casebook_shared::frames::Response;
use casebook_shared::ids::{AccountId, DocId};

use super::apply::Batch;
use super::paging::{Paging, Placed};
use super::{Progress, SyncReport, unexpected};
use crate::error::Result;
use crate::home::Home;
use crate::net::Relay;

impl Home {
    /// Fetches, checks and applies what the relay said changed in `told`
    /// (documents and their newest sequence numbers); what it took, or an
    /// empty report when it left it all to the next round.
    pub(super) async fn pull_told(
        &mut self,
        relay: &Relay,
        told: &[(DocId, u64)],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        // The account logs this session verified; a device not among them
        // is left to the round, which fetches its account's log first.
        let accounts: BTreeMap<AccountId, AccountState> = self.verified_logs.states();
        let mut after: Vec<(DocId, u64)> = Vec::new();
        for (doc, seq) in told {
            if after.iter().any(|(d, _)| d == doc) || self.is_audit_doc(doc) {
                continue;
            }
            match self.doc_meta(doc)? {
                Some(meta) if !meta.disposed => {}
                _ => continue,
            }
            let seen = self.sync_record(doc)?.seen;
            if *seq > seen {
                after.push((*doc, seen));
            }
        }
        if after.is_empty() || accounts.is_empty() {
            return Ok(report);
        }
        let mut paging = Paging::new(after);
        let Some(request) = paging.request() else {
            return Ok(report);
        };
        let (items, more) = match relay.request(&request).await? {
            Response::Changes { items, more } => (items, more),
            r => return Err(unexpected(r)),
        };
        if more {
            return Ok(report);
        }
        let Ok(placed) = paging.page(items, more) else {
            return Ok(report);
        };
        let mut batches: BTreeMap<DocId, Batch> = BTreeMap::new();
        for p in placed {
            let Placed::Take(item) = p else {
                return Ok(report);
            };
            self.take_into(&mut batches, &item, &accounts, &mut report)?;
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
            applied = self.apply_fetched(&doc, batch, &mut report);
            if applied.is_err() {
                break;
            }
        }
        let keep = applied.is_ok() && report.refused.is_empty();
        if !keep {
            self.loaded.clear();
        }
        let ended = self.store.end(started, keep);
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
        Ok(report)
    }
}
