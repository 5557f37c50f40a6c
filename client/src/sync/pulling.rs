//! What the pull half of a round does next, decided without I/O.
//!
//! [`Pulling`] is handed what the store holds of each document
//! ([`Here`]), the relay's listing, each document's new access entries and
//! the checks' verdicts on them, and each page of envelopes; it yields the
//! next thing to do ([`Step`]). The shell in `pull` carries each step out
//! against the relay and the store. The envelopes themselves are judged by
//! [`check::admit`](super::check) and applied by `apply`; the rules here
//! are which documents are asked for, and what becomes of each:
//!
//! - a document this device disposed of is deleted here once the relay has
//!   the disposal (nothing of it waits to be sent), or once the relay
//!   lacks it whole (the shell, before the listing is judged, deletes it
//!   and gives the disposal back alone; see `sync::disposals`);
//! - access entries signed here but not sent yet are not on the relay: the
//!   relay's log is compared with the part of ours it has had
//!   ([`check::plan`](super::check::plan) holds back a document whose access
//!   log the relay shows shorter than this device has seen, and refuses a
//!   listing that names one twice or lacks one this account owns);
//! - this account's audit document is created once if neither side has it;
//! - a document the relay no longer lists was unshared (unless this
//!   account owns it); one listed again may be shared again;
//! - new access entries that end in a disposal are taken alone (the log
//!   before it is gone); others must end where the listing said, or the
//!   relay is rolling back; entries whose signers cannot be checked, or that
//!   do not verify, hold their document back for the round (its changes
//!   too, since they may need the entries), and the others go on;
//! - entries taken where this device has unsent ones of its own are
//!   replayed on top of them (another device of the account got there
//!   first);
//! - every former or present member's account log is read before a
//!   document's envelopes are checked against them;
//! - where the relay showed it lost data, every document held here is
//!   fetched whole, to find what it lacks ([`Pulling::recheck`]);
//! - envelopes are fetched in pages ([`Paging`]) of the documents not held
//!   back or deleted, then applied.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use casebook_shared::access::{DocEntry, SIG_LABEL};
use casebook_shared::frames::{DocHead, Stored};
use casebook_shared::ids::{DocId, Hash};
use casebook_shared::signed::Signed;

use super::check::{self, Need};
use super::paging::{PageFault, Paging, Placed};
use super::{APPLY_CHUNK, RefusedEnvelope, RollbackError};
use crate::app::disposal::Taken;
use crate::store::DocSync;

pub(crate) use super::pull_steps::{HeldDoc, Here, Step, TakeAccess};

/// The pull's decisions over one listing.
#[derive(Debug)]
pub(crate) struct Pulling {
    here: Here,
    next: VecDeque<Step>,
    /// The audit document was created once already.
    audit_tried: bool,
    /// The access-log lengths the listing gave.
    access_len: HashMap<DocId, u64>,
    /// Documents whose access log on the relay differs from the one held
    /// here (see [`check::Need::fork`]): fetched whole.
    forked: BTreeSet<DocId>,
    /// See [`Pulling::own_audit_at`].
    own_audit_at: Option<u64>,
    /// See [`Pulling::recheck`].
    recheck: bool,
    /// Documents fetched whole to find what the relay lost.
    rechecked: BTreeSet<DocId>,
    /// Documents asked for.
    needs: Vec<Need>,
    /// Access fetches still to answer.
    awaiting_access: usize,
    fetched_logs: Vec<(DocId, Vec<Signed>)>,
    held_back: BTreeSet<DocId>,
    /// Of those, the ones the relay shows with fewer access entries than
    /// seen here (see [`Pulling::shown_shorter`]).
    shorter: BTreeSet<DocId>,
    purged: BTreeSet<DocId>,
    /// Documents whose disposal an owner's device keeps under a legal hold.
    kept: BTreeSet<DocId>,
    refused: Vec<RefusedEnvelope>,
    paging: Option<Paging>,
    bytes: usize,
}

