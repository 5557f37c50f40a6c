//! The push half of a round: the outbox sent in order (access entries,
//! then changes sealed under the newest epoch) as [`Sending`] decides, and
//! acknowledgements recorded.

use std::collections::BTreeSet;

use casebook_shared::access::{DocEntry, SIG_LABEL as ACCESS_SIG};
use casebook_shared::codec;
use casebook_shared::envelope::Envelope;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::DocId;
use casebook_shared::signed::Signed;

use super::sending::{DocTerms, Mode, Sending, Step};
use super::{HeldEdits, Progress, unexpected};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::store::Outgoing;

impl Home {
    /// Sends the outbox rows that may go and removes what the relay
    /// acknowledged (the others are reported as held), as [`Sending`]
    /// decides in [`Mode::Round`]. Returns how many the relay acknowledged,
    /// and how many it refused because a new epoch of their document
    /// landed after this round's pull (they stay queued).
    pub(super) async fn push(
        &mut self,
        relay: &Relay,
        held_back: &BTreeSet<DocId>,
        held: &mut Vec<HeldEdits>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(usize, usize)> {
        let mut moved = 0;
        let mut sending = Sending::new(Mode::Round, self.store.outbox()?, held_back.clone())
            .kept_under_hold(self.kept_under_hold()?);
        loop {
            match sending.poll() {
                Step::Terms(doc) => {
                    let terms = self.send_terms(&doc)?;
                    sending.terms(doc, Some(terms));
                }
                Step::Seal(row, epoch) => {
                    let envelope = self.envelope_for(&row, epoch)?;
                    sending.sealed(row.id, row.doc, envelope);
                }
                Step::Retire(id) => self.store.remove_outbox(id)?,
                Step::Access(row) => {
                    let entries: Vec<Signed> = codec::decode(&row.payload)?;
                    let withdrawn = entries.iter().any(crate::docs::access_state::is_disposal)
                        && self.disposal_withdrawn(&row.doc, &entries)?;
                    if !withdrawn {
                        self.push_access(relay, &row.doc, entries).await?;
                    }
                    self.store.remove_outbox(row.id)?;
                    sending.access_sent(!withdrawn);
                }
                Step::Upload(envelopes) => {
                    let n = envelopes.len();
                    let results = match relay.request(&Request::Upload { envelopes }).await? {
                        Response::Uploaded { results } if results.len() == n => results,
                        r => return Err(unexpected(r)),
                    };
                    let uploaded = sending.uploaded(&results);
                    self.rename_conflicted(&uploaded.conflicted)?;
                    self.store_acks(&uploaded.acked)?;
                    moved += uploaded.moved;
                    if let Some(code) = uploaded.failed {
                        held.extend_from_slice(sending.held());
                        return Err(Error::Net(NetError::Relay {
                            code,
                            reason: "the relay refused a change; it stays queued".into(),
                        }));
                    }
                }
                Step::Progress { done, total } => progress(Progress::Pushed { done, total }),
                Step::Done => break,
            }
        }
        held.extend_from_slice(sending.held());
        Ok((sending.acknowledged(), moved))
    }

    /// Gives each row the relay refused for its envelope id (other bytes
    /// are stored under it) a new id, to go again; a row renamed already
    /// this session that clashes again means the relay refuses any id.
    pub(super) fn rename_conflicted(&mut self, rows: &[i64]) -> Result<()> {
        for id in rows {
            if !self.synced.renamed.insert(*id) {
                return Err(Error::Net(NetError::Relay {
                    code: ErrorCode::Conflict,
                    reason:
                        "the relay refuses a change under a new envelope id too; it stays queued"
                            .into(),
                }));
            }
            self.store.new_envelope_id(*id)?;
        }
        Ok(())
    }

    /// What sending a change to `doc` turns on: this account's role there
    /// now, the newest epoch, and whether it was disposed of here.
    pub(super) fn send_terms(&self, doc: &DocId) -> Result<DocTerms> {
        let meta = self.access().doc_meta(doc)?;
        Ok(DocTerms {
            role: meta
                .as_ref()
                .and_then(|m| m.role_of(&self.account_id(), self.now())),
            epoch: meta.as_ref().map_or(0, |m| m.epoch),
            disposed: meta.is_some_and(|m| m.disposed),
        })
    }

    /// Removes the rows the relay stored and notes how far it has stored
    /// each document, in one transaction; queues the newest change of each
    /// as a claim for the account's other devices, unless one newer is
    /// queued (a re-sent row holds older changes; see [`super::claims`]);
    /// a row of others' changes, sent on their behalf, claims nothing.
    pub(super) fn store_acks(&mut self, acked: &[(i64, DocId, u64)]) -> Result<()> {
        if acked.is_empty() {
            return Ok(());
        }
        let device = self.device_id();
        self.store.transaction(|s| {
            for (id, doc, seq) in acked {
                if let Some(payload) = s.outbox_change(*id)?
                    && let Some((hash, max_op)) = crate::notes::tips_of(&payload, &device.0)
                        .unwrap_or_default()
                        .into_iter()
                        .max_by_key(|(_, op)| *op)
                {
                    s.queue_claim(doc, &hash.0, max_op)?;
                }
                s.remove_outbox(*id)?;
                s.note_acked(doc, *seq)?;
            }
            Ok(())
        })?;
        Ok(())
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
            && let Some(key) = self.access().doc_keys(&row.doc)?.get(&epoch)
            && env.open(key).is_ok()
        {
            return Ok(env.into_bytes());
        }
        let e = self
            .access()
            .seal_change(&row.doc, row.env_id, &row.payload)?;
        self.store.set_outbox_envelope(row.id, &e)?;
        Ok(e)
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
}
