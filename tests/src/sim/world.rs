//! The simulated practice: three practitioners' accounts and their devices,
//! each a real home in a temporary folder, and the operations a person
//! performs on them, chosen by the seed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use casebook::Home;
use casebook::home::Setup;
use casebook::net::{PushedEnvelope, Relay, Told};
use casebook::notes::{NoteFormat, NoteInput};
use casebook::store::CrashPoint;
use casebook::store::KdfParams;
use casebook_shared::access::Role;
use casebook_shared::clock::Clock;
use casebook_shared::envelope::Kind;
use casebook_shared::ids::{AccountId, DocId};

use super::net::{FINGERPRINT, SimRelay};
use super::rng::Rng;

pub const PASSPHRASE: &[u8] = b"simulated passphrase";
pub const ADDR: &str = "in-process";

/// The text fields edits go into: two, so edits often meet in one.
pub const FIELDS: [&str; 2] = ["subjective", "plan"];

/// One device: its home (none while "crashed" or before it exists).
pub struct Device {
    pub label: String,
    pub account: usize,
    pub dir: PathBuf,
    pub home: Option<Home>,
    pub revoked: bool,
}

/// One practitioner.
pub struct Account {
    pub name: &'static str,
    pub id: Option<AccountId>,
    pub words: Option<String>,
}

/// A change a device made that must reach every device that may see it.
#[derive(Clone, Debug)]
pub struct Token {
    pub device: usize,
    pub case: DocId,
    pub text: String,
}

/// The whole simulated practice.
pub struct World {
    pub rng: Rng,
    pub relay: Arc<SimRelay>,
    pub setup: Setup,
    pub root: tempfile::TempDir,
    pub accounts: Vec<Account>,
    pub devices: Vec<Device>,
    /// Every case the owner made.
    pub cases: Vec<DocId>,
    pub tokens: Vec<Token>,
    /// Tokens (by index) each device wrote since its last sync that went
    /// through: saved without waiting for the disk, they may be lost to a
    /// power cut.
    unsettled: BTreeMap<usize, Vec<usize>>,
    /// Tokens a power cut took before they were durable: what a device
    /// may lose. If the relay had one, every device still shows it (the
    /// one that lost it takes it back as its own echo).
    pub lost_to_power: std::collections::BTreeSet<usize>,
    /// Whether a write stopped by a crash was a power cut: a third stream
    /// of choices, so that the seeds of `extra` replay as found.
    pub cuts: Option<Rng>,
    /// For each signed note, the content of each signature made on it.
    pub signed: BTreeMap<(DocId, String), Vec<BTreeMap<String, String>>>,
    /// The note a colleague commented on last: owners often answer a
    /// comment by editing the note, which builds on the comment.
    pub last_commented: Option<(DocId, String)>,
    /// Edits each device holds back after healing (its role no longer
    /// allows them), by document, with the reason its sync gave.
    pub held: BTreeMap<usize, Vec<(DocId, String)>>,
    /// What happened, in order, for a failing seed's report.
    pub trace: Vec<String>,
    /// Rule breaks seen while running (a forbidden edit accepted).
    pub violations: Vec<String>,
    next_token: u64,
    /// The hostile colleague, and what of its the relay took.
    pub rogue: Option<crate::rogue::Rogue>,
    pub rogue_changes: Vec<super::hostile::RogueChange>,
    /// Where the choices added after the seeds of `FOUND` (in the tests)
    /// were found are drawn from, apart from the schedule's, so those seeds
    /// replay as they were found: power cuts, and rounds run as a watcher
    /// told of changes runs them. None: neither.
    pub extra: Option<Rng>,
    pub power_cuts: u64,
    /// Where someone with the relay's disk decides what to damage, a
    /// stream of its own (see [`super::disk`]); None: nobody does.
    pub disk: Option<Rng>,
    /// Envelopes damaged on the relay's disk and not yet put right: their
    /// sequence number and the bytes as stored.
    pub damaged: Vec<(i64, Vec<u8>)>,
    /// Where the relay decides what to lie about, a stream of its own (see
    /// [`super::lies`]); None: it never lies.
    pub lies: Option<Rng>,
    /// The lies it tells now, to stop telling.
    pub told_lies: Vec<super::lies::Lie>,
    /// The device the schedule revokes: what it sent, nobody sends again.
    pub to_revoke: Option<casebook_shared::ids::DeviceId>,
    /// Where the relay's operator decides when to copy its data and when
    /// to restore that copy (see [`super::restore`]); None: never.
    pub restores: Option<Rng>,
    /// The copy taken, not yet restored, and how many of the rogue's
    /// changes the relay had taken then.
    pub relay_copy: Option<(std::path::PathBuf, usize)>,
    /// Where the owner decides when to dispose of a case (see
    /// [`super::disposals`]); None: never.
    pub disposals: Option<Rng>,
    /// The cases disposed of: on no device at the end.
    pub disposed: Vec<DocId>,
}

