//! What becomes of each queued outbox row, decided without I/O.
//!
//! [`Sending`] is handed the outbox rows and, as it asks, what the store
//! says of each document ([`DocTerms`]), the envelopes sealed for it and
//! the relay's answers; it yields the next thing to do ([`Step`]): read a
//! document's terms, seal a row, send access entries, upload a batch, drop
//! a row that no longer goes anywhere. The shells in `push` and
//! `push_early` only move bytes between it, the store and the relay (in
//! the manner of quinn-proto's `Connection`), so its rules can be driven
//! and tested without a network or a store.
//!
//! The rules, in order, for the round ([`Mode::Round`]):
//! - access entries go first, in order, each before any change queued
//!   after it (a change is sealed under the newest epoch, which the relay
//!   must know);
//! - a document whose access log on the relay did not verify this round
//!   keeps everything queued for it, reported as held;
//! - a change to a document disposed of here is dropped;
//! - a change this account may no longer make (its share ended, or became
//!   read-only, or comment-only for an edit) is held, and so is every later
//!   change of its document, which builds on it;
//! - the relay's "forbidden" holds a change too; "access moved" (a new
//!   epoch landed after this round's pull) leaves it and every later change
//!   of its document queued, for the round to catch up and send again; so
//!   does "conflict" (the relay holds other bytes under the envelope's id:
//!   an earlier sealing of the change, whose echo never came back), and the
//!   shell gives the row a new id first; any other refusal fails the round,
//!   with the row still queued.
//!
//! Before the round catches up ([`Mode::Early`]) only changes go, in one
//! upload: a document whose terms are not known well enough (the shell
//! answers `None`), or whose change this account may not make, or whose
//! change cannot be sealed, is skipped whole and left to the round, and
//! nothing is reported held.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use casebook_shared::access::Role;
use casebook_shared::frames::{ErrorCode, MAX_UPLOAD};
use casebook_shared::ids::DocId;

use super::{HeldEdits, PAGE_BYTES, hold};
use crate::store::{OutKind, Outgoing};

/// What the store says of a document, as far as sending goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DocTerms {
    /// This account's role in it now (`None`: no longer a member).
    pub role: Option<Role>,
    /// Its newest key epoch, which a change is sealed under.
    pub epoch: u32,
    /// Disposed of here.
    pub disposed: bool,
}

/// Which sending this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The round's, after it caught up: everything that may go.
    Round,
    /// Before the round: changes that may go on what is known, one upload.
    Early,
}

/// The next thing the shell does.
#[derive(Debug)]
pub(crate) enum Step {
    /// Read this document's terms and hand them to [`Sending::terms`].
    Terms(DocId),
    /// Seal this row's change under `epoch` (or reuse its kept envelope)
    /// and hand the bytes to [`Sending::sealed`], or say it cannot be
    /// sealed with [`Sending::unsealable`].
    Seal(Outgoing, u32),
    /// Remove this row unsent: its document is disposed of here.
    Retire(i64),
    /// Send this row's access entries; then [`Sending::access_sent`].
    Access(Outgoing),
    /// Upload these envelopes (as `UploadLatest` in [`Mode::Early`]) and
    /// hand the relay's answers to [`Sending::uploaded`].
    Upload(Vec<Vec<u8>>),
    /// How far it has got.
    Progress { done: usize, total: usize },
    /// Nothing more to do.
    Done,
}

/// What the relay's answers to an upload mean for the store.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Uploaded {
    /// Rows the relay stored: remove each, and note its sequence number.
    pub acked: Vec<(i64, DocId, u64)>,
    /// Refused because the document's access moved on, or because the
    /// relay holds other bytes under the envelope's id: still queued.
    pub moved: usize,
    /// Of those, the rows refused for their id: an earlier sealing of the
    /// same change under an older epoch reached the relay and its echo
    /// never came back (the relay lost or withheld it). Each goes again
    /// under a new id (a change held twice is taken once).
    pub conflicted: Vec<i64>,
    /// A refusal that fails the round (its row stays queued).
    pub failed: Option<ErrorCode>,
}

/// Why the edits to a case kept under a legal hold (see
/// `app::disposal::Taken::KeptUnderHold`) are not sent.
const KEPT_UNDER_HOLD: &str =
    "its owner disposed of it on the relay, and this device keeps it under its legal hold";

