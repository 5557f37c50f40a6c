//! Disposing of a case when its retention has run out: by destroying it,
//! not hiding it. The owner appends a disposal to the access log of the
//! case and of its psychotherapy notes; the relay then deletes their
//! envelopes, snapshots and every key envelope, and keeps the signed
//! disposal alone, so every device that held the case (the owner's other
//! devices, a colleague's, one offline until later) learns of it, checks
//! its signature against the owner's account, and deletes the case with
//! every key that opened it. The audit keeps that the case existed and was
//! disposed of, when and by whom; not what it said.

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::access::{DocEntry, DocOp, DocState, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use crate::app::retention::RecordLifeError;
use crate::docs::access_state::{keys_name, meta_name};
use crate::error::Inconsistent;
use crate::net::Relay;
use crate::{Home, Result};

/// The documents this device knows were disposed of (kept so a listing
/// that still shows their disposal is not taken up again every round).
const DISPOSED: &str = "disposed_docs";

/// Set (in the clear: it says only that a rebuild is due) when a disposal
/// deleted rows the file has not been rebuilt since.
const REWRITE_DUE: &str = "rewrite_due";

/// The sealed setting that keeps the documents kept under a legal hold
/// though the relay holds their disposal.
const KEPT_UNDER_HOLD: &str = "kept_under_hold";

/// What came of a disposal the relay shows.
#[derive(Debug, PartialEq)]
pub(crate) enum Taken {
    /// Everything held of the document is deleted.
    Purged,
    /// It does not count, for this reason: nothing is deleted.
    Refused(String),
    /// It counts, but an owner's device holds the case under a legal hold,
    /// placed here before the disposal (signed on another device that did
    /// not know of the hold) reached it, or placed after a restore undid
    /// the disposal and before it was given back. A case under a hold is
    /// never destroyed, so this device keeps it, alone (the relay refuses
    /// anything more of it), and carries the disposal out once the hold is
    /// lifted here. Only the owner's devices keep one: the hold is the
    /// owner's to lift, and a colleague's device could never be told of it
    /// (the relay takes nothing after a disposal), so its copy would
    /// outlive the hold.
    KeptUnderHold,
}

/// A case kept under a legal hold though its owner disposed of it, on the
/// owner's device that holds the hold (a disposal signed on another device
/// before the hold reached it), as a sync round reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KeptCase {
    pub case: DocId,
    /// The client's name.
    pub client: String,
    /// The hold's reason.
    pub hold: String,
}

/// Why `gone` does not count as the disposal of `doc`, if it does not: it
/// must verify against its owner's account `owner`, and come from a device
/// the owner has not revoked. Deleting is for good: a device revoked since
/// (a stolen laptop, say) could sign a disposal dated back to when it was
/// active.
pub(crate) fn disposal_refused(gone: &Signed, doc: &DocId, owner: &AccountState) -> Option<String> {
    if let Err(e) = DocState::verify_disposal(gone, doc, owner) {
        return Some(format!("a disposal that does not verify: {e}"));
    }
    owner
        .devices
        .get(&gone.signer)
        .is_none_or(|d| d.revoked_seq.is_some())
        .then(|| "a disposal signed by a device its owner has revoked; the case is kept".into())
}

impl Home {
    /// Disposes of a case this account owns: refused under a legal hold,
    /// and before its retention period has run out unless `early`. The
    /// disposal goes out with the next sync; this device, like every
    /// other, deletes the case when the relay shows it.
    pub fn dispose_case(&mut self, case: &DocId, early: bool) -> Result<()> {
        let row = self
            .retention()?
            .into_iter()
            .find(|r| r.case == *case)
            .ok_or(RecordLifeError::NotOwnerDispose)?;
        if let Some(reason) = &row.legal_hold {
            return Err(RecordLifeError::LegalHold {
                reason: reason.clone(),
            }
            .into());
        }
        if !row.is_due && !early {
            return Err(RecordLifeError::NotDue {
                due: row.due,
                years: row.years,
            }
            .into());
        }
        let private = self
            .docs()
            .cases()?
            .into_iter()
            .find(|(d, _)| d == case)
            .and_then(|(_, s)| s.private_doc);
        for doc in std::iter::once(*case).chain(private) {
            if self.access().doc_meta(&doc)?.is_none() {
                return Err(RecordLifeError::DocumentMissing(doc).into());
            }
        }
        self.atomically(|home| {
            for doc in std::iter::once(*case).chain(private) {
                home.access().append_access_entry(&doc, DocOp::Dispose)?;
            }
            home.trail().record(
                &format!(
                    "case disposal signed{}; it goes out with the next sync",
                    if row.is_due {
                        ""
                    } else {
                        " before its retention ran out"
                    }
                ),
                Some(*case),
            )
        })
    }

