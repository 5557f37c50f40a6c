//! The relay in process, behind a network that is hostile to timing: the
//! real request handling and the real SQLite store of `casebook-relay`,
//! reached without QUIC, with requests lost before they arrive, answers
//! lost after the relay acted, requests delivered twice, a device's
//! process crashing mid-round, and the relay restarting.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use casebook::net::{Answer, Exchange, LocalRelay, NetError};
use casebook_relay::relay::{Relay, Session};
use casebook_relay::sqlite::SqliteStore;
use casebook_shared::clock::Clock;
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::DeviceId;

use super::rng::Rng;

/// The certificate fingerprint the simulated relay signs challenges with.
pub const FINGERPRINT: [u8; 32] = [0x5a; 32];

/// Per-mille chances of each fault while faults are on.
#[derive(Clone, Copy, Debug)]
pub struct FaultRates {
    pub lose_request: u32,
    pub lose_answer: u32,
    pub repeat: u32,
}

/// What the network does now; the schedule switches it.
#[derive(Debug)]
pub struct Faults {
    pub rng: Rng,
    pub rates: FaultRates,
    pub on: bool,
    /// Exchanges left before the device's process "crashes": from then on
    /// every exchange fails until the schedule reopens the device.
    pub crash_in: Option<u32>,
    pub crashed: bool,
    /// Loses the answer to the next request this matches, once, whether
    /// or not faults are on: for tests of one precise loss.
    pub lose_answer_to: Option<fn(&Request) -> bool>,
    /// Counts, for the summary.
    pub lost_requests: u64,
    pub lost_answers: u64,
    pub repeated: u64,
}

/// The relay in process: its store, its handler, and the faults between.
pub struct SimRelay {
    path: PathBuf,
    clock: Clock,
    relay: Mutex<(Arc<Relay<SqliteStore>>, Arc<SqliteStore>)>,
    pub faults: Arc<Mutex<Faults>>,
    /// Envelopes the relay leaves out of what it serves (see
    /// [`super::lies`]): by sequence number, from every device (`None`)
    /// or from one.
    pub withheld: Withheld,
}

/// Envelopes left out of what the relay serves, by sequence number, from
/// every device or from one.
pub type Withheld = Arc<Mutex<Vec<(u64, Option<DeviceId>)>>>;

fn start(path: &std::path::Path, clock: &Clock) -> (Arc<Relay<SqliteStore>>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(path).expect("the relay store opens"));
    let cursor = store.load_now().expect("the relay store reads").cursor;
    let relay = Relay::new(
        store.clone(),
        FINGERPRINT,
        // Simulated time runs far faster than a person: no rate limits.
        casebook_relay::limits::Limits {
            uploads_per_second: u32::MAX,
            ..Default::default()
        },
        // Fewer than the simulation has: every seed reads logs back from
        // the store as a large relay does.
        casebook_relay::state::Capacity {
            accounts: 2,
            docs: 3,
        },
    )
    .with_cursor(cursor)
    .with_clock(clock.clone());
    (Arc::new(relay), store)
}

impl SimRelay {
    /// A relay whose expiries are judged by `clock`, the devices' clock.
    pub fn new(dir: &std::path::Path, rng: Rng, rates: FaultRates, clock: Clock) -> SimRelay {
        let path = dir.join("relay.db");
        SimRelay {
            relay: Mutex::new(start(&path, &clock)),
            path,
            clock,
            faults: Arc::new(Mutex::new(Faults {
                rng,
                rates,
                on: false,
                crash_in: None,
                crashed: false,
                lose_answer_to: None,
                lost_requests: 0,
                lost_answers: 0,
                repeated: 0,
            })),
            withheld: Withheld::default(),
        }
    }

    /// Stops the relay (what it acknowledged is durable) and starts it
    /// again on the same store, rebuilding its state from disk.
    pub fn restart(&self) {
        let mut slot = self.relay.lock().unwrap();
        slot.1.close();
        *slot = start(&self.path, &self.clock);
    }

    /// Copies the relay's database, as it stands, to `to` (SQLite's
    /// `VACUUM INTO`: one consistent copy while the relay runs, as
    /// `casebook-relay backup` takes one).
    pub fn copy_to(&self, to: &std::path::Path) {
        let c = rusqlite::Connection::open(&self.path).expect("the relay's database opens");
        c.busy_timeout(std::time::Duration::from_secs(30))
            .expect("a busy timeout");
        c.execute("VACUUM INTO ?1", [to.to_string_lossy()])
            .expect("the relay's database is copied");
    }

