//! The order of a round's phases and what decides between them, without
//! I/O.
//!
//! [`Round`] yields the next phase ([`Phase`]); the shell in `sync` carries
//! it out against the relay and the store and hands back what came of it
//! (in the manner of quinn-proto's `Connection`). The phases' own rules
//! live in [`super::sending`], [`super::paging`] and [`super::check`]; what
//! lives here is how they follow each other:
//!
//! - what was just edited goes out first, before the round catches up
//!   (see `push_early`);
//! - the account logs are read, then everything new is pulled, before
//!   anything is sealed under a document's newest epoch;
//! - a device restored from a backup skips its own echoes again only once
//!   a whole first pull went through (nothing held back, nothing refused,
//!   nothing missing);
//! - members' logs and owned documents' upkeep come before the push, which
//!   seals what upkeep rotated under the new keys;
//! - what the relay refused because a new epoch landed after the pull
//!   ("access moved") is caught up on and sent again, at most
//!   [`MOVED_TRIES`] times; each try reports afresh what it held;
//! - a pull after which a document lacks what its new changes build on,
//!   fetched only from its seen mark, is followed by one more that fetches
//!   it from the start (a repaired relay puts back what it lost or swapped
//!   below the mark), so a repair heals in one round, not after one that
//!   reports what waited as refused;
//! - once anything was sent (the outbox or the audit trail), one more pull
//!   takes its echo, so the seen mark passes it and a snapshot may cover
//!   it;
//! - a refusal met by more than one pull is one refusal.

use std::collections::{BTreeSet, HashSet, VecDeque};

use casebook_shared::ids::DocId;

use super::apply::WAITS;
use super::check::Refused;
use super::{MOVED_TRIES, Progress, RefusedEnvelope, SyncReport};

/// What the shell does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Send recent changes before catching up; then [`Round::sent_early`].
    PushEarly,
    /// Read every held account log again; then [`Round::accounts_read`].
    Accounts,
    /// List, fetch, check and apply, into [`Round::report`]; then
    /// [`Round::pulled`] with the documents held back.
    Pull,
    /// Take echoes of this device's own changes as news no longer: the
    /// restored device has everything it had sent.
    ForgetRestored,
    /// Tell the person how far the round has got.
    Progress(Progress),
    /// Fetch the logs of owned documents' members and bring the documents'
    /// access up to date, leaving alone those held back.
    Upkeep(BTreeSet<DocId>),
    /// Send the outbox (reporting held edits into [`Round::report`]),
    /// except what is held back; then [`Round::pushed`].
    Push(BTreeSet<DocId>),
    /// Send the audit trail's new entries and the signals of shared
    /// documents, except of what is held back; then [`Round::audit_sent`].
    PushAudit(BTreeSet<DocId>),
    /// Upload snapshots that are due, except of what is held back (a
    /// snapshot is sent like any edit); then [`Round::snapshots_sent`].
    Snapshots(BTreeSet<DocId>),
    /// The round is over: [`Round::finish`] gives its report.
    Done,
}

/// Which pull the round is making.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pulling {
    /// The first, which catches up.
    First,
    /// After the relay refused uploads because access moved on.
    Again,
    /// For the echo of what was sent.
    Echo,
}

/// A round's progress through its phases.
#[derive(Debug)]
pub(crate) struct Round {
    /// The device was restored from a backup and has not taken back all it
    /// had sent yet.
    restored: bool,
    report: SyncReport,
    held_back: BTreeSet<DocId>,
    /// Catch-up tries made after "access moved".
    tries: usize,
    pulling: Pulling,
    /// Phases to yield, in order, before the next outcome is awaited.
    next: VecDeque<Phase>,
    /// An outcome is awaited.
    waiting: bool,
    /// The changes that follow this round's snapshots were queued.
    marked: bool,
    /// A pull was made again for documents that came to lack changes.
    refetched: bool,
}

impl Round {
    /// A round on a device that is (`restored`) or is not waiting to take
    /// back what it had sent before a restore.
    pub fn new(restored: bool) -> Self {
        Round {
            restored,
            report: SyncReport::default(),
            held_back: BTreeSet::new(),
            tries: 0,
            pulling: Pulling::First,
            next: VecDeque::from([Phase::PushEarly]),
            waiting: false,
            marked: false,
            refetched: false,
        }
    }

    /// The next phase. A phase that awaits an outcome is yielded once; a
    /// shell that polls again before handing it back gets [`Phase::Done`]
    /// (in a debug build, a panic: that is the shell's bug).
    pub fn poll(&mut self) -> Phase {
        if self.waiting {
            debug_assert!(false, "polled before the last phase's outcome");
            return Phase::Done;
        }
        let phase = self.next.pop_front().unwrap_or(Phase::Done);
        self.waiting = matches!(
            phase,
            Phase::PushEarly
                | Phase::Accounts
                | Phase::Pull
                | Phase::Push(_)
                | Phase::PushAudit(_)
                | Phase::Snapshots(_)
        );
        phase
    }

    /// What the round has found so far; the pull adds to it.
    pub fn report(&mut self) -> &mut SyncReport {
        &mut self.report
    }

