//! Sync with the relay: push the outbox, pull what other devices wrote.
//!
//! A round is: refresh the signed account logs (refusing a shorter or forked
//! one), list the documents, fetch new access-log entries and envelopes in
//! pages, check each envelope ([`check::admit`]) and apply each document's
//! batch in one Automerge call, bring owned documents' access up to date
//! (expired shares, keys sealed to a replaced account key), push every
//! outbox row in order, then upload a snapshot of documents that have
//! gathered many changes. The decisions live in [`check`], which does no
//! I/O; this module moves bytes.

pub mod check;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casebook_shared::access::{DocEntry, DocOp, Role, SIG_LABEL as ACCESS_SIG};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::envelope::{Envelope, Header, Kind, MAX_ENVELOPE};
use casebook_shared::frames::{ErrorCode, MAX_UPLOAD, Request, Response, Stored};
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;

use crate::docs::{SnapshotBody, Summary};
use crate::error::{Error, Result};
use crate::home::{Home, now};
use crate::net::{NetError, Relay};
use crate::store::OutKind;

pub use watch::WatchEvent;

/// After changes of this weight since the last snapshot, a device with write
/// access uploads a new one, so a new device loads one document instead of
/// replaying its history, and the relay drops the changes it covers.
pub const SNAPSHOT_EVERY: u64 = 16;

/// The weight of one change toward the next snapshot: one, plus one per
/// 512 bytes, so 16 small edits or about 8 KiB of new text call for one.
pub fn snapshot_weight(change_len: usize) -> u64 {
    1 + change_len as u64 / 512
}

/// Documents applied per local transaction.
const APPLY_CHUNK: usize = 64;

/// Bytes asked for per fetch page, and sent at most per upload.
const PAGE_BYTES: u32 = 4 * 1024 * 1024;

/// What a sync round did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Outbox rows the relay acknowledged (changes and access entries).
    pub pushed: usize,
    /// Envelopes fetched from other devices and applied.
    pub received: usize,
    /// Documents that changed here.
    pub docs_updated: usize,
    /// Documents stored from a snapshot without loading them.
    pub snapshots_in: usize,
    /// Snapshots uploaded.
    pub snapshots_out: usize,
    /// Envelopes refused, with the reason; they changed nothing.
    pub refused: Vec<RefusedEnvelope>,
    /// Edits kept on this device but not sent: this account may no longer
    /// make them (a share ended, or became read-only or comment-only), or
    /// the document's access log on the relay did not verify this round.
    pub held: Vec<HeldEdits>,
}

/// Edits to one document that stay in the outbox because they cannot land.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeldEdits {
    pub doc: DocId,
    pub edits: usize,
    pub reason: String,
}

/// An envelope that failed a check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RefusedEnvelope {
    pub doc: DocId,
    pub seq: u64,
    pub reason: String,
}

/// How far a round has got, for a progress line.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    Pushed {
        done: usize,
        total: usize,
    },
    Fetched {
        docs: usize,
        of: usize,
        bytes: usize,
    },
    Applied {
        docs: usize,
        of: usize,
    },
}

/// Counts one more held edit of `doc`.
fn hold(held: &mut Vec<HeldEdits>, doc: DocId, reason: &str) {
    match held.iter_mut().find(|h| h.doc == doc) {
        Some(h) => h.edits += 1,
        None => held.push(HeldEdits {
            doc,
            edits: 1,
            reason: reason.into(),
        }),
    }
}

fn unexpected(r: Response) -> Error {
    Error::Net(NetError::Protocol(format!("unexpected answer {r:?}")))
}

