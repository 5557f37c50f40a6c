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

mod apply;
pub mod check;
mod claims;
mod disposals;
mod fork;
mod heal;
pub(crate) use heal::compared_name;
mod logs;
mod paging;
mod pull;
mod pull_steps;
mod pulling;
mod push;
mod push_early;
mod resign;
mod revoked_again;
mod rollback;
mod round;
mod sending;
mod signals;
mod snapshot;
mod take;
mod told;
mod turn;
mod turn_judge;
mod upkeep;
mod watch;

use std::collections::BTreeMap;

use casebook_shared::access::Role;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use round::{Phase, Round};

pub use resign::RESIGN_WAIT as TURN_RESIGN_WAIT;
pub(crate) use revoked_again::Undo;
pub use rollback::RollbackError;
pub use signals::SignalBody;
pub use turn::ENTRIES_WAIT as TURN_ENTRIES_WAIT;
pub use turn::MOVED_ON as TURN_MOVED_ON;
pub use turn_judge::LACKS_DEVICES as TURN_LACKS_DEVICES;
pub(crate) use upkeep::{Upkeep, upkeep};
pub use watch::WatchEvent;

pub use crate::docs::queue::{SNAPSHOT_EVERY, snapshot_weight};

/// Times a round catches up and sends again what the relay refused
/// because a new epoch of its document landed after the round's pull; what
/// is still refused after that stays queued for the next round.
const MOVED_TRIES: usize = 2;

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
    /// Of `received`, those a watching device took as the relay pushed
    /// them, without fetching.
    pub taken_pushed: usize,
    /// Documents that changed here.
    pub docs_updated: usize,
    /// Documents stored from a snapshot without loading them.
    pub snapshots_in: usize,
    /// Snapshots uploaded.
    pub snapshots_out: usize,
    /// Of `pushed`, those sent before the round caught up (see
    /// `push_early`); and the uploads the relay refused because their
    /// document's access had moved on since they were sealed (a new epoch).
    /// The round catches up and seals those again; any still refused after
    /// [`MOVED_TRIES`] tries stay queued for the next round.
    pub pushed_first: usize,
    pub access_moved: usize,
    /// Of `access_moved`, the rows the last try still had refused: they
    /// wait in the outbox for the next round (counted, so a person is told
    /// rather than left to wonder why an edit did not go out).
    pub left_queued: usize,
    /// Envelopes refused, with the reason; they changed nothing.
    pub refused: Vec<RefusedEnvelope>,
    /// Changes made on this device that the relay had lost (a snapshot of
    /// their document, taken after they landed, lacks them): sent again.
    pub resent: usize,
    /// Documents the relay held fewer envelopes of than this device had
    /// seen: fetched again, and healed.
    pub rewound: Vec<DocId>,
    /// Documents whose access log on the relay lacked entries signed here:
    /// sent back.
    pub access_healed: Vec<DocId>,
    /// Accounts whose log the relay lacked the end of (or all of): this
    /// device's copy sent back.
    pub logs_healed: Vec<AccountId>,
    /// Accounts whose log on the relay took another turn than the one held
    /// here (restored from an older copy, and written to since), taken,
    /// with what it lacked made again on top of it (see `sync::turn`).
    pub logs_turned: Vec<AccountId>,
    /// Devices of this account such a turn left revoked (a device it had
    /// revoked revoked them there) or out of the log (paired by a device
    /// the relay's revokes): they pair again.
    pub stay_revoked: Vec<DeviceId>,
    /// Documents disposed of whose disposal the relay lacked (restored from
    /// an older copy, or losing data): given back, so it deletes them again.
    pub disposals_healed: Vec<DocId>,
    /// Cases this owner's device keeps under a legal hold though their
    /// owner's disposal reached the relay (signed on another device before
    /// it knew of the hold): the relay no longer holds them, nor takes
    /// their edits; lifting the hold here carries the disposal out.
    pub kept_under_hold: Vec<crate::app::KeptCase>,
    /// Other accounts' logs the relay served that this device refused: the
    /// documents each is part of are held back (and in `refused`), the rest
    /// of the round went on (see `sync::logs`).
    pub logs_refused: Vec<RefusedLog>,
    /// Documents held here only in part: changes they hold build on
    /// changes the relay has not served.
    pub incomplete: Vec<Incomplete>,
    /// Edits kept on this device but not sent: this account may no longer
    /// make them (a share ended, or became read-only or comment-only), or
    /// the document's access log on the relay did not verify this round.
    pub held: Vec<HeldEdits>,
}

