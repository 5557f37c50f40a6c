//! The relay's ingest over PostgreSQL: a server this benchmark starts on
//! loopback (`synchronous_commit` on), the relay on one node and on two,
//! and PostgreSQL's own rate for inserting the same rows in transactions
//! of the same size as the relay's group commits, in the same run.

#[path = "../../../../server/tests/common/postgres.rs"]
mod pg;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::RelayProc;
use super::ingest::ingest;

/// The rows for the table: one node, two nodes, and raw PostgreSQL.
pub(crate) fn ingest_rows(
    rt: &tokio::runtime::Runtime,
    tmp: &Path,
    per: usize,
) -> Result<Vec<(String, String, String)>> {
    let server = pg::TestPostgres::start().context("PostgreSQL is not installed")?;
    let mut rows = Vec::new();

    eprintln!("== ingest on PostgreSQL, one node");
    let url = rt.block_on(server.create_db("one_node"));
    rt.block_on(casebook_relay::postgres::migrate(&url, None))?;
    let relay = RelayProc::start_on(&tmp.join("pg-one"), Some(&url), None)?;
    let (rate, cpu_us, size, blobs) = rt.block_on(ingest(&[&relay], 50, per, 32))?;
    relay.stop()?;
    rows.push((
        format!("ingest on PostgreSQL, one node, 50 devices, {size}-byte envelopes"),
        format!("{rate:.0} /s, relay CPU {cpu_us:.0} µs each"),
        "beside the raw rate".into(),
    ));

    eprintln!("== ingest on PostgreSQL, two nodes");
    let url = rt.block_on(server.create_db("two_nodes"));
    rt.block_on(casebook_relay::postgres::migrate(&url, None))?;
    let first = tmp.join("pg-a");
    let a = RelayProc::start_on(&first, Some(&url), None)?;
    let b = RelayProc::start_on(&tmp.join("pg-b"), Some(&url), Some(&first))?;
    let (rate2, cpu2, _, _) = rt.block_on(ingest(&[&a, &b], 50, per, 32))?;
    a.stop()?;
    b.stop()?;
    rows.push((
        "ingest on PostgreSQL, two nodes over one database, same load".into(),
        format!("{rate2:.0} /s, relays' CPU {cpu2:.0} µs each"),
        "≥ one node".into(),
    ));

    let url = rt.block_on(server.create_db("raw"));
    let raw = rt.block_on(raw_postgres(&url, &blobs, 1024))?;
    rows.push((
        "raw PostgreSQL inserts, same rows, pipelined, 1,024 per transaction".into(),
        format!(
            "{raw:.0} /s (relay on one node: {:.0}% of it)",
            rate / raw * 100.0
        ),
        "the limit".into(),
    ));
    Ok(rows)
}

/// Inserts the blobs as the relay's table holds them, in transactions of
/// `per_tx` whose inserts go as one pipeline, each committed durably
/// before the next.
async fn raw_postgres(url: &str, blobs: &[Vec<u8>], per_tx: usize) -> Result<f64> {
    let (mut client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE e(seq BIGSERIAL PRIMARY KEY, doc BYTEA NOT NULL, env_id BYTEA NOT NULL,
             bytes BYTEA NOT NULL, UNIQUE(doc, env_id))",
        )
        .await?;
    let insert = client
        .prepare("INSERT INTO e(doc, env_id, bytes) VALUES ($1, $2, $3)")
        .await?;
    let t0 = Instant::now();
    for chunk in blobs.chunks(per_tx) {
        let tx = client.transaction().await?;
        // Pipelined, as the relay's writer sends a run of inserts.
        let (tx_ref, insert) = (&tx, &insert);
        futures_util::future::try_join_all(chunk.iter().map(|b| async move {
            let (doc, id) = (&b[2..18], &b[86..110]);
            tx_ref.execute(insert, &[&doc, &id, b]).await
        }))
        .await?;
        tx.commit().await?;
    }
    Ok(blobs.len() as f64 / t0.elapsed().as_secs_f64())
}