/// A fresh folder for simulated homes: in memory where the system has one,
/// since the simulation is about order, not disks.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("casebook-sim")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("a temporary folder")
}

impl World {
    pub fn new(seed: u64, rates: super::net::FaultRates) -> World {
        let root = scratch();
        let mut rng = Rng::new(seed);
        let net_rng = Rng::new(rng.next_u64());
        // One clock for the relay and every device, moved ahead by the
        // schedule: shares expire while the practice works.
        let clock = Clock::adjustable();
        let relay = Arc::new(SimRelay::new(root.path(), net_rng, rates, clock.clone()));
        let setup = Setup {
            kdf: KdfParams::FOR_SIMULATION,
            local: Some(relay.clone()),
            clock,
            crash: Some(CrashPoint::default()),
            // Every device sends its edits as the web page does: saved
            // without waiting for the disk, made durable while they go.
            sends_at_once: true,
        };
        World {
            rng,
            relay,
            setup,
            root,
            accounts: ["Dr. Rivera", "Dr. Chen", "Dr. Okafor"]
                .into_iter()
                .map(|name| Account {
                    name,
                    id: None,
                    words: None,
                })
                .collect(),
            devices: Vec::new(),
            cases: Vec::new(),
            tokens: Vec::new(),
            signed: BTreeMap::new(),
            last_commented: None,
            held: BTreeMap::new(),
            trace: Vec::new(),
            violations: Vec::new(),
            next_token: 0,
            rogue: None,
            rogue_changes: Vec::new(),
            extra: None,
            power_cuts: 0,
            disk: None,
            damaged: Vec::new(),
            lies: None,
            told_lies: Vec::new(),
            to_revoke: None,
            restores: None,
            relay_copy: None,
            disposals: None,
            disposed: Vec::new(),
            unsettled: BTreeMap::new(),
            lost_to_power: Default::default(),
            cuts: None,
        }
    }

    pub fn note(&mut self, what: impl Into<String>) {
        self.trace.push(what.into());
    }

    fn new_dir(&mut self, label: &str) -> PathBuf {
        self.root
            .path()
            .join(format!("{label}-{}", self.devices.len()))
    }

    pub fn home(&mut self, d: usize) -> &mut Home {
        self.devices[d].home.as_mut().expect("an open device")
    }