/// The push half's decisions over one outbox.
#[derive(Debug)]
pub(crate) struct Sending {
    mode: Mode,
    rows: VecDeque<Outgoing>,
    held_back: BTreeSet<DocId>,
    /// Documents kept here under a legal hold though the relay holds their
    /// disposal: the relay takes nothing more of them.
    kept: BTreeSet<DocId>,
    terms: BTreeMap<DocId, Option<DocTerms>>,
    /// Documents whose later changes go no further this time.
    skipped: BTreeSet<DocId>,
    /// Edits kept queued, with the reason, for the report.
    held: Vec<HeldEdits>,
    /// The row waiting for its document's terms, or for its seal.
    current: Option<Outgoing>,
    batch: Vec<(i64, DocId)>,
    envelopes: Vec<Vec<u8>>,
    bytes: usize,
    /// Rows of the upload in flight.
    in_flight: Vec<(i64, DocId)>,
    /// An upload is to be made before the next row is looked at.
    flush: bool,
    /// Progress to report before anything else.
    report_progress: bool,
    /// The last progress, after the last upload, was reported.
    final_reported: bool,
    done: usize,
    total: usize,
    finished: bool,
}

impl Sending {
    /// Over `rows` (the whole outbox); `held_back` are documents whose
    /// access log on the relay did not verify this round.
    pub(crate) fn new(mode: Mode, mut rows: Vec<Outgoing>, held_back: BTreeSet<DocId>) -> Self {
        rows.sort_by_key(|r| (r.kind != OutKind::Access, r.id));
        // Access entries are checked against the relay's log: the round's.
        if mode == Mode::Early && rows.iter().any(|r| r.kind == OutKind::Access) {
            rows.clear();
        }
        Sending {
            mode,
            total: rows.len(),
            rows: rows.into(),
            held_back,
            kept: BTreeSet::new(),
            terms: BTreeMap::new(),
            skipped: BTreeSet::new(),
            held: Vec::new(),
            current: None,
            batch: Vec::new(),
            envelopes: Vec::new(),
            bytes: 0,
            in_flight: Vec::new(),
            flush: false,
            report_progress: false,
            final_reported: false,
            done: 0,
            finished: false,
        }
    }

    /// Holds every row of these documents, kept here under a legal hold
    /// though the relay holds their disposal.
    pub(crate) fn kept_under_hold(mut self, docs: BTreeSet<DocId>) -> Self {
        self.kept = docs;
        self
    }

    /// Leaves every change of these documents where it is
    /// ([`Mode::Early`]: held in the last round).
    pub(crate) fn skip(mut self, docs: impl IntoIterator<Item = DocId>) -> Self {
        self.skipped.extend(docs);
        self
    }

    /// The edits held, with the reason.
    pub(crate) fn held(&self) -> &[HeldEdits] {
        &self.held
    }

    /// Rows the relay acknowledged.
    pub(crate) fn acknowledged(&self) -> usize {
        self.done
    }

    /// The next thing to do. Every step but `Progress` and `Retire` waits
    /// for its answer before the next `poll`.
    pub(crate) fn poll(&mut self) -> Step {
        loop {
            if self.report_progress {
                self.report_progress = false;
                return Step::Progress {
                    done: self.done,
                    total: self.total,
                };
            }
            if (self.flush || self.finished) && !self.batch.is_empty() {
                self.flush = false;
                self.in_flight = std::mem::take(&mut self.batch);
                self.bytes = 0;
                return Step::Upload(std::mem::take(&mut self.envelopes));
            }
            self.flush = false;
            if self.finished {
                if !self.final_reported && self.mode == Mode::Round && self.total > 0 {
                    self.final_reported = true;
                    self.report_progress = true;
                    continue;
                }
                return Step::Done;
            }
            let Some(row) = self.current.take().or_else(|| self.rows.pop_front()) else {
                self.finished = true;
                continue;
            };
            if let Some(step) = self.decide(row) {
                return step;
            }
        }
    }

