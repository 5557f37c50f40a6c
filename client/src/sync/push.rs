//! The push half of a round: the outbox sent in order (access entries,
//! then changes sealed under the newest epoch), acknowledgements recorded,
//! and snapshots of documents that gathered many changes.

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::access::{DocEntry, Role, SIG_LABEL as ACCESS_SIG};
use casebook_shared::codec;
use casebook_shared::envelope::{Envelope, Header, Kind, MAX_ENVELOPE};
use casebook_shared::frames::{ErrorCode, MAX_UPLOAD, Request, Response};
use casebook_shared::ids::{DocId, EnvelopeId};
use casebook_shared::signed::Signed;

use super::{HeldEdits, PAGE_BYTES, Progress, SNAPSHOT_EVERY, hold, unexpected};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::store::{OutKind, Outgoing};

impl Home {
    /// Sends the outbox rows that may go and removes what the relay
    /// acknowledged (the others are reported as held):
    /// access-log entries first, in order, then changes in order, because a
    /// change is sealed under the newest epoch when first sent, and the relay
    /// must know that epoch. Returns how many were acknowledged.
    pub(super) async fn push(
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
        let mut gone: BTreeMap<DocId, bool> = BTreeMap::new();
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
            // A document disposed of here takes no more changes: they are
            // deleted with it once the relay has its disposal.
            let disposed = match gone.get(&row.doc) {
                Some(g) => *g,
                None => {
                    let g = self.doc_meta(&row.doc)?.is_some_and(|m| m.disposed);
                    gone.insert(row.doc, g);
                    g
                }
            };
            if row.kind != OutKind::Access && disposed {
                self.store.remove_outbox(row.id)?;
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
                    if entries.iter().any(crate::app::disposal::is_disposal)
                        && self.disposal_withdrawn(&row.doc, &entries)?
                    {
                        self.store.remove_outbox(row.id)?;
                        gone.insert(row.doc, false);
                        continue;
                    }
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
                                meta.as_ref().and_then(|m| m.role_of(&me, self.now())),
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
                    let envelope = self.envelope_for(&row, current)?;
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

    /// The envelope to send for a queued change. It is sealed with the
    /// edit and kept, so a retry sends the same bytes under the same id and
    /// the relay recognises it. It is sealed again (same id) unless it was
    /// sealed under `epoch`, the document's newest, with the key held for
    /// that epoch now: a rebase of this device's access entries onto
    /// another device's can give an epoch number a new key, and what was
    /// sealed under the old one would be stored and opened by no one.
    pub(super) fn envelope_for(&self, row: &Outgoing, epoch: u32) -> Result<Vec<u8>> {
        if let Some(kept) = &row.envelope
            && let Ok(env) = Envelope::decode(kept.clone())
            && env.header.epoch == epoch
            && let Some(key) = self.doc_keys(&row.doc)?.get(&epoch)
            && env.open(key).is_ok()
        {
            return Ok(env.into_bytes());
        }
        let e = self.seal_change(&row.doc, row.env_id, &row.payload)?;
        self.store.set_outbox_envelope(row.id, &e)?;
        Ok(e)
    }

    pub(crate) fn seal_change(&self, doc: &DocId, id: [u8; 24], body: &[u8]) -> Result<Vec<u8>> {
        let meta = self.doc_meta(doc)?.ok_or(Inconsistent::NoAccessLog(*doc))?;
        let keys = self.doc_keys(doc)?;
        let key = keys.get(&meta.epoch).ok_or(Error::NoKey(*doc))?;
        if body.len() > MAX_ENVELOPE - 1024 {
            return Err(Error::EditTooLarge { bytes: body.len() });
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
    pub(super) async fn upload(
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
    pub(super) async fn push_access(
        &mut self,
        relay: &Relay,
        doc: &DocId,
        entries: Vec<Signed>,
    ) -> Result<()> {
        let first: DocEntry = entries
            .first()
            .ok_or(Inconsistent::EmptyOutboxRow)?
            .open(ACCESS_SIG)
            .map_err(Inconsistent::EntryDoesNotOpen)?;
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
                _ => Err(Inconsistent::AccessLogChanged { doc: *doc, reason }.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads a snapshot of each document that has gathered many changes
    /// and that this account may snapshot. Its `covers` is the highest
    /// sequence number fetched, so it never claims a change it lacks.
    pub(super) async fn push_snapshots(&mut self, relay: &Relay) -> Result<usize> {
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
            // Only the owner's devices write snapshots (see sync::check),
            // and none of a document disposed of.
            let allowed = meta.owner == me && !meta.disposed;
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
