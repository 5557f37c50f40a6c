//! A hostile colleague: an account the owner shares cases with, whose
//! device keys the simulation holds ([`crate::rogue::Rogue`]), so it
//! uploads what an honest client never would. What its role permits must be
//! accepted by every device; what it forbids must be refused by every
//! device (or by the relay first), whatever the timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use casebook::net::Relay;
use casebook_shared::access::{DocEntry, DocOp, Role, SIG_LABEL};
use casebook_shared::ids::DocId;

use super::net::FINGERPRINT;
use super::world::World;
use crate::rogue::Rogue;

/// What the hostile colleague tries.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    /// Edits a field of a note: only a writer may.
    Edit,
    /// Comments on a note: a commenter or writer may.
    Comment,
    /// Edits a note written as one of the owner's devices: nobody may.
    AsOwnersDevice,
}

/// A change of the hostile colleague's the relay took: its token and
/// whether its role permitted it.
#[derive(Clone, Debug)]
pub struct RogueChange {
    pub case: DocId,
    pub seq: u64,
    pub token: String,
    pub permitted: bool,
    /// Stored after a copy of the relay's data that was then restored: if
    /// no owner's device fetched it first it is gone, since the rogue (a
    /// bare client) sends nothing again. The check then does not look for
    /// it on the owner's devices (even where one did fetch it).
    pub lost_in_restore: bool,
}

/// The hostile colleague's role on a document now, read off the access log
/// the relay serves (entries' signatures checked; who may sign them is the
/// honest clients' business, and the relay's).
fn role_now(rogue: &Rogue, log: &[casebook_shared::signed::Signed], now: u64) -> Option<Role> {
    let mut role = None;
    for e in log {
        let Ok(entry) = e.open::<DocEntry>(SIG_LABEL) else {
            continue;
        };
        match entry.op {
            DocOp::AddMember {
                member,
                role: r,
                expires,
                ..
            } if member == rogue.id => {
                role = Some(r).filter(|_| expires.is_none_or(|e| now < e));
            }
            DocOp::RemoveMember { member } if member == rogue.id => role = None,
            _ => {}
        }
    }
    role
}

impl World {
    /// Registers the hostile colleague; the practice knows it as Dr. Mallory.
    pub async fn add_rogue(&mut self) {
        let conn = Relay::local(self.relay.as_ref(), FINGERPRINT);
        let rogue = Rogue::register(conn).await;
        self.accounts.push(super::world::Account {
            name: "Dr. Mallory",
            id: Some(rogue.id),
            words: None,
        });
        self.rogue = Some(rogue);
    }

    /// The hostile colleague reads a case it holds (or once held) and uploads
    /// an edit, a comment, or an edit written as one of the owner's devices.
    pub async fn rogue_acts(&mut self) {
        let Some(mut rogue) = self.rogue.take() else {
            return;
        };
        self.rogue_attempt(&mut rogue).await;
        self.rogue = Some(rogue);
    }

    async fn rogue_attempt(&mut self, rogue: &mut Rogue) {
        // A connection of its own each time: the relay may have restarted.
        if let Err(e) = rogue
            .reconnect(Relay::local(self.relay.as_ref(), FINGERPRINT))
            .await
        {
            self.violations
                .push(format!("the rogue cannot sign in: {e}"));
            return;
        }
        // A case the relay lets it read: one shared with it now.
        let start = self.rng.below(self.cases.len().max(1));
        let mut found = None;
        for i in 0..self.cases.len() {
            let case = self.cases[(start + i) % self.cases.len()];
            if let Some(log) = rogue.try_access_log(case).await {
                found = Some((case, log));
                break;
            }
        }
        let Some((case, log)) = found else {
            return;
        };
        let role = role_now(rogue, &log, self.setup.clock.now());
        let attempt = [Attempt::Edit, Attempt::Comment, Attempt::AsOwnersDevice][self.rng.below(3)];
        let token = format!("rogue-{}", self.token());
        let pick = self.rng.below(1000);
        let actor = match attempt {
            Attempt::AsOwnersDevice => {
                let laptop = self.live_of(0)[0];
                [&self.home(laptop).device_id().0[..], b"-forged"].concat()
            }
            // An actor of its own device, fresh each time: what the relay
            // withholds from it may include its own last change, and a
            // change numbered again under one actor merges nowhere.
            _ => [&rogue.actor()[..], b"-", token.as_bytes()].concat(),
        };
        let text = token.clone();
        // Whether the edit was made at all (a signed note takes no edit).
        let made = Arc::new(AtomicBool::new(false));
        let made_in = made.clone();
        let forged = rogue
            .try_forge_with(case, None, &actor, move |c| {
                let notes = c.notes();
                if notes.is_empty() {
                    return;
                }
                let n = &notes[pick % notes.len()];
                let ok = match attempt {
                    Attempt::Comment => c
                        .add_comment(&n.id, "Dr. Mallory", "2026-11-21T09:00:00Z", &text)
                        .is_ok(),
                    Attempt::Edit | Attempt::AsOwnersDevice => {
                        let old = n.field("plan").to_string();
                        c.edit_note(&n.id, &[("plan".into(), format!("{old} {text}"))])
                            .is_ok()
                    }
                };
                made_in.store(ok, Ordering::SeqCst);
            })
            .await;
        let Some(envelope) = forged.filter(|_| made.load(Ordering::SeqCst)) else {
            // Never shared with it (nothing of the case opens), or no note
            // that takes the change.
            self.note(format!("rogue: nothing to change in {}", case.short()));
            return;
        };
        let permitted = match attempt {
            Attempt::Edit => role == Some(Role::Write),
            Attempt::Comment => role.is_some_and(Role::can_upload),
            Attempt::AsOwnersDevice => false,
        };
        let may_upload = role.is_some_and(Role::can_upload);
        match rogue.upload(envelope).await {
            Ok(seq) => {
                if !may_upload {
                    self.violations.push(format!(
                        "the relay took an upload of the rogue's to {} with role {role:?}",
                        case.short()
                    ));
                }
                if !permitted {
                    rogue.disowned.push((case, seq));
                }
                self.rogue_changes.push(RogueChange {
                    case,
                    seq,
                    token: token.clone(),
                    permitted,
                    lost_in_restore: false,
                });
                self.note(format!(
                    "rogue {attempt:?} {} seq {seq} as {role:?}: {token}",
                    case.short()
                ));
            }
            Err(code) => {
                if may_upload {
                    self.violations.push(format!(
                        "the relay refused the rogue's upload to {} with role {role:?}: {code:?}",
                        case.short()
                    ));
                }
                self.note(format!(
                    "rogue {attempt:?} {} refused by the relay ({code:?})",
                    case.short()
                ));
            }
        }
    }

    /// Whether a device's refusal of `(doc, seq)` is one the hostile
    /// colleague's attempt called for.
    pub fn expected_refusal(&self, doc: &DocId, seq: u64) -> bool {
        self.rogue_changes
            .iter()
            .any(|r| !r.permitted && r.case == *doc && r.seq == seq)
    }
}