    /// The legal hold `doc` is under here, as (the case, its client's
    /// name, the hold's reason): `doc` is the case or its psychotherapy
    /// notes.
    fn legal_hold_on(&self, doc: &DocId) -> Result<Option<(DocId, String, String)>> {
        Ok(self
            .docs()
            .cases()?
            .into_iter()
            .find(|(d, s)| d == doc || s.private_doc == Some(*doc))
            .and_then(|(d, s)| Some((d, s.name, s.legal_hold?))))
    }

    /// Withdraws a disposal signed here but not yet sent if the case was
    /// placed under a legal hold since (by another device of the account):
    /// its unsent entries leave this device's copy of the log, and the
    /// audit says why. Says whether it did.
    pub(crate) fn disposal_withdrawn(&mut self, doc: &DocId, unsent: &[Signed]) -> Result<bool> {
        let Some((case, _, why)) = self.legal_hold_on(doc)? else {
            return Ok(false);
        };
        self.atomically(|home| {
            let len = home.store.log(&doc.0)?.len() as u64;
            let kept = len.saturating_sub(unsent.len() as u64);
            home.store.truncate_log(&doc.0, kept)?;
            let mut sync = home.docs().sync_record(doc)?;
            sync.access_len = kept;
            home.store.set_doc_sync(doc, sync)?;
            home.access().rebuild_meta(doc)?;
            home.trail().record(
                &format!(
                    "disposal withdrawn before it was sent: the case is under a legal hold ({why})"
                ),
                Some(case),
            )
        })?;
        Ok(true)
    }

    /// The documents known to be disposed of.
    pub(crate) fn disposed_docs(&self) -> Result<Vec<DocId>> {
        Ok(match self.store.get_secret(DISPOSED)? {
            Some(b) => codec::decode(&b)?,
            None => Vec::new(),
        })
    }

