//! The operations the schedule chooses from, each as a person would do it
//! on one device, and the rule each must keep while it runs.

use casebook::Error;
use casebook::notes::NoteError;
use casebook::store::CrashPoint;
use casebook_shared::access::Role;
use casebook_shared::ids::DocId;

use super::world::{FIELDS, Token, World};

/// Whether an error is the core refusing what the role forbids.
fn refused(e: &Error) -> bool {
    matches!(
        e,
        Error::Role(_)
            | Error::Note(NoteError::Signed(_) | NoteError::AlreadySigned(_))
            | Error::Note(NoteError::NotSigned(_))
    )
}

impl World {
    /// A random case device `d` holds, and a random note in it.
    fn some_note(&mut self, d: usize) -> Option<(DocId, String)> {
        let cases = self.cases_on(d);
        let case = *self.rng.pick(&cases)?;
        let notes = self
            .home(d)
            .docs()
            .read_case(&case, |c| {
                c.notes().into_iter().map(|n| n.id).collect::<Vec<_>>()
            })
            .ok()?;
        let note = self.rng.pick(&notes)?.clone();
        Some((case, note))
    }

    /// Inserts a token somewhere in a text field of a note: edits of the
    /// same field on several devices merge character by character.
    pub fn edit(&mut self, d: usize) {
        let answer = self
            .last_commented
            .clone()
            .filter(|(c, _)| self.rng.chance(500) && self.cases_on(d).contains(c));
        let Some((case, note)) = answer.or_else(|| self.some_note(d)) else {
            return;
        };
        let field = FIELDS[self.rng.below(FIELDS.len())];
        let role = self.role(d, &case);
        let tok = self.token();
        let Ok(Some(current)) = self
            .home(d)
            .docs()
            .read_case(&case, |c| c.note(&note).map(|n| n.field(field).to_string()))
        else {
            return;
        };
        let bounds: Vec<usize> = current
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(current.len()))
            .filter(|&i| current[..i].ends_with(' ') || i == 0 || i == current.len())
            .collect();
        let at = bounds[self.rng.below(bounds.len())];
        let text = format!("{} {tok} {}", &current[..at], &current[at..]);
        let _ = self.maybe_crash(60, 4);
        let result = self
            .home(d)
            .edit_note(&case, &note, &[(field.to_string(), text)]);
        let crashed = self.crashed(d);
        let label = self.devices[d].label.clone();
        match result {
            Ok(_) => {
                if role.is_none_or(|r| r < Role::Write) {
                    self.violations.push(format!(
                        "{label} edited {} with role {role:?}",
                        case.short()
                    ));
                }
                self.wrote(Token {
                    device: d,
                    case,
                    text: tok.clone(),
                });
                self.note(format!(
                    "{label} edit {} {note} {field} +{tok}",
                    case.short()
                ));
            }
            Err(e) if crashed => self.note(format!("{label} crashed in an edit: {e}")),
            Err(e) if refused(&e) => self.note(format!("{label} edit refused: {e}")),
            Err(e) => self.violations.push(format!("{label} edit failed: {e}")),
        }
    }

    pub fn add_note(&mut self, d: usize) {
        let cases = self.cases_on(d);
        let Some(&case) = self.rng.pick(&cases) else {
            return;
        };
        let role = self.role(d, &case);
        let (input, toks) = self.note_input();
        let label = self.devices[d].label.clone();
        let _ = self.maybe_crash(60, 4);
        let result = self.home(d).add_note(&case, input);
        let crashed = self.crashed(d);
        match result {
            Ok(id) => {
                if role.is_none_or(|r| r < Role::Write) {
                    self.violations
                        .push(format!("{label} added a note with role {role:?}"));
                }
                for t in toks {
                    self.wrote(Token {
                        device: d,
                        case,
                        text: t,
                    });
                }
                self.note(format!("{label} note {} {id}", case.short()));
            }
            Err(e) if crashed => self.note(format!("{label} crashed adding a note: {e}")),
            Err(e) if refused(&e) => self.note(format!("{label} note refused: {e}")),
            Err(e) => self
                .violations
                .push(format!("{label} add note failed: {e}")),
        }
    }

    pub fn sign(&mut self, d: usize) {
        let Some((case, note)) = self.some_note(d) else {
            return;
        };
        let label = self.devices[d].label.clone();
        let before = self
            .home(d)
            .docs()
            .read_case(&case, |c| c.note(&note))
            .ok()
            .flatten();
        match self.home(d).sign_note(&case, &note) {
            Ok(_) => {
                let content = before
                    .map(|n| n.editable_fields().into_iter().collect())
                    .unwrap_or_default();
                self.signed
                    .entry((case, note.clone()))
                    .or_default()
                    .push(content);
                self.note(format!("{label} sign {} {note}", case.short()));
            }
            Err(e) if refused(&e) => self.note(format!("{label} sign refused: {e}")),
            Err(e) => self.violations.push(format!("{label} sign failed: {e}")),
        }
    }

    pub fn addendum(&mut self, d: usize) {
        let Some((case, note)) = self.some_note(d) else {
            return;
        };
        let tok = self.token();
        let label = self.devices[d].label.clone();
        match self.home(d).add_addendum(&case, &note, &tok) {
            Ok(_) => {
                self.wrote(Token {
                    device: d,
                    case,
                    text: tok,
                });
                self.note(format!("{label} addendum {} {note}", case.short()));
            }
            Err(e) if refused(&e) => self.note(format!("{label} addendum refused: {e}")),
            Err(e) => self
                .violations
                .push(format!("{label} addendum failed: {e}")),
        }
    }

    pub fn comment(&mut self, d: usize) {
        let Some((case, note)) = self.some_note(d) else {
            return;
        };
        let role = self.role(d, &case);
        let tok = self.token();
        let label = self.devices[d].label.clone();
        match self.home(d).comment_note(&case, &note, &tok) {
            Ok(_) => {
                if !role.is_some_and(Role::can_upload) {
                    self.violations
                        .push(format!("{label} commented with role {role:?}"));
                }
                self.wrote(Token {
                    device: d,
                    case,
                    text: tok,
                });
                self.note(format!("{label} comment {} {note}", case.short()));
                if self.devices[d].account != 0 {
                    self.last_commented = Some((case, note));
                }
            }
            Err(e) if refused(&e) => self.note(format!("{label} comment refused: {e}")),
            Err(e) => self.violations.push(format!("{label} comment failed: {e}")),
        }
    }

    /// The owner shares a case with a colleague in a random role; sharing
    /// again is how a role changes (unshare, then share).
    pub async fn share(&mut self, d: usize) {
        let held = self.cases_on(d);
        let cases: Vec<DocId> = self
            .cases
            .iter()
            .filter(|c| held.contains(c))
            .copied()
            .collect();
        let Some(&case) = self.rng.pick(&cases) else {
            return;
        };
        // Either colleague, or the hostile one.
        let colleague = 1 + self.rng.below(self.accounts.len() - 1);
        self.share_with(d, case, colleague).await;
    }

    /// Device `d` shares `case` with account `colleague` in a random role,
    /// or ends the share if there is one.
    pub async fn share_with(&mut self, d: usize, case: DocId, colleague: usize) {
        let name = self.accounts[colleague].name;
        let role = [Role::Read, Role::Comment, Role::Write][self.rng.below(3)];
        let label = self.devices[d].label.clone();
        let member = self.accounts[colleague].id;
        let already = self
            .home(d)
            .shares(&case)
            .map(|s| s.iter().any(|r| Some(r.member) == member))
            .unwrap_or(false);
        if already {
            match self.home(d).unshare(&case, name) {
                Ok(_) => self.note(format!("{label} unshare {} {name}", case.short())),
                Err(e) => self.note(format!("{label} unshare failed: {e}")),
            }
            return;
        }
        // A third of shares run out by themselves, a few hours on.
        let expires = self
            .rng
            .chance(333)
            .then(|| self.setup.clock.now() + 3600 * (1 + self.rng.below(6) as u64));
        let home = self.home(d);
        let result = match home.connect().await {
            Ok(conn) => {
                let r = home
                    .share(
                        &conn,
                        &case,
                        name,
                        role,
                        "consultation",
                        "release",
                        expires,
                        false,
                    )
                    .await;
                conn.close().await;
                r
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                let until = expires.map_or(String::new(), |e| format!(" until {e}"));
                self.note(format!(
                    "{label} share {} {name} {role:?}{until}",
                    case.short()
                ));
                // `casebook share` syncs at once, as a person expects.
                self.faulty_sync(d).await;
            }
            Err(e) => self.note(format!("{label} share failed: {e}")),
        }
    }

    /// Hours pass for everyone at once (the relay too): shares given an
    /// expiry run out, and their owners' devices act on it when they sync.
    pub fn time_passes(&mut self) {
        let hours = 2 + self.rng.below(7) as u64;
        self.setup.clock.advance(3600 * hours);
        self.note(format!("{hours} hours pass"));
    }

    pub fn new_case(&mut self, d: usize) {
        let n = self.cases.len();
        let label = self.devices[d].label.clone();
        match self
            .home(d)
            .create_case(&format!("Client {n}"), "2026-11-20")
        {
            Ok(id) => {
                self.cases.push(id);
                self.note(format!("{label} case {}", id.short()));
            }
            Err(e) => self
                .violations
                .push(format!("{label} create case failed: {e}")),
        }
    }

    /// A sync round with the network's faults on; sometimes the process
    /// crashes part-way, and opens again from what it wrote.
    pub async fn faulty_sync(&mut self, d: usize) {
        // Now and then as a watcher runs it: told by the relay that some
        // documents changed, it fetches those first (`Home::sync_told`).
        let told = match self.extra.as_mut().is_some_and(|r| r.chance(300)) {
            true => Some(self.told_of(d).await),
            false => None,
        };
        let crash = self.rng.chance(150).then(|| self.rng.below(12) as u32);
        {
            let mut f = self.relay.faults();
            f.on = true;
            f.crash_in = crash;
            f.crashed = false;
        }
        let armed = crash.is_none() && self.maybe_crash(100, 16);
        // Now and then the power fails just as a round makes the edits it
        // sends durable (its first write, while the early upload travels):
        // the relay may have stored what the device then loses.
        let cut_first_write = !armed
            && told.is_none()
            && self.home(d).pending().unwrap_or(0) > 0
            && self.cuts.as_mut().is_some_and(|p| p.chance(150));
        if let (true, Some(p)) = (cut_first_write, &self.setup.crash) {
            p.arm(0);
        }
        let result = match &told {
            Some(told) => self.sync_told(d, told).await,
            None => self.sync(d).await,
        };
        let stopped_writing = self.setup.crash.as_ref().is_some_and(CrashPoint::disarm);
        let crashed = {
            let mut f = self.relay.faults();
            f.on = false;
            let c = f.crashed;
            f.crash_in = None;
            f.crashed = false;
            c
        } || stopped_writing;
        let label = self.devices[d].label.clone();
        match result {
            Ok(r) => self.note(format!("{label} sync: {}", outcome(&r))),
            // The crash point stops the store's writes through SQLite's
            // commit hook, whose refusal reads "constraint failed".
            Err(e) if stopped_writing => {
                self.note(format!("{label} sync stopped by the simulated crash: {e}"))
            }
            Err(e) => self.note(format!("{label} sync failed: {e}")),
        }
        // Now and then the power fails just after a round, when what it
        // fetched may not have reached the disk yet.
        if self.extra.as_mut().is_some_and(|p| p.chance(120)) {
            self.power_cut(d);
        } else if stopped_writing
            && (cut_first_write || self.cuts.as_mut().is_some_and(|p| p.chance(333)))
        {
            // The power failed while a write waited for the disk.
            self.power_cut(d);
        } else if crashed {
            self.crash_and_reopen(d);
        }
    }

    /// Revokes a device of the owner's from another of its devices.
    pub async fn revoke(&mut self, by: usize, victim: usize) {
        let id = self.home(victim).device_id();
        let home = self.home(by);
        let result = match home.connect().await {
            Ok(conn) => {
                let r = home.revoke(&conn, &id).await;
                conn.close().await;
                r
            }
            Err(e) => Err(e),
        };
        let (a, b) = (
            self.devices[by].label.clone(),
            self.devices[victim].label.clone(),
        );
        match result {
            Ok(n) => {
                self.devices[victim].revoked = true;
                self.note(format!("{a} revoked {b}; {n} documents rotated"));
            }
            Err(e) => self.note(format!("{a} revoke {b} failed: {e}")),
        }
    }
}

/// What a round did, for the trace (read when a seed fails): what it sent
/// and got, each refusal and why, and each case it left incomplete with the
/// first hashes it lacks and whose changes wait for them.
pub fn outcome(r: &casebook::sync::SyncReport) -> String {
    let why = r
        .refused
        .iter()
        .map(|x| format!(" [{} seq {}: {}]", x.doc.short(), x.seq, x.reason));
    let lacking = r.incomplete.iter().map(|x| {
        let waiting: Vec<String> = x
            .waiting
            .iter()
            .map(|(d, n)| format!("{} x{n}", d.short()))
            .collect();
        format!(
            " [{} lacks {} {:?} waiting {:?}]",
            x.doc.short(),
            x.missing,
            x.hashes,
            waiting
        )
    });
    format!(
        "sent {} got {} refused {}{}{}",
        r.pushed,
        r.received,
        r.refused.len(),
        why.collect::<String>(),
        lacking.collect::<String>()
    )
}