    /// `sent` changes went out early, and `moved` were refused because
    /// their document's access had moved on (they stay queued).
    pub fn sent_early(&mut self, sent: usize, moved: usize) {
        self.waiting = false;
        self.report.pushed_first = sent;
        self.report.pushed = sent;
        self.report.access_moved = moved;
        if sent > 0 {
            self.next.push_back(Phase::Progress(Progress::Pushed {
                done: sent,
                total: sent,
            }));
        }
        self.next.push_back(Phase::Accounts);
    }

    /// The account logs are read.
    pub fn accounts_read(&mut self) {
        self.waiting = false;
        self.next.push_back(Phase::Pull);
    }

    /// A pull went through; `held_back` are the documents whose access log
    /// did not verify (nothing of theirs is sent this round), `lacking`
    /// those that came to lack changes though fetched only from their seen
    /// mark: the same pull is made again, once a round, and fetches them
    /// from the start. What waited in them, or was refused for the relay's
    /// order, is judged afresh by that pull.
    pub fn pulled(&mut self, held_back: BTreeSet<DocId>, lacking: BTreeSet<DocId>) {
        self.waiting = false;
        if !lacking.is_empty() && !self.refetched {
            self.refetched = true;
            let again = [WAITS.to_string(), Refused::AfterRemoval.to_string()];
            self.report
                .refused
                .retain(|r| !(lacking.contains(&r.doc) && again.contains(&r.reason)));
            self.next.push_back(Phase::Pull);
            return;
        }
        match self.pulling {
            Pulling::First => {
                if self.restored
                    && held_back.is_empty()
                    && self.report.refused.is_empty()
                    && self.report.incomplete.is_empty()
                {
                    self.restored = false;
                    self.next.push_back(Phase::ForgetRestored);
                }
                let received = self.report.received + self.report.snapshots_in;
                if received > 0 {
                    self.next
                        .push_back(Phase::Progress(Progress::Visible { received }));
                }
            }
            Pulling::Again => {}
            Pulling::Echo => {
                // What the echo's pull held back too waits for the rest of
                // the round (the relay may have changed a log in between).
                self.held_back.extend(held_back);
                self.next
                    .push_back(Phase::Snapshots(self.held_back.clone()));
                return;
            }
        }
        self.held_back = held_back;
        self.next.push_back(Phase::Upkeep(self.held_back.clone()));
        // Each push reports what it held; a try after "access moved"
        // replaces what the one before it reported.
        self.report.held.clear();
        self.next.push_back(Phase::Push(self.held_back.clone()));
    }

    /// The push went through: the relay acknowledged `acked` rows and
    /// refused `moved` because their document's access moved on after the
    /// pull (or it held other bytes under their envelope id, and they were
    /// given new ones).
    pub fn pushed(&mut self, acked: usize, moved: usize) {
        self.waiting = false;
        self.report.pushed += acked;
        self.report.access_moved += moved;
        if moved > 0 && self.tries < MOVED_TRIES {
            // The access change may follow an account change (a device
            // revoked, then the rotation): the logs are read again first.
            self.tries += 1;
            self.pulling = Pulling::Again;
            self.next.push_back(Phase::Accounts);
        } else {
            self.report.left_queued = moved;
            self.next
                .push_back(Phase::PushAudit(self.held_back.clone()));
        }
    }

    /// `sent` audit entries went out.
    pub fn audit_sent(&mut self, sent: usize) {
        self.waiting = false;
        if sent > 0 || self.report.pushed > 0 {
            self.pulling = Pulling::Echo;
            self.next.push_back(Phase::Pull);
        } else {
            self.next
                .push_back(Phase::Snapshots(self.held_back.clone()));
        }
    }

    /// `sent` snapshots were uploaded. One of a case shared with another
    /// account left a change to send that names what it holds, and each
    /// left its device's newest change to tell again (see
    /// `sync::snapshot`): they go in this round, with what follows a push,
    /// once (a snapshot the echo's pull makes due waits for the next).
    pub fn snapshots_sent(&mut self, sent: usize) {
        self.waiting = false;
        self.report.snapshots_out += sent;
        match sent > 0 && !self.marked {
            true => {
                self.marked = true;
                // That push reports what it held in place of the first's.
                self.report.held.clear();
                self.next.push_back(Phase::Push(self.held_back.clone()));
            }
            false => self.next.push_back(Phase::Done),
        }
    }

    /// The round's report, each refusal once.
    pub fn finish(mut self) -> SyncReport {
        let mut seen = HashSet::new();
        self.report
            .refused
            .retain(|r| seen.insert((r.doc, r.seq, r.reason.clone())));
        self.report
    }
}

/// The audit line for the refusals of a round not yet recorded this
/// session (`audited` remembers them), if there are any. A round that
/// refused something is in the trail: the relay, or someone through it,
/// sent what no device accepts. The same refusal met again by every round
/// is one line, not one per round (the audit document carries each line to
/// the account's other devices, whose rounds would otherwise set each other
/// off).
pub(crate) fn refusal_line(
    refused: &[RefusedEnvelope],
    audited: &mut HashSet<(DocId, u64, String)>,
) -> Option<String> {
    let fresh: Vec<&RefusedEnvelope> = refused
        .iter()
        .filter(|r| audited.insert((r.doc, r.seq, r.reason.clone())))
        .collect();
    if fresh.is_empty() {
        return None;
    }
    let mut docs: Vec<String> = fresh.iter().map(|r| r.doc.short()).collect();
    docs.dedup();
    Some(format!(
        "sync refused {} envelope(s) of {}",
        fresh.len(),
        docs.join(", ")
    ))
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