impl Pulling {
    pub fn new(here: Here) -> Self {
        let mut next = VecDeque::new();
        let mut here = here;
        // This device's own disposal, once the relay has it, is carried
        // out here as on every other; the document is then no longer held.
        here.docs.retain(|doc, held| {
            let gone = held.disposed && held.unsent == 0;
            if gone {
                next.push_back(Step::Purge(*doc));
            }
            !gone
        });
        let purged: Vec<DocId> = next
            .iter()
            .filter_map(|s| match s {
                Step::Purge(doc) => Some(*doc),
                _ => None,
            })
            .collect();
        here.disposed.extend(purged);
        next.push_back(Step::List);
        Pulling {
            here,
            next,
            audit_tried: false,
            access_len: HashMap::new(),
            forked: BTreeSet::new(),
            own_audit_at: None,
            recheck: false,
            rechecked: BTreeSet::new(),
            needs: Vec::new(),
            awaiting_access: 0,
            fetched_logs: Vec::new(),
            held_back: BTreeSet::new(),
            shorter: BTreeSet::new(),
            purged: BTreeSet::new(),
            kept: BTreeSet::new(),
            refused: Vec::new(),
            paging: None,
            bytes: 0,
        }
    }

    /// Documents settled before the listing was judged (see
    /// `Home::disposed_over_more`), which the listing then leaves out, with
    /// what came of each one's disposal: carried out, refused (held back
    /// this round, with why), or kept under a legal hold.
    pub fn settled_before_listing(&mut self, taken: Vec<(DocId, Taken)>) {
        for (doc, t) in taken {
            // Refused at the position held, read before it goes.
            match t {
                Taken::Purged => {
                    self.here.disposed.insert(doc);
                }
                Taken::Refused(why) => self.refuse_log(doc, why),
                Taken::KeptUnderHold => {
                    self.kept.insert(doc);
                }
            }
            self.here.docs.remove(&doc);
        }
    }

    pub fn poll(&mut self) -> Step {
        self.next.pop_front().unwrap_or(Step::Done)
    }

    /// The relay's listing: refused whole if it names a document twice or
    /// lacks one this account owns; a document shown with fewer access
    /// entries than this device has seen is held back.
    pub fn listed(&mut self, heads: &[DocHead]) -> Result<(), RollbackError> {
        let audit = self.here.audit;
        if !self.here.audit_held && !self.audit_tried && !heads.iter().any(|h| h.doc == audit) {
            self.audit_tried = true;
            self.next.push_back(Step::EnsureAudit);
            self.next.push_back(Step::List);
            return Ok(());
        }
        // The relay's log is compared with the part of ours it has had.
        let held: BTreeMap<DocId, (DocSync, bool, Option<Hash>)> = self
            .here
            .docs
            .iter()
            .map(|(doc, h)| {
                let mut sync = h.sync;
                sync.access_len -= h.unsent.min(sync.access_len);
                (*doc, (sync, h.owned, h.head))
            })
            .collect();
        let check::Plan {
            mut needs,
            held_back,
        } = check::plan(heads, &held)?;
        for (doc, refused) in held_back {
            self.shorter.insert(doc);
            self.refuse_log(
                doc,
                format!("{refused}; the case waits, and the rest syncs: a device of the account that signed the entries sends them back when it syncs"),
            );
        }
        self.forked = needs.iter().filter(|n| n.fork).map(|n| n.doc).collect();
        self.check_own_audit(&mut needs);
        // A disposal stays listed; once taken it is no news.
        needs.retain(|n| !self.here.disposed.contains(&n.doc));
        if self.recheck {
            self.recheck_all(heads, &mut needs);
        }
        let listed: BTreeSet<DocId> = heads.iter().map(|h| h.doc).collect();
        let (listed, ended): (Vec<DocId>, Vec<DocId>) = held
            .iter()
            .filter(|(_, (_, owned, _))| !owned)
            .map(|(doc, _)| *doc)
            .partition(|doc| listed.contains(doc));
        if !ended.is_empty() || !listed.is_empty() {
            self.next.push_back(Step::Shares { ended, listed });
        }
        self.access_len = heads.iter().map(|h| (h.doc, h.access_len)).collect();
        for need in &needs {
            if let Some(from) = need.access_from {
                self.awaiting_access += 1;
                self.next.push_back(Step::GetAccess {
                    doc: need.doc,
                    from,
                });
            }
        }
        self.needs = needs;
        if self.awaiting_access == 0 {
            self.after_access();
        }
        Ok(())
    }

