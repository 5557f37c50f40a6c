//! Relay ingest: fifty devices upload pre-sealed envelopes at once, and the
//! raw rate of the same inserts into SQLite beside it.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use casebook_shared::frames::{Request, Response};
use casebook_tests::uploader::uploader;

use super::RelayProc;

/// 2: 50 devices upload concurrently, spread over the relay's nodes;
/// the CPU per envelope is all nodes' together.
pub(crate) async fn ingest(
    nodes: &[&RelayProc],
    devices: usize,
    per_device: usize,
    batch: usize,
) -> Result<(f64, f64, usize, Vec<Vec<u8>>)> {
    let mut ups = Vec::new();
    for i in 0..devices {
        let node = nodes[i % nodes.len()];
        ups.push(uploader(&node.addr, node.fp).await?);
    }
    let cpu = || -> Result<f64> { nodes.iter().map(|n| n.cpu()).sum() };
    let sealed: Vec<Vec<Vec<u8>>> = ups.iter().map(|u| u.seal(per_device)).collect();
    let size = sealed[0][0].len();
    let sample: Vec<Vec<u8>> = sealed.iter().flatten().cloned().collect();
    let cpu0 = cpu()?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (u, envs) in ups.into_iter().zip(sealed) {
        tasks.push(tokio::spawn(async move {
            let mut acked = 0usize;
            for chunk in envs.chunks(batch) {
                match u
                    .relay
                    .request(&Request::Upload {
                        envelopes: chunk.to_vec(),
                    })
                    .await?
                {
                    Response::Uploaded { results } => {
                        for r in &results {
                            match r {
                                Ok(_) => acked += 1,
                                Err(e) => bail!("an envelope was refused: {e:?}"),
                            }
                        }
                    }
                    other => bail!("unexpected {other:?}"),
                }
            }
            u.relay.close().await;
            Ok(acked)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu()? - cpu0;
    if acked != devices * per_device {
        bail!("only {acked} of {} acknowledged", devices * per_device);
    }
    Ok((acked as f64 / secs, cpu / acked as f64 * 1e6, size, sample))
}

/// The raw rate of group-committed inserts of the same blobs, same disk.
pub(crate) fn raw_sqlite(dir: &Path, blobs: &[Vec<u8>], per_tx: usize) -> Result<f64> {
    let conn = rusqlite::Connection::open(dir.join("raw.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE e(seq INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB NOT NULL, env_id BLOB NOT NULL,
         bytes BLOB NOT NULL, UNIQUE(doc, env_id))",
    )?;
    let t0 = Instant::now();
    for chunk in blobs.chunks(per_tx) {
        let tx = conn.unchecked_transaction()?;
        {
            let mut st =
                tx.prepare_cached("INSERT INTO e(doc, env_id, bytes) VALUES (?1, ?2, ?3)")?;
            for b in chunk {
                st.execute(rusqlite::params![&b[2..18], &b[86..110], b])?;
            }
        }
        tx.commit()?;
    }
    Ok(blobs.len() as f64 / t0.elapsed().as_secs_f64())
}

/// The relay's signature check alone, per signature: one device's 32
/// signatures over 1 KiB, checked one by one (strictly) and as one batch.
pub(crate) fn signature_check() -> (f64, f64) {
    use casebook_shared::crypto::{DeviceSigner, verify, verify_batch};
    let signer = DeviceSigner::generate();
    let device = signer.device_id();
    let msgs: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i; 1024]).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| signer.sign("bench", m)).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let rounds = 200;
    let t = Instant::now();
    for _ in 0..rounds {
        for (m, s) in msgs.iter().zip(&sigs) {
            verify(&device, "bench", m, s).expect("a good signature");
        }
    }
    let one = t.elapsed().as_secs_f64() * 1e6 / (rounds * 32) as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        verify_batch(&device, "bench", &refs, &sigs).expect("good signatures");
    }
    let batch = t.elapsed().as_secs_f64() * 1e6 / (rounds * 32) as f64;
    (one, batch)
}