impl Home {
    /// Connects to this home's relay, registers the account on first use,
    /// and authenticates the device.
    pub async fn connect(&mut self) -> Result<Relay> {
        let (addr, fp) = self.relay();
        let relay = self.setup.reach(addr, fp).await?;
        if !self.id.record.registered {
            let entries = self.account_log()?;
            match relay.request(&Request::CreateAccount { entries }).await {
                Ok(_) => {}
                // Created by an earlier attempt whose answer was lost.
                Err(NetError::Relay {
                    code: ErrorCode::Conflict,
                    ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
            self.id.record.registered = true;
            self.save_identity()?;
        }
        match relay
            .authenticate(&self.id.signer, Some(self.account_id()))
            .await
        {
            Ok(_) => Ok(relay),
            Err(NetError::Relay {
                code: ErrorCode::Unauthorized,
                reason,
            }) if reason.contains("revoked") => Err(Error::Revoked),
            Err(e) => Err(e.into()),
        }
    }

    /// One full sync round.
    pub async fn sync(
        &mut self,
        relay: &Relay,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut accounts = self.refresh_accounts(relay).await?;
        // Pull first: what the owner's other devices did to an access log
        // (an expiry handled, a rotation after a revocation) is known before
        // this device decides whether to do it too, and before it seals
        // anything under the newest epoch.
        let held_back = self
            .pull(relay, &mut accounts, &mut report, progress)
            .await?;
        self.member_logs(relay, &mut accounts).await?;
        self.maintain_owned_docs(&accounts, &held_back)?;
        report.pushed = self
            .push(relay, &held_back, &mut report.held, progress)
            .await?;
        if self.push_audit(relay).await? > 0 || report.pushed > 0 {
            // What was just sent comes back (its echo is skipped unopened),
            // so the document's seen mark passes it and a snapshot may
            // cover it; whatever another device sent meanwhile comes too.
            self.pull(relay, &mut accounts, &mut report, progress)
                .await?;
            // A refusal met by both pulls is one refusal.
            let mut seen = std::collections::HashSet::new();
            report
                .refused
                .retain(|r| seen.insert((r.doc, r.seq, r.reason.clone())));
        }
        report.snapshots_out = self.push_snapshots(relay).await?;
        if report.pushed + report.received + report.snapshots_in > 0 {
            self.audit(
                &format!(
                    "synced: {} sent, {} received, {} refused",
                    report.pushed,
                    report.received + report.snapshots_in,
                    report.refused.len()
                ),
                None,
            )?;
        }
        Ok(report)
    }

    /// Brings every account log held up to date; returns their states.
    async fn refresh_accounts(
        &mut self,
        relay: &Relay,
    ) -> Result<BTreeMap<AccountId, AccountState>> {
        let mut out = BTreeMap::new();
        let mine = self.account_id();
        let me = self.refresh_log(relay, &mine).await?;
        if !me.is_active(&self.device_id()) {
            return Err(Error::Revoked);
        }
        out.insert(mine, me);
        for other in self.store.log_owners(32)? {
            let id =
                AccountId(other.try_into().map_err(|_| {
                    Error::Inconsistent("an account id has the wrong length".into())
                })?);
            if id != mine {
                let st = self.refresh_log(relay, &id).await?;
                out.insert(id, st);
            }
        }
        Ok(out)
    }

    /// Makes sure the log of every member of every document this account
    /// owns is held: a rotation seals the new key to each of them. A round
    /// that accepted a share's entries and then failed before fetching the
    /// new member's log would otherwise leave every later rotation unable
    /// to seal to that member.
    async fn member_logs(
        &mut self,
        relay: &Relay,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<()> {
        let me = self.account_id();
        for doc in self.store.doc_ids()? {
            let Some(meta) = self.doc_meta(&doc)? else {
                continue;
            };
            if meta.owner != me {
                continue;
            }
            for member in meta.members.iter().map(|(a, _, _)| *a) {
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member) {
                    slot.insert(self.refresh_log(relay, &member).await?);
                }
            }
        }
        Ok(())
    }

    /// Fetches an account log's new entries, checking that the relay's log
    /// extends the one held (the last held entry must come back unchanged).
    pub(crate) async fn refresh_log(
        &mut self,
        relay: &Relay,
        account: &AccountId,
    ) -> Result<AccountState> {
        let held = self.account_log_of(account)?;
        let from = held.len().saturating_sub(1) as u64;
        let entries = match relay
            .request(&Request::GetAccount {
                account: *account,
                from,
            })
            .await?
        {
            Response::Log { entries } => entries,
            r => return Err(unexpected(r)),
        };
        let new = match held.last() {
            None => entries.as_slice(),
            Some(last) => match entries.split_first() {
                Some((first, rest)) if first == last => rest,
                Some(_) => {
                    return Err(Error::Rollback(format!(
                        "the relay's log of account {} differs from the one held",
                        account.short()
                    )));
                }
                None => {
                    return Err(Error::Rollback(format!(
                        "the relay's log of account {} is shorter than the one held",
                        account.short()
                    )));
                }
            },
        };
        let mut all = held;
        let first_new = all.len() as u64;
        all.extend_from_slice(new);
        let state = AccountState::verify_log(&all)?;
        if state.id != *account {
            return Err(Error::Inconsistent(
                "the relay sent another account's log".into(),
            ));
        }
        if !new.is_empty() {
            if *account == self.account_id() {
                self.extend_account_log(first_new, new)?;
            } else {
                let encoded: Vec<Vec<u8>> = new.iter().map(codec::encode).collect();
                self.store.append_log(&account.0, first_new, &encoded)?;
            }
        }
        Ok(state)
    }

    /// Sends the outbox rows that may go and removes what the relay
    /// acknowledged (the others are reported as held):
    /// access-log entries first, in order, then changes in order, because a
    /// change is sealed under the newest epoch when first sent, and the relay
    /// must know that epoch. Returns how many were acknowledged.
    async fn push(
        &mut self,
        relay: &Relay,
        held_back: &BTreeSet<DocId>,
        held: &mut Vec<HeldEdits>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<usize> {
        let mut rows = self.store.outbox()?;
        rows.sort_by_key(|r| (r.kind != OutKind::Access, r.id));
        let total = rows.len();
        let mut done = 0;
        let mut batch: Vec<(i64, DocId, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0usize;
        // This account's role in each document, and its current epoch.
        let mut terms: BTreeMap<DocId, (Option<Role>, u32)> = BTreeMap::new();
        let me = self.account_id();
        for row in rows {
            // Its access log on the relay did not verify this round: what
            // is queued for it waits rather than be sealed or sent against
            // a log the two sides disagree on.
            if held_back.contains(&row.doc) {
                hold(
                    held,
                    row.doc,
                    "the relay's access log for it does not verify",
                );
                continue;
            }
            // A change held back holds back every later one of its document:
            // they build on it, and would be refused without it.
            if row.kind != OutKind::Access && held.iter().any(|h| h.doc == row.doc) {
                hold(held, row.doc, "an earlier edit to it is held");
                continue;
            }
            match row.kind {
                OutKind::Access => {
                    done += self.upload(relay, std::mem::take(&mut batch), held).await?;
                    batch_bytes = 0;
                    let entries: Vec<Signed> = codec::decode(&row.payload)?;
                    self.push_access(relay, &row.doc, entries).await?;
                    self.store.remove_outbox(row.id)?;
                    done += 1;
                }
                OutKind::Change | OutKind::Comment => {
                    let (role, current) = match terms.get(&row.doc) {
                        Some(t) => *t,
                        None => {
                            let meta = self.doc_meta(&row.doc)?;
                            let t = (
                                meta.as_ref().and_then(|m| m.role_of(&me, now())),
                                meta.as_ref().map_or(0, |m| m.epoch),
                            );
                            terms.insert(row.doc, t);
                            t
                        }
                    };
                    let may = match role {
                        Some(r) if r >= Role::Write => true,
                        Some(Role::Comment) => row.kind == OutKind::Comment,
                        _ => false,
                    };
                    if !may {
                        let why = match role {
                            Some(Role::Comment) => {
                                "it is an edit, and this account may now only comment"
                            }
                            _ => "this account may no longer write it",
                        };
                        hold(held, row.doc, why);
                        continue;
                    }
                    // Sealed at first send and kept, so a retry sends the
                    // same envelope id and the relay recognises it; sealed
                    // again (same id) if the document has moved to a new
                    // epoch since, which the relay would refuse.
                    let stale = row.envelope.as_ref().is_some_and(|e| {
                        Envelope::decode(e.clone()).map_or(true, |e| e.header.epoch < current)
                    });
                    let envelope = match row.envelope {
                        Some(e) if !stale => e,
                        _ => {
                            let e = self.seal_change(&row.doc, row.env_id, &row.payload)?;
                            self.store.set_outbox_envelope(row.id, &e)?;
                            e
                        }
                    };
                    batch_bytes += envelope.len();
                    batch.push((row.id, row.doc, envelope));
                    if batch.len() >= MAX_UPLOAD || batch_bytes >= PAGE_BYTES as usize {
                        done += self.upload(relay, std::mem::take(&mut batch), held).await?;
                        batch_bytes = 0;
                    }
                }
            }
            progress(Progress::Pushed { done, total });
        }
        done += self.upload(relay, batch, held).await?;
        if total > 0 {
            progress(Progress::Pushed { done, total });
        }
        Ok(done)
    }

    fn seal_change(&self, doc: &DocId, id: [u8; 24], body: &[u8]) -> Result<Vec<u8>> {
        let meta = self
            .doc_meta(doc)?
            .ok_or_else(|| Error::Inconsistent(format!("no access log for {}", doc.short())))?;
        let keys = self.doc_keys(doc)?;
        let key = keys
            .get(&meta.epoch)
            .ok_or_else(|| Error::NotAllowed(format!("no key for document {}", doc.short())))?;
        if body.len() > MAX_ENVELOPE - 1024 {
            return Err(Error::NotAllowed(format!(
                "one edit of {} bytes is larger than an envelope may be",
                body.len()
            )));
        }
        let header = Header {
            kind: Kind::Change,
            doc: *doc,
            epoch: meta.epoch,
            account: self.account_id(),
            author: self.device_id(),
            id: EnvelopeId(id),
            covers: 0,
        };
        Ok(Envelope::seal(header, key, &self.id.signer, body).into_bytes())
    }

    /// Uploads envelopes; removes each acknowledged outbox row. A change
    /// the relay says this account may not make stays queued and is
    /// reported as held; any other refusal keeps its row and fails the
    /// round with the relay's reason.
    async fn upload(
        &mut self,
        relay: &Relay,
        batch: Vec<(i64, DocId, Vec<u8>)>,
        held: &mut Vec<HeldEdits>,
    ) -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let (rows, envelopes): (Vec<(i64, DocId)>, Vec<Vec<u8>>) =
            batch.into_iter().map(|(id, doc, e)| ((id, doc), e)).unzip();
        let results = match relay.request(&Request::Upload { envelopes }).await? {
            Response::Uploaded { results } if results.len() == rows.len() => results,
            r => return Err(unexpected(r)),
        };
        let mut acked = 0;
        let mut refused = None;
        self.store.transaction(|s| {
            for ((id, doc), r) in rows.iter().zip(&results) {
                match r {
                    Ok(seq) => {
                        s.remove_outbox(*id)?;
                        s.note_acked(doc, *seq)?;
                        acked += 1;
                    }
                    Err(ErrorCode::Forbidden) => {
                        hold(held, *doc, "the relay says this account may not write it")
                    }
                    Err(code) => refused = refused.or(Some(*code)),
                }
            }
            Ok(())
        })?;
        match refused {
            None => Ok(acked),
            Some(code) => Err(Error::Net(NetError::Relay {
                code,
                reason: "the relay refused a change; it stays queued".into(),
            })),
        }
    }

    /// Sends access-log entries. If the relay says its log moved on, the
    /// entries may have landed on an earlier attempt whose answer was lost:
    /// that counts as acknowledged only if the relay's log holds them.
    async fn push_access(
        &mut self,
        relay: &Relay,
        doc: &DocId,
        entries: Vec<Signed>,
    ) -> Result<()> {
        let first: DocEntry = entries
            .first()
            .ok_or_else(|| Error::Inconsistent("an empty access outbox row".into()))?
            .open(ACCESS_SIG)
            .map_err(|e| Error::Inconsistent(e.to_string()))?;
        match relay
            .request(&Request::AppendAccess {
                doc: *doc,
                entries: entries.clone(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(NetError::Relay {
                code: ErrorCode::Conflict,
                reason,
            }) => match relay
                .request(&Request::GetAccess {
                    doc: *doc,
                    from: first.seq,
                })
                .await?
            {
                Response::Log { entries: theirs } if theirs.starts_with(&entries) => Ok(()),
                _ => Err(Error::Inconsistent(format!(
                    "the access log of {} changed elsewhere: {reason}",
                    doc.short()
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Lists, fetches, checks and applies what other devices wrote.
    async fn pull(
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
            let mut sync = self.sync_record(&doc)?;
            sync.access_len -= unsent.get(&doc).copied().unwrap_or(0).min(sync.access_len);
            let owned = self.doc_meta(&doc)?.is_some_and(|m| m.owner == me);
            held.insert(doc, (sync, owned));
        }
        let needs = check::plan(&heads, &held).map_err(Error::Rollback)?;
        let listed: BTreeSet<DocId> = heads.iter().map(|h| h.doc).collect();
        for (doc, (_, owned)) in &held {
            if !owned && !listed.contains(doc) && self.share_ended(doc)? {
                self.audit(
                    "share ended: the relay no longer serves it here",
                    Some(*doc),
                )?;
            }
        }
        let access_len: HashMap<DocId, u64> = heads.iter().map(|h| (h.doc, h.access_len)).collect();

        // A document whose new access entries do not verify is left as it
        // was this round (its changes too, since they may need the entries),
        // and the refusal is reported; the other documents go on.
        let mut fetched_logs = Vec::new();
        let mut held_back = BTreeSet::new();
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
                if from + entries.len() as u64 != access_len[&need.doc] {
                    return Err(Error::Rollback(format!(
                        "document {} listed {} access entries but sent {}",
                        need.doc.short(),
                        access_len[&need.doc],
                        from + entries.len() as u64
                    )));
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
            .filter(|n| !held_back.contains(&n.doc))
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

        let mut after: Vec<(DocId, u64)> = needs
            .iter()
            .filter_map(|n| n.changes_after.map(|s| (n.doc, s)))
            .collect();
        let of = after.len();
        let mut batches: BTreeMap<DocId, Batch> = BTreeMap::new();
        let mut fetched_bytes = 0usize;
        while !after.is_empty() {
            let (items, more) = match relay
                .request(&Request::Fetch {
                    docs: after.clone(),
                    max_bytes: PAGE_BYTES,
                })
                .await?
            {
                Response::Changes { items, more } => (items, more),
                r => return Err(unexpected(r)),
            };
            if more && items.is_empty() {
                return Err(unexpected(Response::Changes { items, more }));
            }
            let last_doc = items.last().map(|i| i.doc);
            for item in items {
                fetched_bytes += item.envelope.len();
                let Some(pos) = after.iter().position(|(d, _)| *d == item.doc) else {
                    return Err(Error::Net(NetError::Protocol(format!(
                        "sent document {} that was not asked for",
                        item.doc.short()
                    ))));
                };
                // Sequence numbers only rise: anything else is a replay.
                if item.seq <= after[pos].1 {
                    report.refused.push(RefusedEnvelope {
                        doc: item.doc,
                        seq: item.seq,
                        reason: "sent again or out of order".into(),
                    });
                    continue;
                }
                after[pos].1 = item.seq;
                let batch = match batches.entry(item.doc) {
                    std::collections::btree_map::Entry::Occupied(b) => b.into_mut(),
                    std::collections::btree_map::Entry::Vacant(slot) => slot.insert(Batch {
                        top_epoch: self.sync_record(&item.doc)?.top_epoch,
                        ..Batch::default()
                    }),
                };
                batch.seen = item.seq;
                self.take_item(&item, accounts, batch, report)?;
            }
            // Documents before the last one in this page are complete.
            after = match (more, last_doc) {
                (true, Some(d)) => {
                    let pos = after.iter().position(|(x, _)| *x == d).unwrap_or(0);
                    after.split_off(pos)
                }
                _ => Vec::new(),
            };
            progress(Progress::Fetched {
                docs: of - after.len(),
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
            self.atomically(|home| {
                for (doc, batch) in chunk {
                    home.apply_fetched(&doc, batch, report)?;
                }
                Ok(())
            })?;
            done = (done + APPLY_CHUNK).min(total);
            progress(Progress::Applied {
                docs: done,
                of: total,
            });
        }
        Ok(held_back)
    }

    /// Makes sure the account log of every signer of fetched access
    /// entries is held. `Ok(Err(reason))` when an entry does not open or
    /// names an account the relay does not have: the entries are refused.
    async fn signers_known(
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
    fn take_item(
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
        // (Skipping a forged one is harmless: nothing is applied.)
        if let Ok(env) = Envelope::decode(item.envelope.clone())
            && env.header.author == self.device_id()
            && env.header.kind == Kind::Change
        {
            if env.verify().is_ok() {
                self.store.remove_outbox_envelope(&env.header.id.0)?;
                batch.top_epoch = batch.top_epoch.max(env.header.epoch);
            }
            return Ok(());
        }
        let meta = self.doc_meta(&item.doc)?.ok_or_else(|| {
            Error::Inconsistent(format!("no access log for {}", item.doc.short()))
        })?;
        let keys = self.doc_keys(&item.doc)?;
        let admitted = check::admit(item, &meta, accounts, &keys, batch.top_epoch);
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
                    .map_err(|e| Error::Inconsistent(e.to_string()))?;
                if let Err(e) = self.take_audit(&author, &a.body) {
                    report.refused.push(RefusedEnvelope {
                        doc: item.doc,
                        seq: item.seq,
                        reason: format!("audit entries: {e}"),
                    });
                }
            }
            Ok(a) if a.comments_only => batch.comments.push((item.seq, a.body)),
            Ok(a) => batch.changes.push((item.seq, a.body)),
            Err(reason) => report.refused.push(RefusedEnvelope {
                doc: item.doc,
                seq: item.seq,
                reason: reason.to_string(),
            }),
        }
        Ok(())
    }

    /// Applies one document's fetched batch and records how far it has seen.
    fn apply_fetched(&mut self, doc: &DocId, batch: Batch, report: &mut SyncReport) -> Result<()> {
        let mut changed = false;
        let mut sync = self.sync_record(doc)?;
        let has_body = self.store.doc_body(doc)?.is_some();
        if let Some((seq, snap)) = batch.snapshot {
            let summary_ok = serde_json::from_slice::<Summary>(&snap.summary).is_ok();
            if !has_body && summary_ok {
                self.store_snapshot(doc, &snap.doc, &snap.summary)?;
                report.snapshots_in += 1;
            } else if let Err(e) = self.apply_batch(doc, &snap.doc) {
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
                .flat_map(|(_, b)| b.iter().copied())
                .collect();
            if self.apply_batch(doc, &all).is_ok() {
                report.received += batch.changes.len();
                sync.since_snapshot += batch
                    .changes
                    .iter()
                    .map(|(_, b)| snapshot_weight(b.len()))
                    .sum::<u64>();
            } else {
                // One bad change must not hold back the others: find it.
                for (seq, body) in &batch.changes {
                    match self.apply_batch(doc, body) {
                        Ok(()) => {
                            report.received += 1;
                            sync.since_snapshot += snapshot_weight(body.len());
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
            for (seq, body) in waiting {
                match self.apply_comment_change(doc, &body) {
                    Ok(true) => {
                        report.received += 1;
                        changed = true;
                    }
                    Ok(false) => next.push((seq, body)),
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
        for (seq, _) in waiting {
            report.refused.push(RefusedEnvelope {
                doc: *doc,
                seq,
                reason: "a commenter's change builds on changes not held here".into(),
            });
        }
        sync.seen = sync.seen.max(batch.seen);
        sync.top_epoch = sync.top_epoch.max(batch.top_epoch);
        self.store.set_doc_sync(doc, sync)?;
        if changed {
            report.docs_updated += 1;
        }
        Ok(())
    }

    /// Uploads a snapshot of each document that has gathered many changes
    /// and that this account may snapshot. Its `covers` is the highest
    /// sequence number fetched, so it never claims a change it lacks.
    async fn push_snapshots(&mut self, relay: &Relay) -> Result<usize> {
        let me = self.account_id();
        let mut envelopes = Vec::new();
        let mut docs = Vec::new();
        for doc in self.store.doc_ids()? {
            let sync = self.sync_record(&doc)?;
            if sync.since_snapshot < SNAPSHOT_EVERY || sync.seen == 0 {
                continue;
            }
            let Some(meta) = self.doc_meta(&doc)? else {
                continue;
            };
            let allowed =
                meta.owner == me || meta.role_of(&me, now()).is_some_and(|r| r >= Role::Write);
            let keys = self.doc_keys(&doc)?;
            let (true, Some(key), Some(body)) =
                (allowed, keys.get(&meta.epoch), self.snapshot_body(&doc)?)
            else {
                continue;
            };
            let plain = codec::encode(&body);
            if plain.len() > MAX_ENVELOPE - 1024 {
                continue;
            }
            let header = Header {
                kind: Kind::Snapshot,
                doc,
                epoch: meta.epoch,
                account: me,
                author: self.device_id(),
                id: EnvelopeId(casebook_shared::crypto::random_bytes()),
                covers: sync.seen,
            };
            envelopes.push(Envelope::seal(header, key, &self.id.signer, &plain).into_bytes());
            docs.push((doc, sync));
        }
        let mut sent = 0;
        for (envs, docs) in envelopes.chunks(64).zip(docs.chunks(64)) {
            let results = match relay
                .request(&Request::Upload {
                    envelopes: envs.to_vec(),
                })
                .await?
            {
                Response::Uploaded { results } => results,
                r => return Err(unexpected(r)),
            };
            for ((doc, mut sync), r) in docs.iter().copied().zip(results) {
                match r {
                    Ok(seq) => {
                        sync.since_snapshot = 0;
                        sync.acked = sync.acked.max(seq);
                        self.store.set_doc_sync(&doc, sync)?;
                        sent += 1;
                    }
                    // A snapshot is an optimisation; the next round tries again.
                    Err(code) => tracing::warn!(doc = %doc.short(), ?code, "snapshot refused"),
                }
            }
        }
        Ok(sent)
    }
}

/// One document's fetched envelopes, waiting to be applied together.
#[derive(Default)]
struct Batch {
    snapshot: Option<(u64, SnapshotBody)>,
    changes: Vec<(u64, zeroize::Zeroizing<Vec<u8>>)>,
    /// Changes from members who may only comment, checked one by one.
    comments: Vec<(u64, zeroize::Zeroizing<Vec<u8>>)>,
    /// Highest sequence number fetched.
    seen: u64,
    /// Highest key epoch of the envelopes taken so far (see
    /// [`crate::store::DocSync::top_epoch`]).
    top_epoch: u32,
}
