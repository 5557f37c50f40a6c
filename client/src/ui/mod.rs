//! `casebook ui`: the web page a therapist uses instead of the terminal,
//! served by this machine to this machine's browser only.
//!
//! A page on localhost is an attack surface like any other: other pages in
//! the same browser can send it requests, and a DNS name can be pointed at
//! 127.0.0.1. So the server binds to loopback alone, answers only requests
//! whose Host is the address it printed (DNS rebinding), lets in only a
//! browser that came through the one-time link it printed (exchanged for
//! an HttpOnly, SameSite=Strict cookie named after the port), refuses any
//! change whose Origin is not its own, changes nothing on GET, and sends a
//! Content-Security-Policy that allows its own stylesheet and nothing else
//! (`guard.rs`). Every page is drawn with maud, which escapes what it
//! prints; URLs carry ids only, never a client's name or note text.
//!
//! The page starts locked: the passphrase opens the home, and "Lock", or a
//! spell without use, drops it (and every key it holds) from memory.

mod audit_pages;
mod background;
mod charts;
mod devices;
mod devices_pages;
mod guard;
mod live;
mod note_pages;
mod note_routes;
mod pages;
mod private;
mod profile;
mod routes;
mod setup;
mod sharing;
mod sharing_pages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use casebook::Home;

/// `casebook ui`.
#[derive(clap::Args, Debug)]
pub struct UiArgs {
    /// Where to listen: 127.0.0.1:PORT (default: a free port). Only a
    /// loopback address is accepted.
    #[arg(long, value_name = "127.0.0.1:PORT")]
    listen: Option<SocketAddr>,
    /// Do not open the default browser; only print the address.
    #[arg(long)]
    no_browser: bool,
    /// Minutes without use after which the page locks (fractions allowed).
    #[arg(long, value_name = "MINUTES", default_value_t = 10.0)]
    lock_after: f64,
}

/// What the server holds: the home once unlocked, and what lets a browser in.
pub(crate) struct Ui {
    dir: PathBuf,
    /// `127.0.0.1:PORT`: the one Host header answered.
    host: String,
    /// `http://127.0.0.1:PORT`: the one Origin a change may come from.
    origin: String,
    /// `casebook_PORT`: two servers on two ports keep two cookies.
    cookie: String,
    /// The link's token, until a browser exchanges it.
    token: Mutex<Option<String>>,
    /// The cookie's value for this run.
    session: String,
    home: tokio::sync::Mutex<Option<Home>>,
    last_use: Mutex<Instant>,
    lock_after: Duration,
    /// What the background sync last said.
    sync: Mutex<background::SyncStatus>,
    /// Stops the background sync (and drops its handle on the home).
    stop_sync: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Counts locks: an unlock that began before the last lock is not
    /// carried out, and a sync task of an earlier unlock says nothing.
    locks: std::sync::atomic::AtomicU64,
    /// A pairing begun from the page, and what became of it.
    pairing: Mutex<devices::Pairing>,
    /// Moves each time the background sync applies what another device
    /// wrote: an open page redraws itself when it does.
    changes: std::sync::atomic::AtomicU64,
}

impl Ui {
    /// Marks the page in use now (it stays unlocked for `lock_after`).
    fn used(&self) {
        *self
            .last_use
            .lock()
            .expect("never poisoned: no panics under it") = Instant::now();
    }

    /// Drops the home, and every key in it, from memory: the page's handle
    /// here, the background sync's as it stops.
    async fn lock(&self) {
        // A pairing holds the home while it waits: it stops first.
        self.pairing.lock().expect("never poisoned").cancel();
        let mut home = self.home.lock().await;
        self.locks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        home.take();
        if let Some(stop) = self.stop_sync.lock().expect("never poisoned").take() {
            let _ = stop.send(());
        }
        *self.sync.lock().expect("never poisoned") = background::SyncStatus::default();
    }

    /// The lock count now, for an unlock about to begin.
    fn locks(&self) -> u64 {
        self.locks.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Unlocked with `home` for the page and `syncing` for the background,
    /// unless the page was locked since the unlock began (`since`): then
    /// both are dropped. Returns whether it is unlocked.
    async fn unlocked(self: &Arc<Self>, since: u64, home: Home, syncing: Home) -> bool {
        let mut held = self.home.lock().await;
        if self.locks() != since {
            return false;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        if let Some(old) = self.stop_sync.lock().expect("never poisoned").replace(stop) {
            let _ = old.send(());
        }
        tokio::spawn(background::keep_syncing(
            self.clone(),
            since,
            syncing,
            stopped,
        ));
        *held = Some(home);
        tokio::spawn(background::warm_search(self.clone(), since));
        true
    }

    /// Changes what the page shows of the background sync, if the task
    /// saying so belongs to the unlock in force (`since`).
    fn set_sync(&self, since: u64, change: impl FnOnce(&mut background::SyncStatus)) {
        let mut status = self.sync.lock().expect("never poisoned");
        if self.locks() == since {
            change(&mut status);
        }
    }

    /// The header's sync line for a page drawn from `home`.
    fn bar(&self, home: &Home) -> pages::Bar {
        pages::Bar {
            sync: self.sync.lock().expect("never poisoned").clone(),
            unsent: home.pending().unwrap_or(0),
            version: self.changes.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

fn random_hex() -> String {
    hex::encode(casebook_shared::crypto::random_bytes::<32>())
}

/// Runs the page's server until Ctrl-C.
pub async fn serve(dir: PathBuf, args: &UiArgs) -> Result<()> {
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: the page is served to this machine only; give 127.0.0.1:PORT");
    }
    if !(args.lock_after > 0.0 && args.lock_after.is_finite()) {
        bail!(
            "--lock-after {}: give a number of minutes above 0",
            args.lock_after
        );
    }
    // Where no home exists yet, the page offers to set one up.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let host = addr.to_string();
    let token = random_hex();
    let ui = Arc::new(Ui {
        dir,
        origin: format!("http://{host}"),
        cookie: format!("casebook_{}", addr.port()),
        host,
        token: Mutex::new(Some(token.clone())),
        session: random_hex(),
        home: tokio::sync::Mutex::new(None),
        last_use: Mutex::new(Instant::now()),
        lock_after: Duration::try_from_secs_f64(args.lock_after * 60.0)
            .context("--lock-after: give a number of minutes a clock can count")?,
        sync: Mutex::default(),
        stop_sync: Mutex::new(None),
        locks: std::sync::atomic::AtomicU64::new(0),
        pairing: Mutex::default(),
        changes: std::sync::atomic::AtomicU64::new(0),
    });
    let url = format!("{}/?token={token}", ui.origin);
    // The first line of stdout, for a script or a test to read.
    println!("{url}");
    eprintln!("casebook is open at the address above; Ctrl-C stops it.");
    if !args.no_browser {
        open_browser(&url);
    }
    tokio::spawn(lock_when_idle(ui.clone()));
    let app = routes::router(ui.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the page's server stopped")?;
    ui.lock().await;
    eprintln!("stopped.");
    Ok(())
}

/// Locks the page after a spell without use.
async fn lock_when_idle(ui: Arc<Ui>) {
    let every = (ui.lock_after / 10).clamp(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        let idle = ui.last_use.lock().expect("never poisoned").elapsed();
        if idle >= ui.lock_after {
            ui.lock().await;
        }
    }
}

/// Opens the person's default browser at `url`; where none can be started,
/// the printed address is enough.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        eprintln!("no browser could be opened here: open the address above in one.");
    }
}