    /// Takes a disposal the relay shows for `doc`: checked alone against
    /// the owner's account (the log before it is gone), then everything
    /// held of the document deleted, unless the owner's device holds it
    /// under a legal hold (see [`Taken::KeptUnderHold`]). Refused, with
    /// why, when it does not check out: nothing is deleted.
    pub(crate) async fn take_disposal(
        &mut self,
        relay: &Relay,
        doc: &DocId,
        gone: &Signed,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<Taken> {
        let entry: DocEntry = gone
            .open(SIG_LABEL)
            .map_err(Inconsistent::EntryDoesNotOpen)?;
        if let Some(meta) = self.access().doc_meta(doc)?
            && meta.owner != entry.account
        {
            return Ok(Taken::Refused(
                "a disposal signed by someone other than the owner".into(),
            ));
        }
        if let Some(why) = self.log_refused(&entry.account) {
            return Ok(Taken::Refused(why));
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(entry.account) {
            match self.other_log(relay, &entry.account).await? {
                Some(st) => slot.insert(st),
                None => {
                    return Ok(Taken::Refused(
                        self.log_refused(&entry.account).unwrap_or_default(),
                    ));
                }
            };
        }
        if let Some(why) = disposal_refused(gone, doc, &accounts[&entry.account]) {
            return Ok(Taken::Refused(why));
        }
        let by = self.name_of(&entry.account)?;
        if entry.account == self.account_id()
            && let Some((case, client, hold)) = self.legal_hold_on(doc)?
        {
            self.keep_under_hold(doc, KeptCase { case, client, hold }, &by)?;
            return Ok(Taken::KeptUnderHold);
        }
        self.purge_doc(doc, &by, Some(gone))?;
        Ok(Taken::Purged)
    }

    /// The documents this device keeps under a legal hold though the relay
    /// holds their disposal (see [`Taken::KeptUnderHold`]).
    pub(crate) fn kept_under_hold(&self) -> Result<BTreeSet<DocId>> {
        Ok(match self.store.get_secret(KEPT_UNDER_HOLD)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeSet::new(),
        })
    }

    fn store_kept_under_hold(&self, docs: &BTreeSet<DocId>) -> Result<()> {
        Ok(self
            .store
            .put_secret(KEPT_UNDER_HOLD, &codec::encode(docs))?)
    }

    /// After a pull that judged every document the relay lists: forgets
    /// each one kept under a hold that the pull neither kept (`still`) nor
    /// held back, since the relay no longer holds its disposal (restored
    /// again from an older copy, say): its edits go again as any other's,
    /// and a disposal served again is judged afresh.
    pub(crate) fn kept_under_hold_judged(&mut self, still: impl Fn(&DocId) -> bool) -> Result<()> {
        let mut docs = self.kept_under_hold()?;
        let before = docs.len();
        docs.retain(|d| still(d));
        if docs.len() != before {
            self.store_kept_under_hold(&docs)?;
        }
        Ok(())
    }

    /// Keeps `doc`, disposed of on the relay, under its hold `kept`:
    /// remembered (so that its edits are held, not sent to a relay that
    /// refuses them), told in this round's report, and written in the trail
    /// the first time (once for the case and its psychotherapy notes).
    fn keep_under_hold(&mut self, doc: &DocId, kept: KeptCase, by: &str) -> Result<()> {
        let mut docs = self.kept_under_hold()?;
        if docs.insert(*doc) {
            self.atomically(|home| {
                home.store_kept_under_hold(&docs)?;
                if *doc != kept.case {
                    return Ok(());
                }
                home.trail().record(
                    &format!(
                        "disposal by {by} not carried out on this device: the case is under a legal hold here ({}); the relay no longer holds it, and this device keeps it alone until the hold is lifted here",
                        kept.hold
                    ),
                    Some(kept.case),
                )
            })?;
        }
        if !self
            .synced
            .kept_under_hold
            .iter()
            .any(|k| k.case == kept.case)
        {
            self.synced.kept_under_hold.push(kept);
        }
        Ok(())
    }

    /// Deletes everything this device holds of a disposed document: its
    /// content, summary, access log (the key envelopes in it), keys, what
    /// waits to be sent, drafts. The file is rebuilt afterwards, once for
    /// all of a round's disposals ([`Home::rewrite_if_due`]), so no copy of
    /// them stays on disk; the mark that it is due is written with the
    /// deletion, so a crash before the rebuild leaves it due. The signed
    /// disposal (`gone`, or the last entry held of a disposal made here) is
    /// kept, to give back to a relay that loses it (see `sync::disposals`).
    pub(crate) fn purge_doc(&mut self, doc: &DocId, by: &str, gone: Option<&Signed>) -> Result<()> {
        let held = self.store.doc_ids()?.contains(doc);
        // Who could read it, of a document this account owns: told of the
        // disposal too when it is given back (see `sync::disposals`).
        let readers = match self.access().doc_meta(doc)? {
            Some(meta) if meta.owner == self.account_id() => meta
                .members
                .iter()
                .map(|(a, _, _)| *a)
                .chain(meta.grants.iter().map(|g| g.account))
                .collect(),
            _ => Vec::new(),
        };
        let gone = match gone {
            Some(g) => Some(g.clone()),
            None => match self.store.log(&doc.0)?.last() {
                Some(bytes) => Some(codec::decode::<Signed>(bytes)?)
                    .filter(crate::docs::access_state::is_disposal),
                None => None,
            },
        };
        self.atomically(|home| {
            let mut known = home.disposed_docs()?;
            if !known.contains(doc) {
                known.push(*doc);
                home.store.put_secret(DISPOSED, &codec::encode(&known))?;
            }
            if let Some(gone) = &gone {
                home.keep_disposal(doc, gone, readers)?;
            }
            if !held {
                return Ok(());
            }
            // A case's psychotherapy notes are recorded under the case, so
            // its trail shows both going and a count of cases counts it once.
            let case_of = match home.store.doc_summary(doc)? {
                Some(s) => match serde_json::from_slice::<crate::docs::Summary>(&s) {
                    Ok(crate::docs::Summary::Private { case }) => Some(case),
                    _ => None,
                },
                None => None,
            };
            home.store.delete_doc(doc)?;
            home.store.put_meta(REWRITE_DUE, &[1])?;
            home.store.delete_secret(&meta_name(doc))?;
            home.store.delete_secret(&keys_name(doc))?;
            home.store
                .delete_secret(&crate::sync::compared_name(doc))?;
            home.cache.forget(doc);
            home.forget_held(doc)?;
            let mut kept = home.kept_under_hold()?;
            if kept.remove(doc) {
                home.store_kept_under_hold(&kept)?;
            }
            home.drafts().drop_case(doc)?;
            let what = match case_of {
                Some(case) => format!("psychotherapy notes of case {}", case.short()),
                None => format!("document {}", doc.short()),
            };
            home.trail().record(
                &format!(
                    "{what} disposed of by {by}: deleted from this device with every key that opened it"
                ),
                Some(case_of.unwrap_or(*doc)),
            )
        })?;
        Ok(())
    }

    /// Rebuilds the store's file if a disposal deleted anything since the
    /// last rebuild (see [`crate::store::Store::rewrite`]).
    pub(crate) fn rewrite_if_due(&mut self) -> Result<()> {
        if self.store.meta(REWRITE_DUE)?.is_some() {
            self.store.rewrite()?;
            self.store.delete_meta(REWRITE_DUE)?;
            // The mark's own deletion is the last write; empty the log of it.
            self.store.checkpoint()?;
        }
        Ok(())
    }
}
