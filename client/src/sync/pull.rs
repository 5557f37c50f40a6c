//! The pull half of a round, as [`Pulling`] decides: the relay's listing
//! checked against what this device has seen, new access entries taken
//! (or this device's unsent ones replayed on top of them), envelopes
//! fetched in pages and checked one by one, then applied a document at a
//! time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casebook_shared::access::{DocEntry, DocOp, SIG_LABEL as ACCESS_SIG};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, Hash};
use casebook_shared::signed::Signed;

use super::apply::Batch;
use super::pulling::{HeldDoc, Here, Pulling, Step};
use super::{APPLY_CHUNK, Progress, SyncReport, unexpected};
use crate::app::disposal::Taken;
use crate::docs::DocMeta;
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
        let mut confirmed: HashMap<DocId, u64> = here
            .docs
            .iter()
            .map(|(doc, h)| (*doc, h.sync.access_len.saturating_sub(h.unsent)))
            .collect();
        // Documents this account owns that the relay has had: one it no
        // longer lists at all is sent back (see `heal_access`).
        let mut owned: BTreeSet<DocId> = here
            .docs
            .iter()
            .filter(|(doc, h)| h.owned && !h.disposed && !here.disposed.contains(*doc))
            .map(|(doc, _)| *doc)
            .collect();
        // Documents this account owns disposed of here, the disposal not
        // all sent (those sent are deleted as the pull starts), that the
        // relay has had some of (one it never had goes out whole).
        let mut disposing: BTreeSet<DocId> = here
            .docs
            .iter()
            .filter(|(_, h)| h.owned && h.disposed && h.unsent > 0)
            .filter(|(_, h)| h.sync.access_len > h.unsent || h.sync.acked > 0)
            .map(|(doc, _)| *doc)
            .collect();
        // Documents whose disposal found over a longer log was refused:
        // held back for the whole pull, every listing of it.
        let mut held_early: BTreeSet<DocId> = BTreeSet::new();
        // What a refused account log is part of waits, refused, named,
        // whatever the relay lists of it (one it no longer lists is not
        // taken as a share ended); the rest goes on (see `logs`).
        let mut waits = Vec::new();
        for (doc, held) in &here.docs {
            // Its own disposal is carried out whatever the other log says.
            if held.disposed {
                continue;
            }
            if let Some(why) = self.on_a_refused_log(doc)? {
                waits.push((*doc, Taken::Refused(why)));
            }
        }
        for (doc, _) in &waits {
            held_early.insert(*doc);
            confirmed.remove(doc);
            owned.remove(doc);
        }
        let mut pulling = Pulling::new(here);
        pulling.settled_before_listing(waits);
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
                    self.purge_doc(&doc, &by, None)?;
                }
                Step::List => {
                    let mut heads = match relay.request(&Request::ListDocs { since: 0 }).await? {
                        Response::Docs { docs, .. } => docs,
                        r => return Err(unexpected(r)),
                    };
                    heads.retain(|h| !held_early.contains(&h.doc));
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
                        self.relay_lost_data()?;
                    }
                    if self.recheck_due()? {
                        pulling.recheck();
                    }
                    report.access_healed.extend(healed);
                    // One the relay lacks whole (restored from a copy older
                    // than the case): nothing of it is left to send but its
                    // disposal, which goes back alone, below.
                    let gone_whole: Vec<DocId> = disposing
                        .iter()
                        .filter(|doc| !heads.iter().any(|h| h.doc == **doc))
                        .copied()
                        .collect();
                    for doc in &gone_whole {
                        let by = self.name().to_string();
                        self.purge_doc(doc, &by, None)?;
                        confirmed.remove(doc);
                        disposing.remove(doc);
                    }
                    pulling.settled_before_listing(
                        gone_whole.iter().map(|d| (*d, Taken::Purged)).collect(),
                    );
                    let kept = self.kept_disposals()?;
                    for (doc, gone) in super::disposals::lacking(&kept, &heads, &self.account_id())
                    {
                        // Held back: left out of the listing, not lost.
                        if held_early.contains(&doc) {
                            continue;
                        }
                        if self.give_back_disposal(relay, &doc, gone, accounts).await? {
                            report.disposals_healed.push(doc);
                        }
                    }
                    let taken = self
                        .disposed_over_more(relay, &heads, &confirmed, &owned, accounts)
                        .await?;
                    for (doc, t) in &taken {
                        if *t != Taken::Purged {
                            held_early.insert(*doc);
                        }
                        confirmed.remove(doc);
                        heads.retain(|h| h.doc != *doc);
                    }
                    pulling.settled_before_listing(taken);
                    listed = heads.iter().map(|h| h.doc).collect();
                    let audit = crate::audit_sync::audit_doc(&self.account_id());
                    audit_head = heads.iter().find(|h| h.doc == audit).map_or(0, |h| h.seq);
                    pulling.listed(&heads)?;
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
                            // Nobody here can be served what it lacked of
                            // it: asking again would cost an envelope a day
                            // for good.
                            home.store.forget_wants_but(doc, &[])?;
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
                        let again = home.revoked_in_a_turn()?;
                        let touched = |entries: &[casebook_shared::signed::Signed]| {
                            entries
                                .iter()
                                .any(|e| again.values().any(|of| of.contains_key(&e.signer)))
                        };
                        for t in &chunk {
                            let refusal = if t.fork {
                                match home.rebase_fork(&t.doc, &t.entries, accounts, &again)? {
                                    Ok(n) => {
                                        resent += n;
                                        None
                                    }
                                    Err(reason) => Some(reason),
                                }
                            } else {
                                // What a device revoked again did on a
                                // restored relay: undone in a case this
                                // account owns before its own entries are
                                // signed again on top; in another's, waited
                                // on until its owner has.
                                let undo =
                                    home.undo_fetched(&t.doc, &t.entries, &again, accounts)?;
                                let waits = match undo.needed() || again.is_empty() {
                                    true => None,
                                    false => {
                                        home.waits_for_owner(&t.doc, &t.entries, &again, accounts)?
                                    }
                                };
                                let taken = match (waits, t.rebase) {
                                    (Some(why), _) => Some(why),
                                    (None, true) => home.rebase_access(
                                        &t.doc,
                                        t.confirmed,
                                        &t.entries,
                                        accounts,
                                        &undo,
                                    )?,
                                    // All or nothing where a device revoked
                                    // again signed any: taken in part, what it
                                    // did would be held and never undone.
                                    (None, false) if touched(&t.entries) => {
                                        home.access().accept_whole(&t.doc, &t.entries, accounts)?
                                    }
                                    (None, false) => home
                                        .access()
                                        .accept_fetched_access(&t.doc, &t.entries, accounts)?,
                                };
                                if taken.is_none() {
                                    home.undo(&t.doc, &undo, t.rebase)?;
                                }
                                taken
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
                    let rewound = pulling.rewound();
                    // A document rewound shows the relay lost data, maybe of
                    // others too: looked for by the next pull (unless this
                    // one does). One held back is not taken as a loss yet.
                    if !rewound.is_empty() {
                        self.relay_lost_data()?;
                    }
                    for doc in rewound {
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
        // A document shown shorter, held back, was not looked at: the look
        // stays due (at most hourly) until none is.
        if pulling.rechecking() && !pulling.shown_shorter() {
            self.rechecked(pulling.rechecked().len())?;
        }
        let claimed = self.judge_claims(audit_head, &listed, accounts, report)?;
        lacking.extend(claimed.into_iter().filter(|d| !whole.contains(d)));
        self.answer_wants(report)?;
        self.kept_under_hold_judged(|doc| pulling.kept_or_held_back(doc))?;
        // After every disposal this pull carried out, one rebuild.
        self.rewrite_if_due()?;
        Ok((pulling.finish(), lacking))
    }

    /// Why `doc` waits this round, if an account it is part of (its owner,
    /// a member, or once a member) had its log refused (see `logs`).
    pub(super) fn on_a_refused_log(&self, doc: &DocId) -> Result<Option<String>> {
        if self.synced.refused_logs.is_empty() {
            return Ok(None);
        }
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(None);
        };
        let mut part = std::iter::once(meta.owner)
            .chain(meta.members.iter().map(|(a, _, _)| *a))
            .chain(meta.grants.iter().map(|g| g.account));
        Ok(part.find_map(|a| self.log_refused(&a)))
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

    /// The hash of entry `at` of `doc`'s access log as held here.
    pub(super) fn access_entry_hash(&self, doc: &DocId, at: u64) -> Result<Option<Hash>> {
        Ok(self
            .store
            .log_entry(&doc.0, at)?
            .map(|bytes| codec::decode::<Signed>(&bytes))
            .transpose()?
            .map(|e| e.hash(casebook_shared::access::HASH_LABEL)))
    }

    /// What the store holds of `doc`, whose access state is `meta`, with
    /// `unsent` access entries signed here and not sent yet.
    fn held_doc(&self, doc: &DocId, meta: Option<&DocMeta>, unsent: u64) -> Result<HeldDoc> {
        let sync = self.docs().sync_record(doc)?;
        // The relay has had all but the unsent entries: the last of those
        // is the one its listing is compared with.
        let head = match sync.access_len.saturating_sub(unsent).checked_sub(1) {
            Some(last) => self.access_entry_hash(doc, last)?,
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
                // Its documents are held back this round (see `logs`).
                if self.synced.refused_logs.contains_key(&member) {
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member)
                    && let Some(st) = self.other_log(relay, &member).await?
                {
                    slot.insert(st);
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
                let refused = |why: String| {
                    Ok(Err(format!(
                        "entry {} {what} account {}: {why}",
                        entry.seq,
                        account.short()
                    )))
                };
                if let Some(why) = self.log_refused(&account) {
                    return refused(why);
                }
                let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(account)
                else {
                    continue;
                };
                match self.other_log(relay, &account).await {
                    Ok(Some(st)) => {
                        slot.insert(st);
                    }
                    Ok(None) => return refused(self.log_refused(&account).unwrap_or_default()),
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
}