    /// The relay showed, before this listing, that it lost data (see
    /// `sync::heal::RECHECK`): every document held here is fetched whole,
    /// so that what this device holds and the relay lacks can be sent
    /// back.
    pub fn recheck(&mut self) {
        self.recheck = true;
    }

    /// Whether this pull looks for what the relay lost (see
    /// [`Pulling::recheck`]).
    pub fn rechecking(&self) -> bool {
        self.recheck
    }

    /// The documents fetched whole to find what the relay lost: every one
    /// held here that the relay lists with envelopes, but this account's
    /// audit document (whose trail and claims heal their own way) and one
    /// rewound (which heals as [`Need::rewind`] says).
    fn recheck_all(&mut self, heads: &[DocHead], needs: &mut Vec<Need>) {
        for h in heads {
            if h.seq == 0
                || h.doc == self.here.audit
                || !self.here.docs.contains_key(&h.doc)
                || self.here.disposed.contains(&h.doc)
            {
                continue;
            }
            match needs.iter_mut().find(|n| n.doc == h.doc) {
                Some(n) if n.rewind => continue,
                Some(n) => n.changes_after = Some(0),
                None => needs.push(Need {
                    doc: h.doc,
                    access_from: None,
                    changes_after: Some(0),
                    rewind: false,
                    fork: false,
                }),
            }
            self.rechecked.insert(h.doc);
        }
    }

    /// What is held of the audit document once [`Step::EnsureAudit`] was
    /// carried out (`None` if it was not created here): the listing that
    /// follows counts its log as held, not as news to fetch from its first
    /// entry, which would then fail to continue the log and be refused.
    pub fn audit_created(&mut self, held: Option<HeldDoc>) {
        if let Some(held) = held {
            self.here.docs.insert(self.here.audit, held);
            self.here.audit_held = true;
        }
    }

    /// A document's access entries from `from` on, as the relay sent them.
    pub fn access(
        &mut self,
        doc: DocId,
        from: u64,
        entries: Vec<Signed>,
    ) -> Result<(), RollbackError> {
        // A disposal is kept alone (the log before it is gone) and
        // checked alone.
        if let Some(gone) = entries
            .last()
            .filter(|e| crate::docs::access_state::is_disposal(e))
        {
            self.next.push_front(Step::TakeDisposal {
                doc,
                entry: gone.clone(),
            });
            return Ok(());
        }
        let listed = self.access_len.get(&doc).copied().unwrap_or(0);
        let sent = from + entries.len() as u64;
        if sent != listed {
            return Err(RollbackError::AccessEntries { doc, listed, sent });
        }
        // Entries that do not continue the log held here: the relay's log
        // took another turn before them. Fetched whole, to find where.
        let head = self.here.docs.get(&doc).and_then(|h| h.head);
        if from > 0 && !self.forked.contains(&doc) && !continues(head, entries.first()) {
            self.forked.insert(doc);
            self.next.push_front(Step::GetAccess { doc, from: 0 });
            return Ok(());
        }
        self.next.push_front(Step::Signers { doc, entries });
        Ok(())
    }

    /// What came of the disposal of `doc`: carried out, refused (with
    /// why), or kept under a legal hold (nothing of it fetched, and nothing
    /// refused).
    pub fn disposal_taken(&mut self, doc: DocId, taken: Taken) {
        match taken {
            Taken::Purged => {
                self.purged.insert(doc);
            }
            Taken::Refused(reason) => self.refuse_log(doc, reason),
            Taken::KeptUnderHold => {
                self.kept.insert(doc);
            }
        }
        self.access_answered();
    }