/// Another account's log the relay served, refused, with why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RefusedLog {
    pub account: AccountId,
    pub reason: String,
}

/// The setting that keeps [`LastRound`].
const LAST_ROUND: &str = "last_sync_round";

/// The setting that keeps what the last round refused.
const AUDITED_REFUSALS: &str = "audited_refusals";

/// What a person asks of the last sync: when, and what stayed behind.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LastRound {
    /// Unix seconds at which it finished.
    pub at: u64,
    pub held: Vec<HeldEdits>,
    /// Documents the round left incomplete.
    #[serde(default)]
    pub incomplete: Vec<Incomplete>,
    /// Documents the round held back (nothing of theirs went, nor may go
    /// early before a round takes them again).
    #[serde(default)]
    pub held_back: Vec<DocId>,
}

/// A document this device holds only in part: changes it holds (signed,
/// and each naming by hash the changes it was written after) build on
/// changes the relay has not served. The relay lost them, or withholds
/// them, or was restored from an older copy. Each round asks for the
/// document again from the start until they arrive.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Incomplete {
    pub doc: DocId,
    /// How many changes are missing, and the first few of their hashes.
    pub missing: usize,
    pub hashes: Vec<String>,
    /// Devices whose changes fetched this round wait for them, and how
    /// many envelopes of each.
    pub waiting: Vec<(DeviceId, usize)>,
    /// Devices that the relay acknowledged changes from which it has not
    /// served here (see `claims`), and whose they are: this account's
    /// name, a contact's, or another account's short id.
    #[serde(default)]
    pub claimed_by: Vec<DeviceId>,
    #[serde(default)]
    pub claimed_by_whom: Vec<String>,
    /// The case it is, or whose psychotherapy notes it holds.
    #[serde(default)]
    pub case: Option<DocId>,
    #[serde(default)]
    pub case_name: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// Every missing change counted in `missing`: a claim judged again in
    /// a later pull of the round counts once.
    #[serde(skip)]
    counted: std::collections::BTreeSet<crate::notes::ChangeHash>,
}

impl Incomplete {
    pub(crate) fn new(
        doc: DocId,
        missing: &[crate::notes::ChangeHash],
        waiting: Vec<(DeviceId, usize)>,
    ) -> Self {
        Incomplete {
            doc,
            missing: missing.len(),
            hashes: missing.iter().take(3).map(|h| h.to_string()).collect(),
            waiting,
            claimed_by: Vec::new(),
            claimed_by_whom: Vec::new(),
            case: None,
            case_name: None,
            private: false,
            counted: missing.iter().copied().collect(),
        }
    }
}

/// Edits to one document that stay in the outbox because they cannot land.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HeldEdits {
    pub doc: DocId,
    pub edits: usize,
    pub reason: String,
    /// The case the document is, or whose psychotherapy notes it holds
    /// (`private`), and its client's name: what a person knows it by.
    #[serde(default)]
    pub case: Option<DocId>,
    #[serde(default)]
    pub case_name: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// This account may no longer make these edits, so they wait for the
    /// person to save or discard them (`Home::settle_held`); otherwise
    /// they go out once the relay's access log verifies again.
    #[serde(default)]
    pub to_settle: bool,
}

/// An envelope that failed a check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RefusedEnvelope {
    pub doc: DocId,
    pub seq: u64,
    pub reason: String,
}

/// How far a round has got, for a progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// What other devices wrote is applied and saved here: a person can
    /// see it now. The rest of the round (this device's own uploads, the
    /// audit, snapshots) follows.
    Visible {
        received: usize,
    },
}

