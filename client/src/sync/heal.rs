//! Healing a relay that lost what its devices hold: a device sends back
//! what it holds and the relay lacks. Its own changes, as new envelopes,
//! where a snapshot or a restored relay shows them missing, or another
//! device asks for one; from an owner's device, another device's change
//! asked for, or missing from a snapshot that covers it; after the relay
//! showed it lost data, whatever a whole fetch of a document did not serve
//! ([`RECHECK`]); the access entries it signed, where the relay's access
//! log is shorter than the one held here.
//! Nothing the relay serves is taken on its word: only what this device
//! holds (and signed, or holds signed) goes back.

use std::collections::{BTreeSet, HashMap};

use casebook_shared::access::Role;
use casebook_shared::account::AccountState;
use casebook_shared::frames::DocHead;
use casebook_shared::ids::DocId;

use super::SyncReport;
use super::apply::Batch;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::notes::ChangeHash;
use crate::store::OutKind;

/// The most bytes of changes sent again in one envelope: well inside an
/// envelope's limit, so a long loss goes back in several.
const RESEND_BYTES: usize = 1024 * 1024;

/// Why this device sends its own changes again.
pub(super) enum Resent {
    /// The relay lost them.
    Lost,
    /// Another device asked for one.
    Asked,
}

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
        if self.is_audit_doc(doc) {
            // This device's whole trail goes again: the relay may have
            // lost any of it, and a device that lacks an entry finds the
            // chain broken at every later one. Each device keeps another's
            // entries once, by device and number, however often sent.
            // So do its claims, which the lost envelopes carried.
            self.store
                .put_secret(crate::audit_sync::SENT, &0u64.to_be_bytes())?;
            self.store.retell_every_claim()?;
        } else {
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
        let pending = self.pending_changes(doc)?;
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
        self.queue_resend(doc, lost, Resent::Lost)
    }

    /// After fetching `doc` whole because the relay showed this round that
    /// it lost data (see [`RECHECK`]): sends back what this device holds
    /// and the relay did not serve, in neither its `snapshot` nor the
    /// changes `served`. Its own changes, as it does where a snapshot lacks
    /// them; from an owner's device, other devices' changes on their
    /// behalf. Returns how many.
    pub(super) fn send_unserved(
        &mut self,
        doc: &DocId,
        snapshot: Option<&[u8]>,
        served: &[&[u8]],
    ) -> Result<usize> {
        let pending = self.pending_changes(doc)?;
        let device = self.device_id();
        let unserved = match self
            .docs()
            .unserved(doc, snapshot, served, &device.0, &pending)
        {
            Ok(found) => found,
            Err(e @ Error::Store(_)) => return Err(e),
            // A snapshot that does not load is refused when it is merged.
            Err(_) => return Ok(0),
        };
        let mut sent = self.queue_resend(doc, unserved.own, Resent::Lost)?;
        if !unserved.others.is_empty() && self.may_forward(doc)? {
            sent += self.forward(
                doc,
                unserved.others,
                "were missing from the relay, which had lost data",
            )?;
        }
        Ok(sent)
    }

    /// The changes to `doc` queued here and not sent yet, concatenated.
    fn pending_changes(&self, doc: &DocId) -> Result<Vec<u8>> {
        let mut pending = Vec::new();
        for row in self.store.outbox()? {
            if row.doc == *doc && row.kind != OutKind::Access {
                pending.extend_from_slice(&row.payload);
            }
        }
        Ok(pending)
    }

    /// Queues again `lost`, changes this device made to `doc`, if this
    /// account may still send them; records `why` in the trail, and returns
    /// how many.
    pub(super) fn queue_resend(
        &mut self,
        doc: &DocId,
        lost: Vec<Vec<u8>>,
        why: Resent,
    ) -> Result<usize> {
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
        self.queue_in_pages(doc, kind, lost)?;
        let line = match why {
            Resent::Lost => format!(
                "{count} change(s) made on this device were missing from the relay (lost, or restored from an older copy): sent again"
            ),
            Resent::Asked => format!(
                "another device asked for a change made on this device that it was not served: sent again, {count} change(s) with those beneath it"
            ),
        };
        self.trail().record(&line, Some(*doc))?;
        Ok(count)
    }

    /// Queues `changes` to `doc` as `kind`, in envelopes of at most a page
    /// each, in order.
    fn queue_in_pages(&self, doc: &DocId, kind: OutKind, changes: Vec<Vec<u8>>) -> Result<()> {
        let mut batch = Vec::new();
        for change in changes {
            if !batch.is_empty() && batch.len() + change.len() > RESEND_BYTES {
                self.store
                    .push_outbox(doc, kind, &std::mem::take(&mut batch))?;
            }
            batch.extend_from_slice(&change);
        }
        self.store.push_outbox(doc, kind, &batch)?;
        Ok(())
    }

    /// From an owner's device: queues the changes among `wanted` that this
    /// device holds and another device made, on that device's behalf, and
    /// returns how many. It is answered now even where the device that
    /// made the change could still send it: that device may be away for
    /// weeks, by the time it syncs it may be revoked or its share ended,
    /// and the want is asked again only an hour later, then less often
    /// (`store::ASK_AGAIN_AFTER`; found by seed
    /// 3,405,645,290: a colleague's comment the relay lost in a restore,
    /// which the owner's phone held, was asked for while the colleague
    /// could still send it, the share then ended, and the owner's laptop
    /// lacked it for good). A copy the author's device sends as well is
    /// taken once.
    pub(super) fn forward_held(&mut self, doc: &DocId, wanted: &[ChangeHash]) -> Result<usize> {
        if !self.may_forward(doc)? {
            return Ok(0);
        }
        let device = self.device_id();
        let others: Vec<Vec<u8>> = self
            .docs()
            .held_with_actor(doc, wanted)?
            .into_iter()
            // A device's actor is its id, then a suffix: a bare id is no
            // device's actor.
            .filter(|(_, actor, _)| actor.len() > 32 && !actor.starts_with(&device.0))
            .map(|(.., raw)| raw)
            .collect();
        self.forward(doc, others, "were asked for")
    }

    /// From an owner's device, served a snapshot of `doc` that covers up
    /// to `covers`, at or past this device's seen mark, with nothing of
    /// the document missing here: queues the changes other devices made
    /// that this device holds and the snapshot lacks, on their behalf, and
    /// returns how many. The relay served each of them here, at or below
    /// the seen mark, so a snapshot covering past it that lacks them shows
    /// the relay lost them (a restore renumbered upward leaves no seen mark
    /// above the relay's numbers to tell), and nothing else may name them:
    /// a change nothing builds on yet, whose own device sends nothing again
    /// (seed 3,405,644,914: a colleague's edit one owner's device fetched
    /// just before the restore was gone from the other for good).
    ///
    /// Changes applied past a refusal the relay may mend lie above the
    /// seen mark (which stops before it) and may be sent though the relay
    /// has them: taken once by every device, that costs traffic only. Each
    /// snapshot is compared once (the highest `covers` compared is kept),
    /// so neither a mark stuck below a snapshot nor a relay serving the same
    /// one again makes this device send the same changes each round.
    pub(super) fn forward_lost(
        &mut self,
        doc: &DocId,
        covers: u64,
        snapshot: &[u8],
    ) -> Result<usize> {
        let name = compared_name(doc);
        let compared = match self.store.get_secret(&name)? {
            Some(b) if b.len() == 8 => u64::from_be_bytes(b[..].try_into().expect("8 bytes")),
            _ => 0,
        };
        if covers <= compared || !self.may_forward(doc)? {
            return Ok(0);
        }
        self.store.put_secret(&name, &covers.to_be_bytes())?;
        let device = self.device_id();
        let lost = match self.docs().others_changes_not_in(doc, snapshot, &device.0) {
            Ok(found) => found,
            Err(e @ Error::Store(_)) => return Err(e),
            // A snapshot that does not load is refused when it is merged.
            Err(_) => return Ok(0),
        };
        self.forward(doc, lost, "were missing from a snapshot that covers them")
    }

    /// Whether this device may carry others' changes to `doc`: the
    /// relay takes a device's own envelopes only, but an owner's device
    /// may carry others' changes, as its snapshots do (see `sync::check`);
    /// no one else's may.
    fn may_forward(&self, doc: &DocId) -> Result<bool> {
        let Some(meta) = self.access().doc_meta(doc)? else {
            return Ok(false);
        };
        Ok(!meta.disposed && meta.role_of(&self.account_id(), self.now()) == Some(Role::Owner))
    }

    /// Queues `changes`, other devices' changes to `doc`, on their behalf;
    /// records in the trail why, and returns how many.
    fn forward(&mut self, doc: &DocId, changes: Vec<Vec<u8>>, why: &str) -> Result<usize> {
        if changes.is_empty() {
            return Ok(0);
        }
        let count = changes.len();
        self.queue_in_pages(doc, OutKind::Change, changes)?;
        self.trail().record(
            &format!(
                "{count} change(s) other devices made {why}, and this device held them: sent on their behalf"
            ),
            Some(*doc),
        )?;
        Ok(count)
    }

    /// Where the relay's listing shows a shorter access log than the one
    /// held here (`confirmed`: each document's entries less what is queued
    /// here to send), or does not list at all a document this account owns
    /// and the relay had (`owned`; a relay restored from a copy older than
    /// the document), sends back the entries it lacks, when devices of this
    /// account (`mine`) signed every one of them (the relay takes an
    /// account's own entries only), and counts them as the relay's in
    /// `heads`. A document sent back whole is listed with no envelopes, so
    /// the round takes it as rewound and sends back what it holds. What
    /// cannot be sent back is left for [`super::check::plan`] to hold back
    /// as a rollback: the account that signed it sends it back when it
    /// syncs.
    /// Returns the documents healed.
    pub(super) async fn heal_access(
        &mut self,
        relay: &Relay,
        heads: &mut Vec<DocHead>,
        confirmed: &HashMap<DocId, u64>,
        owned: &BTreeSet<DocId>,
        mine: &AccountState,
    ) -> Result<Vec<DocId>> {
        let listed: BTreeSet<DocId> = heads.iter().map(|h| h.doc).collect();
        let gone = owned
            .iter()
            .filter(|d| !listed.contains(d))
            .map(|doc| DocHead {
                doc: *doc,
                access_len: 0,
                access_head: casebook_shared::ids::Hash([0; 32]),
                seq: 0,
            });
        let gone: Vec<DocHead> = gone.collect();
        let mut healed = Vec::new();
        // One kept under a legal hold is listed by its disposal alone,
        // which takes nothing after it.
        let kept = self.kept_under_hold()?;
        for head in heads.iter_mut() {
            if kept.contains(&head.doc) {
                continue;
            }
            if self.send_access_back(relay, head, confirmed, mine).await? {
                healed.push(head.doc);
            }
        }
        for mut head in gone {
            if self
                .send_access_back(relay, &mut head, confirmed, mine)
                .await?
            {
                healed.push(head.doc);
                heads.push(head);
            }
        }
        Ok(healed)
    }

    /// Sends back what the relay lacks of one document's access log, as
    /// [`Home::heal_access`] says; returns whether it did.
    async fn send_access_back(
        &mut self,
        relay: &Relay,
        head: &mut DocHead,
        confirmed: &HashMap<DocId, u64>,
        mine: &AccountState,
    ) -> Result<bool> {
        let Some(&confirmed) = confirmed.get(&head.doc) else {
            return Ok(false);
        };
        if head.access_len >= confirmed {
            return Ok(false);
        }
        let log = self.access().access_log(&head.doc)?;
        let Some(lost) = log.get(head.access_len as usize..confirmed as usize) else {
            return Ok(false);
        };
        if lost.is_empty() || lost.iter().any(|e| !mine.devices.contains_key(&e.signer)) {
            return Ok(false);
        }
        match self.push_access(relay, &head.doc, lost.to_vec()).await {
            Ok(()) => {}
            // Refused (another device sent the same entries back first, or
            // the relay's write rate): left to the listing's check, as
            // what cannot be sent back is.
            Err(Error::Net(NetError::Relay { code, reason })) => {
                tracing::warn!(doc = %head.doc.short(), ?code, %reason, "access entries not sent back");
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        let what = match head.access_len {
            0 => "the relay lacked this document (restored from an older copy, or losing data): its access log sent back".to_string(),
            _ => format!(
                "the relay's access log lacked {} entr(ies) signed on this account's devices (restored from an older copy, or losing data): sent back",
                lost.len()
            ),
        };
        self.trail().record(&what, Some(head.doc))?;
        head.access_len = confirmed;
        if let Some(last) = lost.last() {
            head.access_head = last.hash(casebook_shared::access::HASH_LABEL);
        }
        Ok(true)
    }
}

/// The setting that says the relay showed it lost data: it lacked the end
/// of an account log or a document's access log this device sent back,
/// held fewer of a document's envelopes than this device had seen, or no
/// longer held this device's last audit envelope. The relay's numbers do
/// not show every loss: a relay restored from an older copy numbers on
/// above the time it starts at, so a change only one device fetched before
/// the restore, which nothing builds on, is named missing by nobody (seed
/// 3,405,644,827: a hostile colleague's comment, whose device sends
/// nothing again, that only the owner's phone held). So the first pull
/// that lists the relay after it is set (the same pull, where access
/// entries were sent back) fetches whole every document held here (but
/// the audit document, whose trail and claims heal their own way, and one
/// rewound, which heals as it did) and sends back what the relay did not
/// serve ([`Home::send_unserved`]); the setting is then cleared. At most
/// once an hour ([`RECHECKED_AT`]): a relay that feigns a loss each round
/// makes a device fetch everything again, and an owner's device forward
/// what it leaves out, once an hour, not each round.
const RECHECK: &str = "relay_lost_data";

/// When this device last fetched everything whole to find what the relay
/// lost.
const RECHECKED_AT: &str = "relay_lost_data_checked";

impl Home {
    /// The relay showed it lost data: the next pull that lists it looks
    /// for the rest ([`RECHECK`]).
    pub(crate) fn relay_lost_data(&self) -> Result<()> {
        Ok(self.store.put_secret(RECHECK, &[1])?)
    }

    /// Whether this pull looks for what the relay lost: it showed a loss
    /// since the last look ([`RECHECK`]), and the last look was an hour ago
    /// or more (then noted as now).
    pub(super) fn recheck_due(&self) -> Result<bool> {
        Ok(self.store.get_secret(RECHECK)?.is_some() && self.due(RECHECKED_AT)?)
    }

    /// After a pull that looked for what the relay lost, fetching `docs`
    /// documents whole: what it lacks is queued to go back, and the
    /// person is told once.
    pub(super) fn rechecked(&self, docs: usize) -> Result<()> {
        self.store.delete_secret(RECHECK)?;
        self.trail().record(
            &format!(
                "the relay showed it had lost data (restored from an older copy, or losing data): {docs} document(s) held here fetched again whole, and what it lacked sent back"
            ),
            None,
        )
    }
}

/// The setting that keeps the highest `covers` of a snapshot of `doc` that
/// [`Home::forward_lost`] compared against (deleted with the document).
pub(crate) fn compared_name(doc: &DocId) -> String {
    format!("snapshot_compared:{}", hex::encode(doc.0))
}