    /// Stops the relay, puts `copy` in place of its database, and starts
    /// it again: what it stored since the copy is gone.
    pub fn restore_from(&self, copy: &std::path::Path) {
        let mut slot = self.relay.lock().unwrap();
        slot.1.close();
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", self.path.display()));
            if file.exists() {
                std::fs::remove_file(&file).expect("the relay's file is removed");
            }
        }
        std::fs::copy(copy, &self.path).expect("the copy is put back");
        *slot = start(&self.path, &self.clock);
    }

    /// The relay's database file, for someone with its disk.
    pub fn db_path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap()
    }
}

impl Drop for SimRelay {
    fn drop(&mut self) {
        if let Ok(slot) = self.relay.lock() {
            slot.1.close();
        }
    }
}

impl LocalRelay for SimRelay {
    fn open(&self) -> Box<dyn Exchange> {
        Box::new(Conn {
            relay: self.relay.lock().unwrap().0.clone(),
            session: tokio::sync::Mutex::new(Session::default()),
            faults: self.faults.clone(),
            withheld: self.withheld.clone(),
        })
    }
}

/// One connection: a session on the relay, as `casebook-relay`'s QUIC
/// shell keeps one per connection.
struct Conn {
    relay: Arc<Relay<SqliteStore>>,
    session: tokio::sync::Mutex<Session>,
    faults: Arc<Mutex<Faults>>,
    withheld: Withheld,
}

/// What the network decides for one exchange.
enum Fate {
    Deliver,
    LoseRequest,
    LoseAnswer,
    Repeat,
    Crashed,
}

impl Conn {
    fn fate(&self, req: &Request) -> Fate {
        let mut f = self.faults.lock().unwrap();
        if f.crashed {
            return Fate::Crashed;
        }
        if let Some(n) = f.crash_in {
            if n == 0 {
                f.crashed = true;
                f.crash_in = None;
                return Fate::Crashed;
            }
            f.crash_in = Some(n - 1);
        }
        if f.lose_answer_to.is_some_and(|m| m(req)) {
            f.lose_answer_to = None;
            f.lost_answers += 1;
            return Fate::LoseAnswer;
        }
        if !f.on {
            return Fate::Deliver;
        }
        let rates = f.rates;
        if f.rng.chance(rates.lose_request) {
            f.lost_requests += 1;
            Fate::LoseRequest
        } else if f.rng.chance(rates.lose_answer) {
            f.lost_answers += 1;
            Fate::LoseAnswer
        } else if f.rng.chance(rates.repeat) {
            f.repeated += 1;
            Fate::Repeat
        } else {
            Fate::Deliver
        }
    }

    async fn handle(&self, req: Request) -> Response {
        // As the QUIC shell does: authentication changes the session; every
        // other request works on a copy of it.
        let stateful = matches!(
            req,
            Request::Challenge | Request::Auth { .. } | Request::CreateAccount { .. }
        );
        if stateful {
            let mut s = self.session.lock().await;
            self.relay.handle(&mut s, req).await
        } else {
            let mut s = self.session.lock().await.clone();
            let device = s.identity.map(|(_, d)| d);
            let answer = self.relay.handle(&mut s, req).await;
            self.withhold(answer, device)
        }
    }

    /// Leaves out of fetched envelopes those withheld from `device`.
    fn withhold(&self, answer: Response, device: Option<DeviceId>) -> Response {
        let withheld = self.withheld.lock().unwrap();
        match answer {
            Response::Changes { mut items, more } if !withheld.is_empty() => {
                items.retain(|i| {
                    !withheld
                        .iter()
                        .any(|(seq, from)| *seq == i.seq && from.is_none_or(|f| Some(f) == device))
                });
                // A page emptied by what is left out ends the fetch, as a
                // relay that lies about it would.
                let more = more && !items.is_empty();
                Response::Changes { items, more }
            }
            answer => answer,
        }
    }
}

impl Exchange for Conn {
    fn exchange<'a>(&'a self, req: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            let lost = |what: &str| Err(NetError::Io(format!("simulated: {what}")));
            match self.fate(req) {
                Fate::Crashed => lost("this process crashed"),
                Fate::LoseRequest => lost("the request was lost"),
                Fate::LoseAnswer => {
                    self.handle(req.clone()).await;
                    lost("the answer was lost")
                }
                // A repeat is a retry the network made on its own; a
                // challenge or an authentication is bound to its session
                // and never repeats.
                Fate::Repeat if !matches!(req, Request::Challenge | Request::Auth { .. }) => {
                    self.handle(req.clone()).await;
                    Ok(self.handle(req.clone()).await)
                }
                Fate::Repeat => Ok(self.handle(req.clone()).await),
                Fate::Deliver => Ok(self.handle(req.clone()).await),
            }
        })
    }
}