    /// Whether the signers of `entries` are known (the entries can be
    /// checked) or why not.
    pub fn signers(&mut self, doc: DocId, entries: Vec<Signed>, verdict: Result<(), String>) {
        match verdict {
            Ok(()) => self.fetched_logs.push((doc, entries)),
            Err(reason) => self.refuse_log(doc, reason),
        }
        self.access_answered();
    }

    /// The documents whose entries were refused when taken, with why.
    pub fn access_taken(&mut self, refused: Vec<(DocId, String)>) {
        for (doc, reason) in refused {
            self.refuse_log(doc, reason);
        }
        if self.fetched_logs.is_empty() {
            self.start_fetching();
        } else {
            self.take_access_chunk();
        }
    }

    /// The relay's answer to the last [`Step::Fetch`]: the envelopes to
    /// take are yielded as [`Step::Take`]; a page that breaks the order
    /// fails the round.
    pub fn page(&mut self, items: Vec<Stored>, more: bool) -> Result<(), PageFault> {
        // Only a fetch this yielded has an answer.
        let Some(paging) = self.paging.as_mut() else {
            debug_assert!(false, "a page before any fetch");
            return Ok(());
        };
        let placed = paging.page(items, more)?;
        let mut take = Vec::new();
        for p in placed {
            match p {
                Placed::Take(item) => {
                    self.bytes += item.envelope.len();
                    take.push(item);
                }
                Placed::Replayed { doc, seq } => self.refused.push(RefusedEnvelope {
                    doc,
                    seq,
                    reason: "sent again or out of order".into(),
                }),
            }
        }
        if !take.is_empty() {
            self.next.push_back(Step::Take(take));
        }
        let (docs, of) = paging.progress();
        self.next.push_back(Step::Fetched {
            docs,
            of,
            bytes: self.bytes,
        });
        self.next_fetch();
        Ok(())
    }

    /// What was refused since this was last asked, in the order met.
    pub fn refused(&mut self) -> &mut Vec<RefusedEnvelope> {
        &mut self.refused
    }

    /// Whether `doc` was kept under a legal hold this pull, or held back
    /// (its disposal, if the relay still holds one, not judged).
    pub fn kept_or_held_back(&self, doc: &DocId) -> bool {
        self.kept.contains(doc) || self.held_back.contains(doc)
    }

    /// The documents held back: nothing of theirs is sent this round.
    pub fn finish(self) -> BTreeSet<DocId> {
        self.held_back
    }

    /// Whether nothing of `doc` is fetched this pull: its access log was
    /// refused, or its disposal carried out or kept under a hold.
    fn settled(&self, doc: &DocId) -> bool {
        self.held_back.contains(doc) || self.purged.contains(doc) || self.kept.contains(doc)
    }

    fn refuse_log(&mut self, doc: DocId, reason: String) {
        self.held_back.insert(doc);
        let seq = self
            .here
            .docs
            .get(&doc)
            .map(|h| h.sync.access_len - h.unsent.min(h.sync.access_len))
            .unwrap_or(0);
        self.refused.push(RefusedEnvelope {
            doc,
            seq,
            reason: format!("access log: {reason}"),
        });
    }

    fn access_answered(&mut self) {
        self.awaiting_access -= 1;
        if self.awaiting_access == 0 {
            self.after_access();
        }
    }

    fn after_access(&mut self) {
        if self.fetched_logs.is_empty() {
            self.start_fetching();
        } else {
            self.take_access_chunk();
        }
    }