/// The case `doc` is, or whose psychotherapy notes it holds, among
/// `cases`: its id, its client's name, and whether `doc` is the private one.
fn case_of(
    cases: &[(DocId, crate::notes::CaseSummary)],
    doc: &DocId,
) -> Option<(DocId, String, bool)> {
    cases
        .iter()
        .find(|(id, s)| id == doc || s.private_doc == Some(*doc))
        .map(|(id, s)| (*id, s.name.clone(), id != doc))
}

/// Counts one more held edit of `doc`.
fn hold(held: &mut Vec<HeldEdits>, doc: DocId, reason: &str) {
    match held.iter_mut().find(|h| h.doc == doc) {
        Some(h) => h.edits += 1,
        None => held.push(HeldEdits {
            doc,
            edits: 1,
            reason: reason.into(),
            case: None,
            case_name: None,
            private: false,
            to_settle: false,
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
        match self.authenticate(&relay).await {
            // No account on the relay lists this device: it was restored
            // from a copy older than this device's pairing, or than the
            // account. The log goes back, and the device tries again.
            Err(Error::Net(NetError::Relay {
                code: ErrorCode::NotFound,
                ..
            })) if self.id.record.registered => {
                let (account, log) = (self.account_id(), self.account_log()?);
                let took = self.send_log_back(&relay, &account, &log).await?;
                // Tried whatever the answer: another device may have sent
                // it back meanwhile.
                match self.authenticate(&relay).await {
                    Ok(()) => Ok(relay),
                    Err(_) if !took => Err(RollbackError::NotListed(account).into()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(()) => Ok(relay),
        }
    }

    /// Takes `&mut self`: a future holding `&Home` would not be `Send`.
    async fn authenticate(&mut self, relay: &Relay) -> Result<()> {
        let account = self.account_id();
        match relay.authenticate(&self.id.signer, Some(account)).await {
            Ok(_) => Ok(()),
            Err(NetError::Relay {
                code: ErrorCode::Unauthorized,
                reason,
            }) if reason.contains("revoked") => Err(Error::Revoked),
            Err(e) => Err(e.into()),
        }
    }

    /// One full sync round, in the order [`Round`] decides.
    pub async fn sync(
        &mut self,
        relay: &Relay,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        // A round that failed before its report leaves nothing for this one.
        self.synced.kept_under_hold.clear();
        // What this round learns of members' keys and shares is as of when
        // it first reads the account logs.
        let mut learnt_at = None;
        let mut pulled_back: Vec<DocId> = Vec::new();
        let mut round = Round::new(self.restored_at()?.is_some());
        let mut accounts = BTreeMap::new();
        loop {
            match round.poll() {
                Phase::PushEarly => {
                    let early = self.push_early(relay).await;
                    // Edits saved without waiting for the disk (see
                    // `Setup::sends_at_once`) are durable before the round
                    // goes on, whether or not they went early.
                    self.store.durable_barrier()?;
                    let (sent, moved) = early?;
                    round.sent_early(sent, moved);
                }
                Phase::Accounts => {
                    self.store.durable_barrier()?;
                    learnt_at.get_or_insert(self.now());
                    accounts = self.refresh_accounts(relay).await?;
                    round.accounts_read();
                }
                Phase::Pull => {
                    let (held_back, lacking) = self
                        .pull(relay, &mut accounts, round.report(), progress)
                        .await?;
                    pulled_back = held_back.iter().copied().collect();
                    round.pulled(held_back, lacking);
                }
                Phase::ForgetRestored => self.store.delete_meta(crate::backup::RESTORED)?,
                Phase::Progress(p) => progress(p),
                Phase::Upkeep(mut held_back) => {
                    self.member_logs(relay, &mut accounts).await?;
                    // One kept under a hold takes no new access entry: the
                    // relay holds its disposal; nor does one a refused
                    // account log is part of (see `logs`).
                    held_back.extend(self.kept_under_hold()?);
                    for doc in self.store.doc_ids()? {
                        if self.on_a_refused_log(&doc)?.is_some() {
                            held_back.insert(doc);
                        }
                    }
                    self.maintain_owned_docs(&accounts, &held_back)?;
                }
                Phase::Push(held_back) => {
                    let mut held = Vec::new();
                    let (acked, moved) = self.push(relay, &held_back, &mut held, progress).await?;
                    round.report().held.extend(held);
                    round.pushed(acked, moved);
                }
                Phase::PushAudit(held_back) => {
                    let sent = self.push_audit(relay, &held_back).await?;
                    round.audit_sent(sent);
                }
                Phase::Snapshots(held_back) => {
                    let sent = self.push_snapshots(relay, &held_back).await?;
                    round.snapshots_sent(sent);
                }
                Phase::Done => break,
            }
        }
        let mut report = round.finish();
        report.logs_healed = std::mem::take(&mut self.synced.logs_healed);
        report.logs_turned = std::mem::take(&mut self.synced.logs_turned);
        report.stay_revoked = std::mem::take(&mut self.synced.stay_revoked);
        report.kept_under_hold = std::mem::take(&mut self.synced.kept_under_hold);
        report.logs_refused = (self.synced.refused_logs.iter())
            .map(|(account, reason)| RefusedLog {
                account: *account,
                reason: reason.clone(),
            })
            .collect();
        self.audit_refused_logs(&report.logs_refused)?;
        self.name_held(&mut report.held)?;
        self.name_incomplete(&mut report.incomplete)?;
        // What the last round refused, as a process before this one left
        // it: a refusal met by every sync (a CLI run by a timer, say) is one
        // line of the trail, not one per run.
        if self.synced.audited_refusals.is_empty()
            && let Some(b) = self.store.get_secret(AUDITED_REFUSALS)?
            && let Ok(last) = serde_json::from_slice::<Vec<(DocId, u64, String)>>(&b)
        {
            self.synced.audited_refusals.extend(last);
        }
        if let Some(line) = round::refusal_line(&report.refused, &mut self.synced.audited_refusals)
        {
            self.trail().record(&line, None)?;
        }
        let refused: Vec<(DocId, u64, String)> = report
            .refused
            .iter()
            .map(|r| (r.doc, r.seq, r.reason.clone()))
            .collect();
        self.store.put_secret(
            AUDITED_REFUSALS,
            &serde_json::to_vec(&refused).expect("plain data always serializes"),
        )?;
        self.store.put_secret(
            LAST_ROUND,
            &serde_json::to_vec(&LastRound {
                at: self.now(),
                held: report.held.clone(),
                incomplete: report.incomplete.clone(),
                held_back: pulled_back,
            })
            .expect("plain data always serializes"),
        )?;
        self.synced.caught_up_at = learnt_at;
        Ok(report)
    }

    /// Names the case of each document with held edits, and says which
    /// the person settles.
    fn name_held(&self, held: &mut [HeldEdits]) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        let cases = self.docs().cases()?;
        let (me, now) = (self.account_id(), self.now());
        for h in held {
            h.to_settle = self
                .access()
                .doc_meta(&h.doc)?
                .is_some_and(|m| m.role_of(&me, now).is_none_or(|r| r < Role::Write));
            if let Some((case, name, private)) = case_of(&cases, &h.doc) {
                (h.case, h.case_name, h.private) = (Some(case), Some(name), private);
            }
        }
        Ok(())
    }

    /// Names the case of each incomplete document.
    fn name_incomplete(&self, incomplete: &mut [Incomplete]) -> Result<()> {
        if incomplete.is_empty() {
            return Ok(());
        }
        let cases = self.docs().cases()?;
        for x in incomplete {
            if let Some((case, name, private)) = case_of(&cases, &x.doc) {
                (x.case, x.case_name, x.private) = (Some(case), Some(name), private);
            }
        }
        Ok(())
    }

    /// Drops a settled document from what the last round held back, so
    /// `status` does not list it until the next round.
    pub(crate) fn forget_held(&self, doc: &DocId) -> Result<()> {
        if let Some(mut last) = self.last_round()? {
            last.held.retain(|h| h.doc != *doc);
            self.store.put_secret(
                LAST_ROUND,
                &serde_json::to_vec(&last).expect("plain data always serializes"),
            )?;
        }
        Ok(())
    }

    /// When the last sync round finished, and what it held back.
    pub fn last_round(&self) -> Result<Option<LastRound>> {
        Ok(match self.store.get_secret(LAST_ROUND)? {
            Some(b) => serde_json::from_slice(&b).ok(),
            None => None,
        })
    }
}
