//! The pull half of a round: the relay's listing checked against what
//! this device has seen, new access entries taken (or this device's unsent
//! ones replayed on top of them), envelopes fetched in pages and checked
//! one by one, then applied a document at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casebook_shared::access::{DocEntry, DocOp, SIG_LABEL as ACCESS_SIG};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::envelope::{Envelope, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response, Stored};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::apply::Batch;
use super::paging::{Paging, Placed};
use super::{APPLY_CHUNK, Progress, RefusedEnvelope, RollbackError, SyncReport, check, unexpected};
use crate::docs::SnapshotBody;
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};

impl Home {
    /// Lists, fetches, checks and applies what other devices wrote.
    pub(super) async fn pull(
        &mut self,
        relay: &Relay,
        accounts: &mut BTreeMap<AccountId, AccountState>,
        report: &mut SyncReport,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<BTreeSet<DocId>> {
        let mut heads = match relay.request(&Request::ListDocs { since: 0 }).await? {
            Response::Docs { docs, .. } => docs,
            r => return Err(unexpected(r)),
        };
        let audit = crate::audit_sync::audit_doc(&self.account_id());
        if self.doc_meta(&audit)?.is_none() && !heads.iter().any(|h| h.doc == audit) {
            self.ensure_audit_doc(relay, false).await?;
            heads = match relay.request(&Request::ListDocs { since: 0 }).await? {
                Response::Docs { docs, .. } => docs,
                r => return Err(unexpected(r)),
            };
        }
        let me = self.account_id();
        // Access entries signed here but not sent yet are not on the relay:
        // compare the relay's log with the part of ours it has had.
        let mut unsent: HashMap<DocId, u64> = HashMap::new();
        for row in self.store.access_outbox()? {
            let entries: Vec<Signed> = codec::decode(&row.payload)?;
            *unsent.entry(row.doc).or_default() += entries.len() as u64;
        }
        let mut held = BTreeMap::new();
        for doc in self.store.doc_ids()? {
            let meta = self.doc_meta(&doc)?;
            // This device's own disposal, once the relay has it (nothing of
            // it waits to be sent), is carried out here as on every other.
            if !unsent.contains_key(&doc) && meta.as_ref().is_some_and(|m| m.disposed) {
                let by = self.name().to_string();
                self.purge_doc(&doc, &by)?;
                continue;
            }
            let mut sync = self.sync_record(&doc)?;
            sync.access_len -= unsent.get(&doc).copied().unwrap_or(0).min(sync.access_len);
            let owned = meta.is_some_and(|m| m.owner == me);
            held.insert(doc, (sync, owned));
        }
        let mut needs = check::plan(&heads, &held)?;
        // A disposal stays listed; once taken it is no news.
        let disposed = self.disposed_docs()?;
        needs.retain(|n| !disposed.contains(&n.doc));
        let listed: BTreeSet<DocId> = heads.iter().map(|h| h.doc).collect();
        self.atomically(|home| {
            for (doc, (_, owned)) in &held {
                if *owned {
                    continue;
                }
                if !listed.contains(doc) && home.share_ended(doc)? {
                    home.audit(
                        "share ended: the relay no longer serves it here",
                        Some(*doc),
                    )?;
                } else if listed.contains(doc) && home.share_listed(doc)? {
                    home.audit("shared with this account again", Some(*doc))?;
                }
            }
            Ok(())
        })?;
        let access_len: HashMap<DocId, u64> = heads.iter().map(|h| (h.doc, h.access_len)).collect();

        // A document whose new access entries do not verify is left as it
        // was this round (its changes too, since they may need the entries),
        // and the refusal is reported; the other documents go on.
        let mut fetched_logs = Vec::new();
        let mut held_back = BTreeSet::new();
        let mut purged = BTreeSet::new();
        for need in &needs {
            if let Some(from) = need.access_from {
                let entries = match relay
                    .request(&Request::GetAccess {
                        doc: need.doc,
                        from,
                    })
                    .await?
                {
                    Response::Log { entries } => entries,
                    r => return Err(unexpected(r)),
                };
                // A disposal is kept alone (the log before it is gone) and
                // checked alone; the document is then deleted here.
                if let Some(gone) = entries
                    .last()
                    .filter(|e| crate::app::disposal::is_disposal(e))
                {
                    match self.take_disposal(relay, &need.doc, gone, accounts).await? {
                        Ok(()) => {
                            purged.insert(need.doc);
                        }
                        Err(reason) => {
                            held_back.insert(need.doc);
                            report.refused.push(RefusedEnvelope {
                                doc: need.doc,
                                seq: from,
                                reason: format!("access log: {reason}"),
                            });
                        }
                    }
                    continue;
                }
                if from + entries.len() as u64 != access_len[&need.doc] {
                    return Err(RollbackError::AccessEntries {
                        doc: need.doc,
                        listed: access_len[&need.doc],
                        sent: from + entries.len() as u64,
                    }
                    .into());
                }
                match self.signers_known(relay, &entries, accounts).await? {
                    Ok(()) => fetched_logs.push((need.doc, entries)),
                    Err(reason) => {
                        held_back.insert(need.doc);
                        report.refused.push(RefusedEnvelope {
                            doc: need.doc,
                            seq: from,
                            reason: format!("access log: {reason}"),
                        });
                    }
                }
            }
        }
        let mut logs = fetched_logs.into_iter().peekable();
        while logs.peek().is_some() {
            let chunk: Vec<(DocId, Vec<Signed>)> = logs.by_ref().take(APPLY_CHUNK).collect();
            self.atomically(|home| {
                for (doc, entries) in &chunk {
                    // Entries signed here but not sent no longer continue the
                    // relay's log: another device of this account got there
                    // first. Replay them on top of it.
                    let confirmed = access_len[doc] - entries.len() as u64;
                    let refusal = if unsent.contains_key(doc) {
                        home.rebase_access(doc, confirmed, entries, accounts)?
                    } else {
                        home.accept_fetched_access(doc, entries, accounts)?
                    };
                    if let Some(reason) = refusal {
                        held_back.insert(*doc);
                        report.refused.push(RefusedEnvelope {
                            doc: *doc,
                            seq: confirmed,
                            reason: format!("access log: {reason}"),
                        });
                    }
                }
                Ok(())
            })?;
        }
        let needs: Vec<check::Need> = needs
            .into_iter()
            .filter(|n| !held_back.contains(&n.doc) && !purged.contains(&n.doc))
            .collect();

        // Envelopes are checked against their author's account log, and a
        // rotation seals to every member's account key: fetch the log of
        // every member not known yet (a colleague's, say, or one another
        // device of this account shared with).
        for need in &needs {
            let Some(meta) = self.doc_meta(&need.doc)? else {
                continue;
            };
            // Former members too: what they wrote while members stays.
            for member in meta.grants.iter().map(|g| g.account) {
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member) {
                    slot.insert(self.refresh_log(relay, &member).await?);
                }
            }
        }

        let mut paging = Paging::new(
            needs
                .iter()
                .filter_map(|n| n.changes_after.map(|s| (n.doc, s)))
                .collect(),
        );
        let mut batches: BTreeMap<DocId, Batch> = BTreeMap::new();
        let mut fetched_bytes = 0usize;
        while let Some(request) = paging.request() {
            let (items, more) = match relay.request(&request).await? {
                Response::Changes { items, more } => (items, more),
                r => return Err(unexpected(r)),
            };
            let placed = paging
                .page(items, more)
                .map_err(|fault| Error::Net(NetError::Protocol(fault.to_string())))?;
            for p in placed {
                match p {
                    Placed::Take(item) => {
                        fetched_bytes += item.envelope.len();
                        self.take_into(&mut batches, &item, accounts, report)?;
                    }
                    Placed::Replayed { doc, seq } => report.refused.push(RefusedEnvelope {
                        doc,
                        seq,
                        reason: "sent again or out of order".into(),
                    }),
                }
            }
            let (docs, of) = paging.progress();
            progress(Progress::Fetched {
                docs,
                of,
                bytes: fetched_bytes,
            });
        }

        // Applied in transactions of a few dozen documents: one fsync each,
        // and other processes on this home wait only briefly.
        let total = batches.len();
        let mut batches = batches.into_iter().peekable();
        let mut done = 0;
        while batches.peek().is_some() {
            let chunk: Vec<(DocId, Batch)> = batches.by_ref().take(APPLY_CHUNK).collect();
            // What was fetched can be fetched again: its commit need not
            // wait for the disk (see `Store::wait_for_disk`).
            self.store.wait_for_disk(false)?;
            let applied = self.atomically(|home| {
                for (doc, batch) in chunk {
                    home.apply_fetched(&doc, batch, report)?;
                }
                Ok(())
            });
            let restored = self.store.wait_for_disk(true);
            applied?;
            restored?;
            done = (done + APPLY_CHUNK).min(total);
            progress(Progress::Applied {
                docs: done,
                of: total,
            });
        }
        // After every disposal this pull carried out, one rebuild.
        self.rewrite_if_due()?;
        Ok(held_back)
    }

