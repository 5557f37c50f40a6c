//! The pull half of a round, as [`Pulling`] decides: the relay's listing
//! checked against what this device has seen, new access entries taken
//! (or this device's unsent ones replayed on top of them), envelopes
//! fetched in pages and checked one by one, then applied a document at a
//! time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casebook_shared::access::{DocEntry, DocOp, SIG_LABEL as ACCESS_SIG};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::crypto::SecretKey;
use casebook_shared::envelope::{Envelope, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response, Stored};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::apply::{Batch, Taken};
use super::heal::RECHECK;
use super::pulling::{HeldDoc, Here, Pulling, Step};
use super::{APPLY_CHUNK, Progress, RefusedEnvelope, SyncReport, check, unexpected};
use crate::docs::{DocMeta, SnapshotBody};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};

impl Home {
    /// Lists, fetches, checks and applies what other devices wrote, as
    /// [`Pulling`] decides; returns the documents held back (their access
    /// log on the relay did not check out this round), and those that came
    /// to lack changes a fetch from the start may find (see
    /// `apply_fetched`).
    pub(super) async fn pull(
        &mut self,
        relay: &Relay,
        accounts: &mut BTreeMap<AccountId, AccountState>,
        report: &mut SyncReport,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(BTreeSet<DocId>, BTreeSet<DocId>)> {
        let here = self.pull_here()?;
        // Each document's access entries the relay has had: all held, less
        // those queued here to send.
        let confirmed: HashMap<DocId, u64> = here
            .docs
            .iter()
            .map(|(doc, h)| (*doc, h.sync.access_len.saturating_sub(h.unsent)))
            .collect();
        // Documents this account owns that the relay has had: one it no
        // longer lists at all is sent back (see `heal_access`).
        let owned: BTreeSet<DocId> = here
            .docs
            .iter()
            .filter(|(doc, h)| h.owned && !h.disposed && !here.disposed.contains(*doc))
            .map(|(doc, _)| *doc)
            .collect();
        let mut pulling = Pulling::new(here);
        let mut batches: BTreeMap<DocId, Batch> = BTreeMap::new();
        let mut listed: BTreeSet<DocId> = BTreeSet::new();
        // The audit document's head as listed: claims told at or below it
        // were stored before the listing, and so were the changes they
        // name (see `claims`).
        let mut audit_head = 0;
        let mut lacking = BTreeSet::new();
        // Fetched from their start this pull: nothing more below the mark.
        let mut whole = BTreeSet::new();
        loop {
            match pulling.poll() {
                Step::Purge(doc) => {
                    let by = self.name().to_string();
                    self.purge_doc(&doc, &by)?;
                }
                Step::List => {
                    let mut heads = match relay.request(&Request::ListDocs { since: 0 }).await? {
                        Response::Docs { docs, .. } => docs,
                        r => return Err(unexpected(r)),
                    };
                    let mine = accounts
                        .get(&self.account_id())
                        .ok_or(Inconsistent::OwnLogUnread)?;
                    let healed = self
                        .heal_access(relay, &mut heads, &confirmed, &owned, mine)
                        .await?;
                    // Whatever this device had to send back shows the relay
                    // lost data, and maybe more than it can tell from the
                    // relay's numbers (so do the logs, see `send_log_back`).
                    if !healed.is_empty() {
                        self.store.put_secret(RECHECK, &[1])?;
                    }
                    if self.store.get_secret(RECHECK)?.is_some() {
                        pulling.recheck();
                    }
                    report.access_healed.extend(healed);
                    listed = heads.iter().map(|h| h.doc).collect();
                    let audit = crate::audit_sync::audit_doc(&self.account_id());
                    audit_head = heads.iter().find(|h| h.doc == audit).map_or(0, |h| h.seq);
                    pulling.listed(&heads)?;
                    if pulling.rechecking() {
                        self.store.put_secret(RECHECK, &[1])?;
                    }
                }
                Step::EnsureAudit => {
                    self.ensure_audit_doc(relay, false).await?;
                    let audit = crate::audit_sync::audit_doc(&self.account_id());
                    let held = match self.access().doc_meta(&audit)? {
                        Some(meta) => Some(self.held_doc(&audit, Some(&meta), 0)?),
                        None => None,
                    };
                    pulling.audit_created(held);
                }
                Step::Shares { ended, listed } => self.atomically(|home| {
                    for doc in &ended {
                        if home.access().share_ended(doc)? {
                            home.trail().record(
                                "share ended: the relay no longer serves it here",
                                Some(*doc),
                            )?;
                        }
                    }
                    for doc in &listed {
                        if home.access().share_listed(doc)? {
                            home.trail()
                                .record("shared with this account again", Some(*doc))?;
                        }
                    }
                    Ok(())
                })?,
                Step::GetAccess { doc, from } => {
                    let entries = match relay.request(&Request::GetAccess { doc, from }).await? {
                        Response::Log { entries } => entries,
                        r => return Err(unexpected(r)),
                    };
                    pulling.access(doc, from, entries)?;
                }
                Step::TakeDisposal { doc, entry } => {
                    let verdict = self.take_disposal(relay, &doc, &entry, accounts).await?;
                    pulling.disposal_taken(doc, verdict);
                }
                Step::Signers { doc, entries } => {
                    let verdict = self.signers_known(relay, &entries, accounts).await?;
                    pulling.signers(doc, entries, verdict);
                }
                Step::TakeAccess(chunk) => {
                    let accounts = &*accounts;
                    let (refused, resent) = self.atomically(|home| {
                        let mut refused = Vec::new();
                        let mut resent = 0;
                        for t in &chunk {
                            let refusal = if t.fork {
                                match home.rebase_fork(&t.doc, &t.entries, accounts)? {
                                    Ok(n) => {
                                        resent += n;
                                        None
                                    }
                                    Err(reason) => Some(reason),
                                }
                            } else if t.rebase {
                                home.rebase_access(&t.doc, t.confirmed, &t.entries, accounts)?
                            } else {
                                home.access()
                                    .accept_fetched_access(&t.doc, &t.entries, accounts)?
                            };
                            refused.extend(refusal.map(|reason| (t.doc, reason)));
                        }
                        Ok((refused, resent))
                    })?;
                    report.resent += resent;
                    pulling.access_taken(refused);
                }
                Step::MemberLogs(docs) => self.member_logs_of(relay, &docs, accounts).await?,
                Step::Fetch(request) => {
                    let (items, more) = match relay.request(&request).await? {
                        Response::Changes { items, more } => (items, more),
                        r => return Err(unexpected(r)),
                    };
                    pulling
                        .page(items, more)
                        .map_err(|fault| Error::Net(NetError::Protocol(fault.to_string())))?;
                }
                Step::Take(items) => {
                    let rechecked = pulling.rechecked();
                    for item in &items {
                        let recheck = rechecked.contains(&item.doc);
                        self.take_into(&mut batches, item, accounts, report, recheck)?;
                    }
                }
                Step::Fetched { docs, of, bytes } => {
                    progress(Progress::Fetched { docs, of, bytes });
                }
                Step::Apply => {
                    for doc in pulling.rewound() {
                        batches.entry(doc).or_default().rewind = true;
                    }
                    for doc in pulling.rechecked() {
                        batches.entry(doc).or_default().recheck = true;
                    }
                    // Fetched (not held back), and without this device's
                    // envelope: the relay lost it.
                    if let Some((audit, at)) = pulling.own_audit_at()
                        && let Some(batch) = batches.get(&audit)
                        && !batch.fetched.contains(&at)
                    {
                        self.own_audit_lost()?;
                    }
                    let batches = std::mem::take(&mut batches);
                    let (lack, fetched_whole) = self.apply_batches(batches, report, progress)?;
                    lacking.extend(lack);
                    whole.extend(fetched_whole);
                }
                Step::Done => break,
            }
            // In the order they were met.
            report.refused.append(pulling.refused());
        }
        // What the relay lost that this device holds is queued to go back.
        if pulling.rechecking() {
            self.store.delete_secret(RECHECK)?;
        }
        let claimed = self.judge_claims(audit_head, &listed, accounts, report)?;
        lacking.extend(claimed.into_iter().filter(|d| !whole.contains(d)));
        self.answer_wants(report)?;
        // After every disposal this pull carried out, one rebuild.
        self.rewrite_if_due()?;
        Ok((pulling.finish(), lacking))
    }

    /// What the store holds of each document, for [`Pulling`].
    fn pull_here(&self) -> Result<Here> {
        let me = self.account_id();
        // Access entries signed here but not sent yet are not on the relay.
        let mut unsent: HashMap<DocId, u64> = HashMap::new();
        for row in self.store.access_outbox()? {
            let entries: Vec<Signed> = codec::decode(&row.payload)?;
            *unsent.entry(row.doc).or_default() += entries.len() as u64;
        }
        let mut docs = BTreeMap::new();
        for doc in self.store.doc_ids()? {
            let meta = self.access().doc_meta(&doc)?;
            let unsent = unsent.get(&doc).copied().unwrap_or(0);
            docs.insert(doc, self.held_doc(&doc, meta.as_ref(), unsent)?);
        }
        let audit = crate::audit_sync::audit_doc(&me);
        Ok(Here {
            docs,
            disposed: self.disposed_docs()?.into_iter().collect(),
            audit,
            audit_held: self.access().doc_meta(&audit)?.is_some(),
        })
    }

    /// What the store holds of `doc`, whose access state is `meta`, with
    /// `unsent` access entries signed here and not sent yet.
    fn held_doc(&self, doc: &DocId, meta: Option<&DocMeta>, unsent: u64) -> Result<HeldDoc> {
        let sync = self.docs().sync_record(doc)?;
        // The relay has had all but the unsent entries: the last of those
        // is the one its listing is compared with.
        let head = match sync.access_len.saturating_sub(unsent).checked_sub(1) {
            Some(last) => self
                .store
                .log_entry(&doc.0, last)?
                .map(|bytes| codec::decode::<Signed>(&bytes))
                .transpose()?
                .map(|e| e.hash(casebook_shared::access::HASH_LABEL)),
            None => None,
        };
        Ok(HeldDoc {
            sync,
            owned: meta.is_some_and(|m| m.owner == self.account_id()),
            disposed: meta.is_some_and(|m| m.disposed),
            unsent,
            head,
        })
    }

    /// Envelopes are checked against their author's account log, and a
    /// rotation seals to every member's account key: fetches the log of
    /// every member of `docs` not known yet (a colleague's, say, or one
    /// another device of this account shared with), former members too
    /// (what they wrote while members stays).
    async fn member_logs_of(
        &mut self,
        relay: &Relay,
        docs: &[DocId],
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<()> {
        for doc in docs {
            let Some(meta) = self.access().doc_meta(doc)? else {
                continue;
            };
            for member in meta.grants.iter().map(|g| g.account) {
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member) {
                    slot.insert(self.refresh_log(relay, &member).await?);
                }
            }
        }
        Ok(())
    }

    /// Applies what was taken, in transactions of a few dozen documents:
    /// one fsync each, and other processes on this home wait only briefly.
    /// Returns the documents that came to lack what a fetch from their
    /// start may find, and those fetched from their start.
    fn apply_batches(
        &mut self,
        batches: BTreeMap<DocId, Batch>,
        report: &mut SyncReport,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Vec<DocId>, Vec<DocId>)> {
        let (mut lacking, mut whole) = (Vec::new(), Vec::new());
        let total = batches.len();
        let mut batches = batches.into_iter().peekable();
        let mut done = 0;
        while batches.peek().is_some() {
            let chunk: Vec<(DocId, Batch)> = batches.by_ref().take(APPLY_CHUNK).collect();
            // What was fetched can be fetched again: its commit need not
            // wait for the disk (see `Store::wait_for_disk`).
            self.store.wait_for_disk(false)?;
            let applied = self.atomically(|home| {
                let (mut lack, mut all) = (Vec::new(), Vec::new());
                for (doc, batch) in chunk {
                    let applied = home.apply_fetched(&doc, batch, report)?;
                    if applied.lacking {
                        lack.push(doc);
                    }
                    if applied.whole {
                        all.push(doc);
                    }
                }
                Ok((lack, all))
            });
            let restored = self.store.wait_for_disk(true);
            let (lack, all) = applied?;
            lacking.extend(lack);
            whole.extend(all);
            restored?;
            done = (done + APPLY_CHUNK).min(total);
            progress(Progress::Applied {
                docs: done,
                of: total,
            });
        }
        Ok((lacking, whole))
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
        recheck: bool,
    ) -> Result<()> {
        let batch = match batches.entry(item.doc) {
            std::collections::btree_map::Entry::Occupied(b) => b.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => slot.insert(Batch {
                // Fetched again from below the seen mark (the document is
                // incomplete, or the relay lost what was seen): judged as a
                // new device judges it, the fence rising in relay order
                // from nothing, not from what came after. From the mark
                // on, the fence is what the mark passed.
                top_epoch: match self.docs().sync_record(&item.doc)? {
                    // (A seen mark of 0 after a rewind to a relay that
                    // lost all of it keeps no fence either.)
                    s if item.seq <= s.seen || s.seen == 0 => 0,
                    s => s.top_epoch,
                },
                recheck,
                ..Batch::default()
            }),
        };
        batch.seen = item.seq;
        batch.fetched.push(item.seq);
        self.take_item(item, accounts, batch, report)?;
        batch.fences.push((item.seq, batch.top_epoch));
        Ok(())
    }

    pub(super) fn take_item(
        &mut self,
        item: &Stored,
        accounts: &BTreeMap<AccountId, AccountState>,
        batch: &mut Batch,
        report: &mut SyncReport,
    ) -> Result<()> {
        // A change of this device's own comes back as its echo. One still
        // queued here was saved in the same transaction that queued it, so
        // it is skipped unopened; it has landed, so the row is done and its
        // epoch counts. Any other is opened, and skipped only if the
        // document as saved here holds it: an edit sent while its commit
        // was still on its way to the disk (`Setup::sends_at_once`) may be
        // gone here after a power cut, and a home restored from a backup
        // lacks what it wrote after the backup. (An echo the signature does
        // not bear out is refused: damaged on the relay, it is damaged for
        // every device.) The audit trail's own entries reach the relay only
        // once they are durable here, so those are never opened.
        let mut own = false;
        if let Ok(env) = Envelope::decode(item.envelope.clone())
            && env.header.author == self.device_id()
            && env.header.kind == Kind::Change
        {
            if env.verify().is_err() {
                // Damaged on the relay: other devices refuse it too.
                batch.stop.get_or_insert(item.seq);
                report.refused.push(RefusedEnvelope {
                    doc: item.doc,
                    seq: item.seq,
                    reason: "this device's own envelope, damaged: its signature does not verify"
                        .into(),
                });
                return Ok(());
            }
            batch.top_epoch = batch.top_epoch.max(env.header.epoch);
            if let Some(id) = self.store.outbox_id_of(&env.header.id.0)? {
                if batch.recheck
                    && let Some(sent) = self.store.outbox_change(id)?
                {
                    batch.echoes.push(sent);
                }
                // Landed: acknowledged, as an answer would have said.
                self.store_acks(&[(id, item.doc, item.seq)])?;
                return Ok(());
            }
            if self.is_audit_doc(&item.doc) {
                if self.restored_at()?.is_none() {
                    return Ok(());
                }
            } else {
                own = true;
            }
        }
        let meta = self
            .access()
            .doc_meta(&item.doc)?
            .ok_or(Inconsistent::NoAccessLog(item.doc))?;
        let keys = self.access().doc_keys(&item.doc)?;
        let automerge = !self.is_audit_doc(&item.doc);
        let admitted = check::admit(item, &meta, accounts, &keys, batch.top_epoch, automerge);
        if let Ok(a) = &admitted {
            batch.top_epoch = batch.top_epoch.max(a.epoch);
        }
        match admitted {
            Ok(a) if a.kind == Kind::Snapshot => match codec::decode::<SnapshotBody>(&a.body) {
                Ok(snap) => {
                    // A snapshot holds everything before it, a refused
                    // envelope too.
                    batch.changes.clear();
                    batch.comments.clear();
                    batch.stop = None;
                    batch.reordered = false;
                    batch.snapshot = Some((item.seq, snap));
                }
                Err(e) => report.refused.push(RefusedEnvelope {
                    doc: item.doc,
                    seq: item.seq,
                    reason: format!("snapshot body: {e}"),
                }),
            },
            Ok(a) if a.kind == Kind::Signal => {
                self.take_signal(&item.doc, (&a.account, &a.author), &a.body, item.seq)?
            }
            Ok(a) if self.is_audit_doc(&item.doc) => {
                let author = Envelope::decode(item.envelope.clone())
                    .map(|e| e.header.author)
                    .map_err(Inconsistent::EnvelopeDoesNotDecode)?;
                let taken = if author == self.device_id() {
                    self.restored_audit(&a.body).map(|_| 0)
                } else {
                    self.take_audit(&author, &a.body, item.seq)
                };
                if let Err(e) = taken {
                    report.refused.push(RefusedEnvelope {
                        doc: item.doc,
                        seq: item.seq,
                        reason: format!("audit entries: {e}"),
                    });
                }
            }
            Ok(a) if own && self.docs().holds_changes(&item.doc, &a.body)? => {
                if batch.recheck {
                    batch.echoes.push(a.body);
                }
            }
            Ok(a) => {
                batch.recovered += usize::from(own);
                let taken = Taken {
                    seq: item.seq,
                    body: a.body,
                    account: a.account,
                    author: a.author,
                };
                match a.comments_only {
                    true => batch.comments.push(taken),
                    false => batch.changes.push(taken),
                }
            }
            Err(reason) => {
                // A copy of a change held here is a replay, not a change
                // the relay's order kept out: nothing to ask for again (or
                // a relay could make the case be fetched whole each round).
                let after_removal = reason == check::Refused::AfterRemoval;
                let replay = after_removal && self.holds_sealed(item, &keys)?;
                if reason.relay_may_mend() && !replay {
                    batch.stop.get_or_insert(item.seq);
                }
                batch.reordered |= after_removal && !replay;
                report.refused.push(RefusedEnvelope {
                    doc: item.doc,
                    seq: item.seq,
                    reason: reason.to_string(),
                })
            }
        }
        Ok(())
    }

    /// Whether the change sealed in `item` is one this device holds: it
    /// opens under a key held here, and the document has its author's
    /// newest change in it (a device's changes follow one another; asked
    /// by hash, so changes waiting in the document do not muddle it).
    fn holds_sealed(&mut self, item: &Stored, keys: &BTreeMap<u32, SecretKey>) -> Result<bool> {
        let Ok(env) = Envelope::decode(item.envelope.clone()) else {
            return Ok(false);
        };
        let Some(body) = keys
            .get(&env.header.epoch)
            .and_then(|key| env.open(key).ok())
        else {
            return Ok(false);
        };
        let tips: Vec<crate::notes::ChangeHash> =
            crate::notes::tips_of(&body, env.header.author.as_bytes())
                .unwrap_or_default()
                .into_iter()
                .map(|(h, _)| h)
                .collect();
        Ok(!tips.is_empty() && self.docs().lacking(&item.doc, &tips)?.is_empty())
    }
}