    fn take_access_chunk(&mut self) {
        let n = self.fetched_logs.len().min(APPLY_CHUNK);
        let chunk = self
            .fetched_logs
            .drain(..n)
            .map(|(doc, entries)| {
                let listed = self.access_len.get(&doc).copied().unwrap_or(0);
                TakeAccess {
                    doc,
                    confirmed: listed - (entries.len() as u64).min(listed),
                    rebase: self.here.docs.get(&doc).is_some_and(|h| h.unsent > 0),
                    fork: self.forked.contains(&doc),
                    entries,
                }
            })
            .collect();
        self.next.push_back(Step::TakeAccess(chunk));
    }

    /// Where the audit document has news, fetches it from this device's
    /// last envelope the relay took, to see that the relay still holds it
    /// ([`Pulling::own_audit_at`]): a relay restored from an older copy
    /// lost it, and went on numbering after another device wrote, so its
    /// numbers alone do not show the loss. Every such round: the relay may
    /// lose it at any time. Its cost is the audit news since that envelope,
    /// fetched again while this device writes none of its own.
    fn check_own_audit(&mut self, needs: &mut [Need]) {
        let Some(held) = self.here.docs.get(&self.here.audit) else {
            return;
        };
        let acked = held.sync.acked;
        let Some(need) = needs.iter_mut().find(|n| n.doc == self.here.audit) else {
            return;
        };
        if acked == 0 || need.rewind || need.changes_after != Some(held.sync.seen) {
            return;
        }
        need.changes_after = Some(held.sync.seen.min(acked - 1));
        self.own_audit_at = Some(acked);
    }

    /// The number of this device's last audit envelope the relay took,
    /// fetched again this pull: the pull's envelopes of the audit document
    /// should hold it.
    pub fn own_audit_at(&self) -> Option<(DocId, u64)> {
        self.own_audit_at.map(|at| (self.here.audit, at))
    }

    /// Documents the relay holds fewer envelopes of than this device has
    /// seen (see [`Need::rewind`]), and that this pull fetches.
    pub fn rewound(&self) -> Vec<DocId> {
        self.needs
            .iter()
            .filter(|n| n.rewind && !self.settled(&n.doc))
            .map(|n| n.doc)
            .collect()
    }

    /// Whether the relay showed a document with fewer access entries than
    /// seen here, held back: lost in the same restore as whatever a look
    /// for what the relay lost is after, and skipped by it, so the look is
    /// not done until its entries are back. (Documents held back for good,
    /// as on a log refused for good, do not keep the look due.)
    pub fn shown_shorter(&self) -> bool {
        !self.shorter.is_empty()
    }

    /// The documents fetched whole to find what the relay lost (see
    /// [`Pulling::recheck`]), and that this pull fetches.
    pub fn rechecked(&self) -> BTreeSet<DocId> {
        self.rechecked
            .iter()
            .filter(|d| !self.settled(d))
            .copied()
            .collect()
    }

    fn start_fetching(&mut self) {
        let needs: Vec<&Need> = self
            .needs
            .iter()
            .filter(|n| !self.settled(&n.doc))
            .collect();
        if !needs.is_empty() {
            self.next
                .push_back(Step::MemberLogs(needs.iter().map(|n| n.doc).collect()));
        }
        self.paging = Some(Paging::new(
            needs
                .iter()
                .filter_map(|n| n.changes_after.map(|s| (n.doc, s)))
                .collect(),
        ));
        self.next_fetch();
    }

    fn next_fetch(&mut self) {
        match self.paging.as_ref().and_then(|p| p.request()) {
            Some(request) => self.next.push_back(Step::Fetch(request)),
            None => self.next.push_back(Step::Apply),
        }
    }
}

/// Whether `first`, the first entry fetched after the one whose hash is
/// `head`, names it as its previous. One that does not open is left to the
/// checks that refuse it.
fn continues(head: Option<Hash>, first: Option<&Signed>) -> bool {
    let (Some(head), Some(first)) = (head, first) else {
        return true;
    };
    match first.open::<DocEntry>(SIG_LABEL) {
        Ok(entry) => entry.prev == Some(head),
        Err(_) => true,
    }
}

#[cfg(test)]
#[path = "pulling_tests.rs"]
mod tests;