    /// Makes sure the account log of every signer of fetched access
    /// entries is held. `Ok(Err(reason))` when an entry does not open or
    /// names an account the relay does not have: the entries are refused.
    pub(super) async fn signers_known(
        &mut self,
        relay: &Relay,
        entries: &[Signed],
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<std::result::Result<(), String>> {
        for e in entries {
            let entry: DocEntry = match e.open(ACCESS_SIG) {
                Ok(entry) => entry,
                Err(err) => return Ok(Err(err.to_string())),
            };
            // The signer, to check the entry; a member it adds too, since
            // replaying this device's own unsent entries on top of it may
            // seal a new key to that member before this round ends.
            let added = match entry.op {
                DocOp::AddMember { member, .. } => Some(member),
                _ => None,
            };
            for (account, what) in
                std::iter::once((entry.account, "signed for")).chain(added.map(|m| (m, "adds")))
            {
                let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(account)
                else {
                    continue;
                };
                match self.refresh_log(relay, &account).await {
                    Ok(st) => {
                        slot.insert(st);
                    }
                    Err(Error::Net(NetError::Relay {
                        code: ErrorCode::NotFound,
                        ..
                    })) => {
                        return Ok(Err(format!(
                            "entry {} {what} account {}, which the relay does not have",
                            entry.seq,
                            account.short()
                        )));
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(Ok(()))
    }

    /// Checks one fetched envelope and adds it to its document's batch.
    /// Checks a fetched envelope into its document's batch (started
    /// from the document's sync record), which it moves the seen mark of.
    pub(super) fn take_into(
        &mut self,
        batches: &mut BTreeMap<DocId, Batch>,
        item: &Stored,
        accounts: &BTreeMap<AccountId, AccountState>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let batch = match batches.entry(item.doc) {
            std::collections::btree_map::Entry::Occupied(b) => b.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => slot.insert(Batch {
                top_epoch: self.sync_record(&item.doc)?.top_epoch,
                ..Batch::default()
            }),
        };
        batch.seen = item.seq;
        self.take_item(item, accounts, batch, report)
    }

    pub(super) fn take_item(
        &mut self,
        item: &Stored,
        accounts: &BTreeMap<AccountId, AccountState>,
        batch: &mut Batch,
        report: &mut SyncReport,
    ) -> Result<()> {
        // Every change this device wrote was saved here before it was
        // queued, so its echo is skipped unopened. If it is really this
        // device's (the signature says so), it has landed: a queued row of
        // the same id whose answer was lost is done, and its epoch counts.
        // (Skipping a forged one is harmless: nothing is applied.) A device
        // restored from a backup may lack what it wrote after the backup:
        // until its first complete sync it takes its own echoes like
        // anyone's (applying a change twice is no change).
        if let Ok(env) = Envelope::decode(item.envelope.clone())
            && env.header.author == self.device_id()
            && env.header.kind == Kind::Change
        {
            if env.verify().is_ok() {
                self.store.remove_outbox_envelope(&env.header.id.0)?;
                batch.top_epoch = batch.top_epoch.max(env.header.epoch);
            }
            if self.restored_at()?.is_none() {
                return Ok(());
            }
        }
        let meta = self
            .doc_meta(&item.doc)?
            .ok_or(Inconsistent::NoAccessLog(item.doc))?;
        let keys = self.doc_keys(&item.doc)?;
        let automerge = !self.is_audit_doc(&item.doc);
        let admitted = check::admit(item, &meta, accounts, &keys, batch.top_epoch, automerge);
        if let Ok(a) = &admitted {
            batch.top_epoch = batch.top_epoch.max(a.epoch);
        }
        match admitted {
            Ok(a) if a.kind == Kind::Snapshot => match codec::decode::<SnapshotBody>(&a.body) {
                Ok(snap) => {
                    // A snapshot holds everything before it.
                    batch.changes.clear();
                    batch.comments.clear();
                    batch.snapshot = Some((item.seq, snap));
                }
                Err(e) => report.refused.push(RefusedEnvelope {
                    doc: item.doc,
                    seq: item.seq,
                    reason: format!("snapshot body: {e}"),
                }),
            },
            Ok(a) if self.is_audit_doc(&item.doc) => {
                let author = Envelope::decode(item.envelope.clone())
                    .map(|e| e.header.author)
                    .map_err(Inconsistent::EnvelopeDoesNotDecode)?;
                let taken = if author == self.device_id() {
                    self.restored_audit(&a.body).map(|_| 0)
                } else {
                    self.take_audit(&author, &a.body)
                };
                if let Err(e) = taken {
                    report.refused.push(RefusedEnvelope {
                        doc: item.doc,
                        seq: item.seq,
                        reason: format!("audit entries: {e}"),
                    });
                }
            }
            Ok(a) if a.comments_only => batch.comments.push((item.seq, a.body, a.account)),
            Ok(a) => batch.changes.push((item.seq, a.body, a.account)),
            Err(reason) => report.refused.push(RefusedEnvelope {
                doc: item.doc,
                seq: item.seq,
                reason: reason.to_string(),
            }),
        }
        Ok(())
    }
}