    /// One row's fate: a step, or `None` when it was settled here.
    fn decide(&mut self, row: Outgoing) -> Option<Step> {
        let doc = row.doc;
        if self.kept.contains(&doc) {
            hold(&mut self.held, doc, KEPT_UNDER_HOLD);
            return None;
        }
        if self.held_back.contains(&doc) {
            hold(
                &mut self.held,
                doc,
                "the relay's access log for it, or an account log it rests on, was refused this round",
            );
            return None;
        }
        // Access rows are sorted first (see `new`): no change is batched
        // before one.
        if row.kind == OutKind::Access {
            return Some(Step::Access(row));
        }
        if self.skipped.contains(&doc) {
            return None;
        }
        let Some(terms) = self.terms.get(&doc).copied() else {
            self.current = Some(row);
            return Some(Step::Terms(doc));
        };
        let Some(terms) = terms else {
            self.skipped.insert(doc);
            return None;
        };
        if terms.disposed {
            return match self.mode {
                Mode::Round => Some(Step::Retire(row.id)),
                Mode::Early => {
                    self.skipped.insert(doc);
                    None
                }
            };
        }
        // A change held back holds back every later one of its document:
        // they build on it, and would be refused without it.
        if self.held.iter().any(|h| h.doc == doc) {
            hold(&mut self.held, doc, "an earlier edit to it is held");
            return None;
        }
        let may = match terms.role {
            Some(r) if r >= Role::Write => true,
            Some(Role::Comment) => row.kind == OutKind::Comment,
            _ => false,
        };
        if !may {
            match self.mode {
                Mode::Round => {
                    let why = match terms.role {
                        Some(Role::Comment) => {
                            "it is an edit, and this account may now only comment"
                        }
                        _ => "this account may no longer write it",
                    };
                    hold(&mut self.held, doc, why);
                }
                Mode::Early => {
                    self.skipped.insert(doc);
                }
            }
            return None;
        }
        Some(Step::Seal(row, terms.epoch))
    }

    /// A document's terms, as asked by [`Step::Terms`]; `None` in
    /// [`Mode::Early`] when what is known is not enough to send its changes.
    pub(crate) fn terms(&mut self, doc: DocId, terms: Option<DocTerms>) {
        self.terms.insert(doc, terms);
    }

    /// The envelope sealed for the row of [`Step::Seal`].
    pub(crate) fn sealed(&mut self, id: i64, doc: DocId, envelope: Vec<u8>) {
        if self.mode == Mode::Early
            && (self.batch.len() >= MAX_UPLOAD || self.bytes + envelope.len() > PAGE_BYTES as usize)
        {
            // One upload only: the rest waits for the round.
            self.rows.clear();
            self.finished = true;
            return;
        }
        self.bytes += envelope.len();
        self.batch.push((id, doc));
        self.envelopes.push(envelope);
        if self.mode == Mode::Round {
            self.report_progress = true;
            self.flush = self.batch.len() >= MAX_UPLOAD || self.bytes >= PAGE_BYTES as usize;
        }
    }

    /// The row of [`Step::Seal`] cannot be sealed here ([`Mode::Early`]:
    /// the round seals it, or says why it cannot).
    pub(crate) fn unsealable(&mut self, doc: DocId) {
        self.skipped.insert(doc);
    }

    /// The access entries of [`Step::Access`] went out, or were withdrawn
    /// here instead (a disposal stopped by a legal hold): either way the
    /// row is done. (No document's terms are read before its access rows
    /// are done, so a withdrawal is in the terms its changes are judged by.)
    pub(crate) fn access_sent(&mut self, sent: bool) {
        if sent {
            self.done += 1;
        }
        self.report_progress = true;
    }

    /// The relay's answers to the upload of [`Step::Upload`], one per
    /// envelope, in order (the shell checks there are as many).
    pub(crate) fn uploaded(&mut self, results: &[Result<u64, ErrorCode>]) -> Uploaded {
        let mut out = Uploaded::default();
        for ((id, doc), r) in std::mem::take(&mut self.in_flight).into_iter().zip(results) {
            match (r, self.mode) {
                (Ok(seq), _) => out.acked.push((id, doc, *seq)),
                // Sealed before this device learnt of a new epoch: it
                // stays queued, with every later change of its document,
                // to be sealed again once the round has caught up.
                (Err(ErrorCode::AccessMoved), _) => {
                    out.moved += 1;
                    self.skipped.insert(doc);
                }
                (Err(ErrorCode::Conflict), _) => {
                    out.moved += 1;
                    out.conflicted.push(id);
                    self.skipped.insert(doc);
                }
                // Left queued for the round, which says why if it fails too.
                (Err(_), Mode::Early) => {}
                (Err(ErrorCode::Forbidden), Mode::Round) => hold(
                    &mut self.held,
                    doc,
                    "the relay says this account may not write it",
                ),
                (Err(code), Mode::Round) => out.failed = out.failed.or(Some(*code)),
            }
        }
        self.done += out.acked.len();
        out
    }
}

#[cfg(test)]
#[path = "sending_tests.rs"]
mod tests;
