//! The relay's start-up and memory against what it stores: a relay over
//! 100,000 documents of 10,000 accounts beside one over 100 of 10. Logs
//! are read when a request needs them and held up to a bound, so the two
//! should start alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use casebook_relay::sqlite::SqliteStore;
use casebook_relay::storage::{Storage, WriteJob};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};
use casebook_shared::ids::DocId;
use casebook_tests::uploader::doc_genesis;

use super::RelayProc;

/// One relay's figures.
pub(crate) struct Scale {
    pub(crate) accounts: usize,
    pub(crate) docs: usize,
    pub(crate) db_mb: f64,
    pub(crate) start_ms: f64,
    pub(crate) rss_mb: f64,
    /// Reading and verifying every log, as the relay did at start before
    /// it held a bounded cache: seconds, and the memory it took.
    pub(crate) whole_s: f64,
    pub(crate) whole_mb: f64,
}

/// Writes `accounts` accounts of `per` documents each (real signed logs,
/// a key envelope per document) into a relay data folder.
async fn fill(dir: &Path, accounts: usize, per: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = Arc::new(SqliteStore::open(&dir.join("relay.db"))?);
    let mut pending = Vec::new();
    for _ in 0..accounts {
        let signer = DeviceSigner::generate();
        let (genesis, _) = account::genesis(&signer, &DhSecret::generate(), 0);
        let state = AccountState::from_genesis(&genesis)?;
        pending.push(store.submit(WriteJob::Account {
            account: state.id,
            first_seq: 0,
            entries: vec![genesis],
            devices: state.devices.keys().copied().collect(),
        }));
        for _ in 0..per {
            let doc = DocId::random();
            let genesis = doc_genesis(&signer, &state, doc, &SecretKey::random())?;
            pending.push(store.submit(WriteJob::Access {
                doc,
                first_seq: 0,
                entries: vec![genesis],
                owner: state.id,
                members: vec![state.id],
                signer: (state.id, state.len),
            }));
        }
        if pending.len() > 4096 {
            for p in pending.drain(..) {
                if p.await?.iter().any(Result::is_err) {
                    bail!("a write was refused");
                }
            }
        }
    }
    for p in pending {
        if p.await?.iter().any(Result::is_err) {
            bail!("a write was refused");
        }
    }
    Storage::close(&*store).await;
    Ok(())
}

fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    Ok(kb / 1024.0)
}

/// Fills a folder and times a relay starting over it.
pub(crate) fn scale(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    accounts: usize,
    per: usize,
) -> Result<Scale> {
    rt.block_on(fill(dir, accounts, per))?;
    let db_mb = std::fs::metadata(dir.join("relay.db"))?.len() as f64 / 1e6;
    let t0 = Instant::now();
    let relay = RelayProc::start(dir)?;
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(std::time::Duration::from_secs(2));
    let relay_rss = rss_mb(relay.child.id())?;
    relay.stop()?;
    let store = SqliteStore::open(&dir.join("relay.db"))?;
    let before = rss_mb(std::process::id())?;
    let t0 = Instant::now();
    let whole = casebook_relay::state::State::rebuild(store.load_now()?)?;
    let whole_s = t0.elapsed().as_secs_f64();
    let whole_mb = rss_mb(std::process::id())? - before;
    drop(whole);
    Ok(Scale {
        accounts,
        docs: accounts * per,
        db_mb,
        start_ms,
        rss_mb: relay_rss,
        whole_s,
        whole_mb,
    })
}

/// The table's rows: the small relay and the large one.
pub(crate) fn rows(small: &Scale, large: &Scale) -> Vec<(String, String, String)> {
    let row = |s: &Scale| {
        (
            format!(
                "relay start-up and memory over {} documents of {} accounts ({:.1} MB database)",
                s.docs, s.accounts, s.db_mb
            ),
            format!(
                "listening {:.0} ms after it was started; resident memory {:.1} MB (reading and verifying every log, as the relay did at start before: {:.2} s, {:.0} MB)",
                s.start_ms, s.rss_mb, s.whole_s, s.whole_mb
            ),
            "the same for both".into(),
        )
    };
    vec![row(small), row(large)]
}
