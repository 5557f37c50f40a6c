//! Many devices on one relay node: each authenticated and watching, as a
//! hosted relay holds them between edits. What they cost the node (its
//! resident memory, and its CPU while they only keep their connections
//! alive), and edit to visible for one pair among them, beside the same
//! pair on the node alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use casebook::net::Relay;
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret};
use casebook_shared::frames::{Request, Response};
use casebook_tests::uploader::{Uploader, uploader};
use tokio::sync::Semaphore;

use super::{RelayProc, pct};

/// What the run measured.
pub(crate) struct Watchers {
    pub(crate) devices: usize,
    pub(crate) rss_alone_mb: f64,
    pub(crate) rss_with_mb: f64,
    /// Seconds to connect, create, authenticate and subscribe them all.
    pub(crate) connect_s: f64,
    /// The relay's CPU while they only keep alive, in percent of a core.
    pub(crate) idle_cpu: f64,
    /// Edit to visible for the pair, p50 / p99 ms: alone, then among them.
    pub(crate) alone: (f64, f64),
    pub(crate) among: (f64, f64),
}

impl Watchers {
    pub(crate) fn rows(&self) -> Vec<(String, String, String)> {
        let per = (self.rss_with_mb - self.rss_alone_mb) * 1024.0 / self.devices as f64;
        vec![
            (
                format!(
                    "{} devices connected to one relay node, each authenticated and watching",
                    self.devices
                ),
                format!(
                    "relay resident memory {:.0} MB ({:.0} MB before they came, {per:.0} KiB each); all connected in {:.1} s; relay CPU {:.0}% of a core while they keep alive",
                    self.rss_with_mb, self.rss_alone_mb, self.connect_s, self.idle_cpu
                ),
                "≤ 1 GiB".into(),
            ),
            (
                "upload to visible on a watching device of another account, p50 / p99, among them"
                    .into(),
                format!(
                    "{:.2} / {:.2} ms (the same pair on the node alone: {:.2} / {:.2} ms)",
                    self.among.0, self.among.1, self.alone.0, self.alone.1
                ),
                "p99 printed".into(),
            ),
        ]
    }
}

fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

/// A device of a new account, connected over `endpoint`, authenticated
/// and watching; held until dropped.
async fn watcher(
    endpoint: quinn::Endpoint,
    addr: &str,
    fp: [u8; 32],
) -> Result<(Relay, casebook::net::Subscription)> {
    let relay = Relay::connect_on(endpoint, addr, fp).await?;
    let signer = DeviceSigner::generate();
    let (genesis, _) = account::genesis(&signer, &DhSecret::generate(), 0);
    let state = AccountState::from_genesis(&genesis)?;
    match relay
        .request(&Request::CreateAccount {
            entries: vec![genesis],
        })
        .await?
    {
        Response::Ok => {}
        other => bail!("creating an account: {other:?}"),
    }
    relay.authenticate(&signer, Some(state.id)).await?;
    let sub = relay.subscribe().await?;
    Ok((relay, sub))
}

/// `edits` uploads by `owner`, each timed until `reader` (a member, with
/// `told` watching) was told and fetched it.
async fn pair_latency(
    owner: &Uploader,
    reader: &Uploader,
    told: &mut casebook::net::Subscription,
    edits: usize,
) -> Result<(f64, f64)> {
    let sealed = owner.seal(edits);
    let mut times = Vec::with_capacity(edits);
    for env in sealed {
        let t0 = Instant::now();
        let seq = match owner
            .relay
            .request(&Request::Upload {
                envelopes: vec![env],
            })
            .await?
        {
            Response::Uploaded { results } => results[0].map_err(|e| anyhow::anyhow!("{e:?}"))?,
            other => bail!("upload: {other:?}"),
        };
        loop {
            match tokio::time::timeout(Duration::from_secs(10), told.next()).await?? {
                Some(t) if t.doc == owner.doc && t.seq >= seq => break,
                Some(_) => {}
                None => bail!("the subscription ended"),
            }
        }
        match reader
            .relay
            .request(&Request::Fetch {
                docs: vec![(owner.doc, seq - 1)],
                max_bytes: 1 << 20,
            })
            .await?
        {
            Response::Changes { items, .. } if items.iter().any(|i| i.seq == seq) => {}
            other => bail!("fetch: {other:?}"),
        }
        times.push(t0.elapsed());
    }
    times.sort();
    Ok((pct(&times, 0.5), pct(&times, 0.99)))
}

/// Runs it against `relay` with `devices` watchers and `edits` timed uploads.
pub(crate) async fn watchers(relay: &RelayProc, devices: usize, edits: usize) -> Result<Watchers> {
    let pid = relay.child.id();
    let mut owner = uploader(&relay.addr, relay.fp).await?;
    let reader = uploader(&relay.addr, relay.fp).await?;
    if !matches!(owner.add_writer(&reader.state).await?, Response::Ok) {
        bail!("sharing the pair's document");
    }
    let mut told = reader.relay.subscribe().await?;
    pair_latency(&owner, &reader, &mut told, 20).await?;
    let alone = pair_latency(&owner, &reader, &mut told, edits).await?;
    let rss_alone_mb = rss_mb(pid)?;

    // A few client sockets, each shared by many connections.
    let endpoints: Vec<quinn::Endpoint> = (0..16)
        .map(|_| quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal")))
        .collect::<Result<_, _>>()?;
    let limit = Arc::new(Semaphore::new(128));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..devices {
        let permit = limit.clone().acquire_owned().await?;
        let (endpoint, addr, fp) = (
            endpoints[i % endpoints.len()].clone(),
            relay.addr.clone(),
            relay.fp,
        );
        tasks.spawn(async move {
            let w = watcher(endpoint, &addr, fp).await;
            drop(permit);
            w
        });
    }
    let mut held = Vec::with_capacity(devices);
    while let Some(w) = tasks.join_next().await {
        held.push(w??);
    }
    let connect_s = t0.elapsed().as_secs_f64();
    // Settled: handshakes done, buffers at their steady size.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu0 = relay.cpu()?;
    let t1 = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu = (relay.cpu()? - cpu0) / t1.elapsed().as_secs_f64() * 100.0;
    let rss_with_mb = rss_mb(pid)?;
    let among = pair_latency(&owner, &reader, &mut told, edits).await?;
    drop(held);
    Ok(Watchers {
        devices,
        rss_alone_mb,
        rss_with_mb,
        connect_s,
        idle_cpu,
        alone,
        among,
    })
}