    /// Devices that are open and not revoked.
    pub fn live(&self) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&d| self.devices[d].home.is_some() && !self.devices[d].revoked)
            .collect()
    }

    pub fn live_of(&self, account: usize) -> Vec<usize> {
        self.live()
            .into_iter()
            .filter(|&d| self.devices[d].account == account)
            .collect()
    }

    /// The first device of an account.
    pub fn init(&mut self, account: usize, label: &str) -> usize {
        let dir = self.new_dir(label);
        let name = self.accounts[account].name;
        let (home, words) =
            Home::init_with(&dir, PASSPHRASE, name, ADDR, FINGERPRINT, &self.setup).expect("init");
        self.accounts[account].id = Some(home.account_id());
        self.accounts[account].words = Some(words.to_string());
        self.devices.push(Device {
            label: label.into(),
            account,
            dir,
            home: Some(home),
            revoked: false,
        });
        self.note(format!("init {label}"));
        self.devices.len() - 1
    }

    /// Pairs a new device with `existing` over the relay's mailbox.
    pub async fn pair(&mut self, existing: usize, label: &str) -> Option<usize> {
        let dir = self.new_dir(label);
        let account = self.devices[existing].account;
        let code = casebook::pairing::new_code();
        let setup = self.setup.clone();
        let home = self.home(existing);
        let conn = match home.connect().await {
            Ok(c) => c,
            Err(e) => {
                self.note(format!("pair {label}: connect failed: {e}"));
                return None;
            }
        };
        let (added, joined) = tokio::join!(
            home.pair_add(&conn, &code, Duration::from_secs(5)),
            casebook::pairing::join_with(&dir, PASSPHRASE, &code, ADDR, FINGERPRINT, &setup)
        );
        conn.close().await;
        match (added, joined) {
            (Ok(_), Ok(home)) => Some(self.adopt(label, account, dir, home, "paired")),
            (a, j) => {
                self.note(format!(
                    "pair {label} failed: {:?} / {:?}",
                    a.err().map(|e| e.to_string()),
                    j.err().map(|e| e.to_string())
                ));
                None
            }
        }
    }

    /// Takes a device that joined an account into the practice, with the
    /// contacts each of its account's devices keeps.
    fn adopt(&mut self, label: &str, account: usize, dir: PathBuf, home: Home, how: &str) -> usize {
        self.devices.push(Device {
            label: label.into(),
            account,
            dir,
            home: Some(home),
            revoked: false,
        });
        self.note(format!("{how} {label}"));
        let d = self.devices.len() - 1;
        self.befriend_all(d);
        d
    }

    /// Restores an account onto a new device from its recovery words.
    pub async fn recover(&mut self, account: usize, label: &str) -> Option<usize> {
        let dir = self.new_dir(label);
        let words = self.accounts[account].words.clone()?;
        let name = self.accounts[account].name;
        match casebook::devices::recover_with(
            &dir,
            PASSPHRASE,
            &words,
            name,
            ADDR,
            FINGERPRINT,
            &self.setup,
        )
        .await
        {
            Ok(home) => Some(self.adopt(label, account, dir, home, "recovered")),
            Err(e) => {
                self.note(format!("recover {label} failed: {e}"));
                None
            }
        }
    }

    /// Makes every other practitioner a verified contact of device `d`
    /// (each of an account's devices keeps its own contacts).
    pub fn befriend_all(&mut self, d: usize) {
        let me = self.devices[d].account;
        let others: Vec<(&'static str, AccountId)> = self
            .accounts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .filter_map(|(_, a)| Some((a.name, a.id?)))
            .collect();
        for (name, id) in others {
            let home = self.home(d);
            if home.contacts().get(name).is_err() {
                home.contacts()
                    .add(name, &casebook::sharing::card(&id, name))
                    .expect("contact add");
                home.contacts()
                    .verify(name, &casebook::sharing::safety_number(&id))
                    .expect("contact verify");
            }
        }
    }

    /// The machine of device `d` loses power: what its store committed
    /// without waiting for the disk since its last commit that did is
    /// lost, and it starts again from what is left.
    pub fn power_cut(&mut self, d: usize) {
        let dir = self.devices[d].dir.clone();
        self.devices[d].home = None;
        let point = self
            .setup
            .crash
            .as_ref()
            .expect("the simulation's crash point");
        point
            .power_cut(&dir.join(casebook::home::DB_FILE))
            .expect("the store's files are put back");
        if let Some(lost) = self.unsettled.remove(&d) {
            self.lost_to_power.extend(lost);
        }
        let home =
            Home::open_with(&dir, PASSPHRASE, &self.setup).expect("a home opens after a power cut");
        self.devices[d].home = Some(home);
        self.power_cuts += 1;
        self.note(format!(
            "{} lost power and started again",
            self.devices[d].label
        ));
    }

    /// A crash: the process ends without warning; what it wrote to disk
    /// stays, what it held in memory is gone. The device opens again.
    pub fn crash_and_reopen(&mut self, d: usize) {
        let dir = self.devices[d].dir.clone();
        self.devices[d].home = None;
        let home = Home::open_with(&dir, PASSPHRASE, &self.setup).expect("a crashed home opens");
        self.devices[d].home = Some(home);
        self.note(format!("{} crashed and reopened", self.devices[d].label));
    }

    /// Now and then, arms a crash of the next operation's process at one
    /// of its next `within` store writes; says whether it did.
    pub fn maybe_crash(&mut self, per_mille: u32, within: usize) -> bool {
        if !self.rng.chance(per_mille) {
            return false;
        }
        let writes = self.rng.below(within) as u32;
        if let Some(p) = &self.setup.crash {
            p.arm(writes);
        }
        true
    }

    /// After an operation: whether its process stopped between two store
    /// writes; if so it starts again from what its files hold.
    pub fn crashed(&mut self, d: usize) -> bool {
        let fired = self.setup.crash.as_ref().is_some_and(CrashPoint::disarm);
        if fired {
            self.crash_and_reopen(d);
        }
        fired
    }

    /// One sync round on a fresh connection.
    pub async fn sync(&mut self, d: usize) -> casebook::Result<casebook::sync::SyncReport> {
        let home = self.home(d);
        let conn: Relay = home.connect().await?;
        let report = home.sync(&conn, &mut |_| {}).await;
        conn.close().await;
        if report.is_ok() {
            self.unsettled.remove(&d);
        }
        report
    }

    /// Records a change device `d` made, that must reach every device that
    /// may see it.
    pub fn wrote(&mut self, t: Token) {
        self.unsettled
            .entry(t.device)
            .or_default()
            .push(self.tokens.len());
        self.tokens.push(t);
    }

    /// One round on a fresh connection as a watcher runs it, told that
    /// the documents in `told` changed.
    pub async fn sync_told(
        &mut self,
        d: usize,
        told: &[Told],
    ) -> casebook::Result<casebook::sync::SyncReport> {
        let home = self.home(d);
        let conn: Relay = home.connect().await?;
        let report = home.sync_told(&conn, told, &mut |_| {}).await;
        conn.close().await;
        report
    }

    /// What the relay would push to device `d` if it watched: some of the
    /// documents it may read, each with its newest sequence number, and
    /// half of them with the newest envelope and the one before it, as the
    /// relay pushes a short one. Asked before the network's faults are
    /// turned on.
    pub async fn told_of(&mut self, d: usize) -> Vec<Told> {
        use casebook_shared::frames::{Request, Response};
        let home = self.home(d);
        let Ok(conn) = home.connect().await else {
            return Vec::new();
        };
        let listed = conn.request(&Request::ListDocs { since: 0 }).await;
        let (Ok(Response::Docs { docs, .. }), Some(r)) = (listed, self.extra.as_mut()) else {
            conn.close().await;
            return Vec::new();
        };
        let mut told = Vec::new();
        for h in docs.into_iter().filter(|h| h.seq > 0 && r.chance(500)) {
            // Chosen without the generator, so the seeds of `FOUND` keep
            // their schedule: half the documents as a watcher that has
            // watched a while is told of them, each of its changes
            // pushed with its envelope and the one before it (what a fetch
            // of the whole document gives); the others told plainly.
            if h.seq % 2 == 0 {
                let fetched = conn
                    .request(&Request::Fetch {
                        docs: vec![(h.doc, 0)],
                        max_bytes: 16 << 20,
                    })
                    .await;
                if let Ok(Response::Changes { items, more: false }) = fetched
                    && items.last().is_some_and(|i| i.seq == h.seq)
                {
                    for (i, item) in items.iter().enumerate() {
                        let change =
                            casebook_shared::envelope::Envelope::decode(item.envelope.clone())
                                .is_ok_and(|e| {
                                    matches!(e.header.kind, Kind::Change | Kind::Signal)
                                });
                        if !change {
                            continue;
                        }
                        told.push(Told {
                            doc: h.doc,
                            seq: item.seq,
                            pushed: Some(PushedEnvelope {
                                envelope: item.envelope.clone(),
                                prev: i.checked_sub(1).map_or(0, |p| items[p].seq),
                            }),
                        });
                    }
                    continue;
                }
            }
            told.push(Told::doc(h.doc, h.seq));
        }
        conn.close().await;
        told
    }

    pub fn token(&mut self) -> String {
        self.next_token += 1;
        format!("tok{:04}", self.next_token)
    }

    /// The role device `d`'s account holds on `case`, as that device knows it.
    pub fn role(&mut self, d: usize, case: &DocId) -> Option<Role> {
        let home = self.home(d);
        let me = home.account_id();
        let now = home.now();
        home.access()
            .doc_meta(case)
            .ok()
            .flatten()
            .and_then(|m| m.role_of(&me, now))
    }

    /// Cases device `d` holds a body of.
    pub fn cases_on(&mut self, d: usize) -> Vec<DocId> {
        self.home(d)
            .docs()
            .cases()
            .map(|c| c.into_iter().map(|(id, _)| id).collect())
            .unwrap_or_default()
    }

    /// A new note input with a token in each field.
    pub fn note_input(&mut self) -> (NoteInput, Vec<String>) {
        let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
        let mut toks = Vec::new();
        for f in FIELDS {
            let t = self.token();
            n.fields.push((f.to_string(), t.clone()));
            toks.push(t);
        }
        (n, toks)
    }
}
