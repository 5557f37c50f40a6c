//! Taking a fetched envelope into its document's batch: checked against
//! everything this device knows (see [`super::check::admit`]), this
//! device's own echoes set aside, and a refusal the relay may mend made to
//! hold the seen mark back.

use std::collections::BTreeMap;

use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::crypto::SecretKey;
use casebook_shared::envelope::{Envelope, Kind};
use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DocId};
use zeroize::Zeroizing;

use super::apply::{Batch, Taken};
use super::{RefusedEnvelope, SyncReport, check};
use crate::docs::SnapshotBody;
use crate::error::{Inconsistent, Result};
use crate::home::Home;

impl Home {
    /// Checks a fetched envelope into its document's batch (started
    /// from the document's sync record), which it moves the seen mark of.
    /// With `recheck` the document is fetched whole to find what the relay
    /// lost ([`Batch::recheck`]): what is set aside as held is kept as
    /// served.
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
                let held = match after_removal {
                    true => self.held_sealed(item, &keys)?,
                    false => None,
                };
                let replay = held.is_some();
                // Served, though refused: not what the relay lost.
                if let Some(body) = held.filter(|_| batch.recheck) {
                    batch.echoes.push(body);
                }
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

    /// The change sealed in `item`, opened, if it is one this device holds:
    /// it opens under a key held here, and the document has its author's
    /// newest change in it (a device's changes follow one another; asked
    /// by hash, so changes waiting in the document do not muddle it).
    fn held_sealed(
        &mut self,
        item: &Stored,
        keys: &BTreeMap<u32, SecretKey>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Ok(env) = Envelope::decode(item.envelope.clone()) else {
            return Ok(None);
        };
        let Some(body) = keys
            .get(&env.header.epoch)
            .and_then(|key| env.open(key).ok())
        else {
            return Ok(None);
        };
        let tips: Vec<crate::notes::ChangeHash> =
            crate::notes::tips_of(&body, env.header.author.as_bytes())
                .unwrap_or_default()
                .into_iter()
                .map(|(h, _)| h)
                .collect();
        let held = !tips.is_empty() && self.docs().lacking(&item.doc, &tips)?.is_empty();
        Ok(held.then_some(body))
    }
}
