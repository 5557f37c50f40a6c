//! The PostgreSQL writer: one connection of its own (outside the read
//! pool), a task that takes every job queued while the last commit ran and
//! commits them in one transaction, answering each only after the commit
//! returns (with `synchronous_commit` on, after the WAL is flushed).
//!
//! Each transaction first takes a transaction-scoped advisory lock on every
//! document and account it writes or fences on, in one global order: relays
//! on several nodes then write one document one at a time, so its envelope
//! numbers become visible in the order they were drawn, an envelope's fence
//! (the log lengths its check saw) is compared with logs no other node is
//! changing, and two nodes never deadlock on each other.
//!
//! What a transaction wrote is announced with `pg_notify` in the same
//! transaction (so only on commit), for the other nodes ([`super::listen`]).

use std::collections::BTreeMap;

use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;
use tokio::sync::mpsc;
use tokio_postgres::{Client, Statement, Transaction};

use super::listen::Announce;
use super::statements::Statements;
use crate::storage::{
    Known, MAX_GROUP, NewEnvelope, Queued, StoreError, WriteJob, WriteResult, Written, all_failed,
    drop_prev_of_disposed, repeated, snapshot_written,
};

/// The writer's connection, ready to commit.
pub(super) struct Writer {
    db: super::Db,
    client: Client,
    stmts: Statements,
    /// This node's mark on what it announces, so it ignores its own.
    node: u64,
    /// Batches that appended to a log since `log_changes` was last pruned.
    appends: u64,
}

/// Rows of `log_changes` kept: a node further behind than this reads
/// every log again (`LogChange::Lost`).
pub const KEEP_LOG_CHANGES: u64 = 100_000;

/// Log-appending batches between two prunings of `log_changes`.
const PRUNE_EVERY: u64 = 1_000;

/// Deletes all but the newest `keep` rows of `log_changes`.
pub(super) async fn prune(
    client: &impl tokio_postgres::GenericClient,
    keep: u64,
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "DELETE FROM log_changes WHERE version <= (SELECT MAX(version) FROM log_changes) - $1",
            &[&(keep as i64)],
        )
        .await?)
}

impl Writer {
    pub(super) async fn open(db: super::Db, node: u64) -> Result<Writer, StoreError> {
        let client = db.client().await?;
        let stmts = Statements::prepare(&client).await?;
        Ok(Writer {
            db,
            client,
            stmts,
            node,
            appends: 0,
        })
    }

    /// Takes jobs until every sender is gone, then returns (the queue is
    /// empty: what was sent was committed or failed).
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Queued>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            if self.client.is_closed() {
                self.reconnect().await;
            }
            let started = std::time::Instant::now();
            let results = match self.commit_batch(&batch).await {
                Ok(r) => r,
                Err(e) => {
                    crate::metrics::storage_error();
                    tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
                    all_failed(batch.iter().map(|(job, _)| job))
                }
            };
            crate::metrics::commit(batch.len(), started.elapsed());
            let appended = batch
                .iter()
                .any(|(job, _)| !matches!(job, WriteJob::Envelopes(_)));
            for ((_, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(result);
            }
            if appended {
                self.appends += 1;
                if self.appends >= PRUNE_EVERY {
                    self.appends = 0;
                    // After the replies, so nobody waits on it.
                    if let Err(e) = prune(&self.client, KEEP_LOG_CHANGES).await {
                        tracing::warn!(error = %e, "pruning log_changes");
                    }
                }
            }
        }
    }

    /// A new connection after the last one broke; on failure the next batch
    /// fails and tries again (the relay answers those uploads with an error
    /// the device retries).
    async fn reconnect(&mut self) {
        match Writer::open(self.db.clone(), self.node).await {
            Ok(w) => {
                tracing::info!("the PostgreSQL writer reconnected");
                *self = w;
            }
            Err(e) => tracing::error!(error = %e, "the PostgreSQL writer cannot reconnect"),
        }
    }

    async fn commit_batch(&mut self, batch: &[Queued]) -> Result<Vec<WriteResult>, StoreError> {
        let stmts = &self.stmts;
        // Read committed, said rather than assumed: each statement after
        // the locks sees what another node committed before it let them go
        // (what precedes a change, `Written::prev`, above all).
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await?;
        for key in lock_keys(batch.iter().map(|(job, _)| job)) {
            tx.execute(&stmts.lock, &[&key]).await?;
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut known = Known::default();
        for (job, _) in batch {
            out.push(run_job(&mut tx, stmts, &mut known, job).await?);
        }
        drop_prev_of_disposed(batch.iter().map(|(job, _)| job), &mut out);
        for a in announcements(batch.iter().map(|(job, _)| job), &out) {
            tx.execute(&stmts.notify, &[&a.payload(self.node)]).await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// What a batch changed that other nodes hold in memory: each log that
/// grew, and each document's newest envelope (one notice per document, so
/// a large batch stays a few notices).
fn announcements<'a>(
    jobs: impl Iterator<Item = &'a WriteJob>,
    results: &[WriteResult],
) -> Vec<Announce> {
    let mut out = Vec::new();
    let mut heads: BTreeMap<DocId, (u64, i64)> = BTreeMap::new();
    for (job, result) in jobs.zip(results) {
        match job {
            WriteJob::Account { .. } | WriteJob::Access { .. } | WriteJob::Dispose { .. } => {
                if result.iter().all(Result::is_ok) && !out.contains(&Announce::Logs) {
                    out.push(Announce::Logs);
                }
            }
            WriteJob::Envelopes(envs) => {
                for (e, r) in envs.iter().zip(result) {
                    if let Ok(w) = r {
                        let (head, added) = heads.entry(e.doc).or_default();
                        if e.snapshot_covers.is_none() {
                            *head = (*head).max(w.seq);
                        }
                        *added += w.added;
                    }
                }
            }
        }
    }
    out.extend(
        heads
            .into_iter()
            .map(|(doc, (seq, added))| Announce::Stored { doc, seq, added }),
    );
    out
}

/// Held by every transaction that appends to a log, so the versions of
/// `log_changes` become visible in the order they were drawn (a node that
/// read up to version N has missed nothing below it). Log appends are
/// rare next to uploads, which do not take it.
const LOG_CHANGES_LOCK: i64 = i64::MIN;

/// The advisory lock keys of what the jobs write, sorted and without
/// repeats: the first eight bytes of each document or account id (a
/// collision only makes two writers wait for each other), and
/// [`LOG_CHANGES_LOCK`] where a log grows. Every transaction takes its
/// keys in this one order, so none waits in a circle.
fn lock_keys<'a>(jobs: impl Iterator<Item = &'a WriteJob>) -> Vec<i64> {
    let key = |b: &[u8]| i64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let mut keys: Vec<i64> = jobs
        .flat_map(|job| match job {
            WriteJob::Account { account, .. } => vec![LOG_CHANGES_LOCK, key(&account.0)],
            WriteJob::Access { doc, signer, .. } | WriteJob::Dispose { doc, signer, .. } => {
                vec![LOG_CHANGES_LOCK, key(&doc.0), key(&signer.0.0)]
            }
            WriteJob::Envelopes(v) => v
                .iter()
                .flat_map(|e| [key(&e.doc.0), key(&e.fence.account.0)])
                .collect(),
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

async fn run_job(
    tx: &mut Transaction<'_>,
    stmts: &Statements,
    known: &mut Known,
    job: &WriteJob,
) -> Result<WriteResult, StoreError> {
    known.forget(job);
    match job {
        WriteJob::Account {
            account,
            first_seq,
            entries,
            devices,
        } => {
            // Every account append holds the log-changes lock, so no other
            // node lists a device between this check and the insert.
            for d in devices {
                let owner = tx.query_opt(&stmts.device_owner, &[&&d.0[..]]).await?;
                if owner.is_some_and(|r| r.get::<_, &[u8]>(0) != account.0) {
                    return Ok(vec![Err(StoreError::DeviceClaimed(*d))]);
                }
            }
            let r = append_log(tx, &stmts.append_account, &account.0, *first_seq, entries).await?;
            if r.is_ok() {
                tx.execute(&stmts.account_changed, &[&&account.0[..]])
                    .await?;
                for d in devices {
                    tx.execute(&stmts.add_device, &[&&d.0[..], &&account.0[..]])
                        .await?;
                }
            }
            Ok(vec![r])
        }
        WriteJob::Access {
            doc,
            first_seq,
            entries,
            owner,
            members,
            signer,
        } => {
            if !signer_holds(tx, stmts, known, signer).await? {
                return Ok(vec![Err(StoreError::Stale)]);
            }
            let r = append_log(tx, &stmts.append_access, &doc.0, *first_seq, entries).await?;
            if r.is_ok() {
                let d = &doc.0[..];
                tx.execute(&stmts.doc_changed, &[&d]).await?;
                tx.execute(&stmts.add_owner, &[&d, &&owner.0[..]]).await?;
                for m in members {
                    tx.execute(&stmts.add_member, &[&&m.0[..], &d]).await?;
                }
            }
            Ok(vec![r])
        }
        WriteJob::Dispose {
            doc,
            first_seq,
            entries,
            readers,
            head,
            signer,
            alone,
        } => {
            if !signer_holds(tx, stmts, known, signer).await? {
                return Ok(vec![Err(StoreError::Stale)]);
            }
            if *alone {
                let d = &doc.0[..];
                // Checked against this node's memory: another node may
                // have disposed of it, or stored it as another's, since.
                let taken = tx
                    .query_opt(
                        "SELECT 1 WHERE EXISTS (SELECT 1 FROM disposed WHERE doc = $1)
                            OR EXISTS (SELECT 1 FROM doc_owners WHERE doc = $1 AND owner <> $2)",
                        &[&d, &&signer.0.0[..]],
                    )
                    .await?;
                if taken.is_some() {
                    return Ok(vec![Err(StoreError::LogConflict)]);
                }
                tx.execute(
                    "DELETE FROM access_entries WHERE doc = $1 AND seq >= $2",
                    &[&d, &(*first_seq as i64)],
                )
                .await?;
                tx.execute(&stmts.add_owner, &[&d, &&signer.0.0[..]])
                    .await?;
                for m in readers {
                    tx.execute(&stmts.add_member, &[&&m.0[..], &d]).await?;
                }
            }
            let appended =
                append_log(tx, &stmts.append_access, &doc.0, *first_seq, entries).await?;
            if appended.is_err() {
                return Ok(vec![appended]);
            }
            let last = *first_seq + entries.len() as u64 - 1;
            tx.execute(&stmts.doc_changed, &[&&doc.0[..]]).await?;
            Ok(vec![dispose(tx, doc, last, readers, *head).await?])
        }
        WriteJob::Envelopes(envs) => insert_envelopes(tx, stmts, known, envs).await,
    }
}

/// Whether the account that signs access entries still has the log length
/// it was checked against (a revocation through another node would have
/// grown it).
async fn signer_holds(
    tx: &Transaction<'_>,
    stmts: &Statements,
    known: &mut Known,
    (account, len): &(AccountId, u64),
) -> Result<bool, StoreError> {
    Ok(account_len(tx, stmts, known, account).await? as u64 == *len)
}

/// An account log's length as this transaction holds it, read once per batch.
async fn account_len(
    tx: &Transaction<'_>,
    stmts: &Statements,
    known: &mut Known,
    account: &AccountId,
) -> Result<i64, StoreError> {
    if let Some(n) = known.account_len.get(account) {
        return Ok(*n);
    }
    let n: i64 = tx
        .query_one(&stmts.account_len, &[&&account.0[..]])
        .await?
        .get(0);
    known.account_len.insert(*account, n);
    Ok(n)
}

/// Appends log entries from `first_seq`, or nothing if any position is taken.
async fn append_log(
    tx: &mut Transaction<'_>,
    insert: &Statement,
    key: &[u8],
    first_seq: u64,
    entries: &[Signed],
) -> Result<Result<Written, StoreError>, StoreError> {
    let sp = tx.savepoint("append").await?;
    for (i, e) in entries.iter().enumerate() {
        let seq = (first_seq + i as u64) as i64;
        if sp.execute(insert, &[&key, &seq, &codec::encode(e)]).await? == 0 {
            sp.rollback().await?;
            return Ok(Err(StoreError::LogConflict));
        }
    }
    sp.commit().await?;
    Ok(Ok(Written::default()))
}

/// Deletes what a disposed document held but for its disposal entry, at
/// `last`. PostgreSQL does not overwrite deleted rows in place: what was
/// deleted stays in the table's files until vacuum reuses the space, which
/// is why the relay only ever holds ciphertext.
async fn dispose(
    tx: &mut Transaction<'_>,
    doc: &DocId,
    last: u64,
    readers: &[AccountId],
    head: u64,
) -> Result<Result<Written, StoreError>, StoreError> {
    let d = &doc.0[..];
    let freed: i64 = tx
        .query_one(
            "SELECT (COALESCE((SELECT SUM(octet_length(bytes)) FROM envelopes WHERE doc = $1), 0)
                   + COALESCE((SELECT SUM(octet_length(bytes)) FROM snapshots WHERE doc = $1), 0))::BIGINT",
            &[&d],
        )
        .await?
        .get(0);
    // The head kept is the highest number ever given in the document,
    // whatever the disposing node had heard of: it never goes back.
    let head: i64 = tx
        .query_one(
            "SELECT GREATEST($2::BIGINT,
                    COALESCE((SELECT MAX(seq) FROM envelopes WHERE doc = $1), 0),
                    COALESCE((SELECT head FROM disposed WHERE doc = $1), 0))",
            &[&d, &(head as i64)],
        )
        .await?
        .get(0);
    tx.execute("DELETE FROM envelopes WHERE doc = $1", &[&d])
        .await?;
    tx.execute("DELETE FROM snapshots WHERE doc = $1", &[&d])
        .await?;
    tx.execute(
        "DELETE FROM access_entries WHERE doc = $1 AND seq < $2",
        &[&d, &(last as i64)],
    )
    .await?;
    tx.execute(
        "INSERT INTO disposed(doc, readers, head) VALUES ($1, $2, $3)
         ON CONFLICT(doc) DO UPDATE SET readers = excluded.readers, head = excluded.head",
        &[&d, &codec::encode(&readers.to_vec()), &head],
    )
    .await?;
    Ok(Ok(Written {
        seq: head as u64,
        added: -freed,
        prev: None,
    }))
}

/// Why an envelope may not be stored, judged from the logs and disposals
/// as this transaction holds them: `None` if it may.
async fn refusal(
    tx: &Transaction<'_>,
    stmts: &Statements,
    known: &mut Known,
    e: &NewEnvelope,
) -> Result<Option<StoreError>, StoreError> {
    let doc = &e.doc.0[..];
    let access = match known.access_len.get(&e.doc) {
        Some(n) => *n,
        None => {
            let n: i64 = tx.query_one(&stmts.access_len, &[&doc]).await?.get(0);
            *known.access_len.entry(e.doc).or_insert(n)
        }
    };
    let account = account_len(tx, stmts, known, &e.fence.account).await?;
    if access as u64 != e.fence.access_len || account as u64 != e.fence.account_len {
        return Ok(Some(StoreError::Stale));
    }
    // A snapshot of a disposed document is refused with its access log.
    if e.snapshot_covers.is_some() {
        return Ok(None);
    }
    let disposed = match known.disposed.get(&e.doc) {
        Some(d) => *d,
        None => {
            let d = tx.query_opt(&stmts.is_disposed, &[&doc]).await?.is_some();
            *known.disposed.entry(e.doc).or_insert(d)
        }
    };
    Ok(disposed.then_some(StoreError::Disposed))
}

/// Stores a job's envelopes in order. Each run of plain changes goes to
/// the server as one pipeline of inserts, all sent before the first answer
/// is read (a round trip per run, not per envelope); the server runs them
/// in the order sent, so their numbers are drawn in that order. A snapshot
/// is stored alone, after the run before it.
async fn insert_envelopes(
    tx: &mut Transaction<'_>,
    stmts: &Statements,
    known: &mut Known,
    envs: &[NewEnvelope],
) -> Result<WriteResult, StoreError> {
    let mut out = Vec::with_capacity(envs.len());
    let mut rest = envs;
    while let Some(first) = rest.first() {
        if first.snapshot_covers.is_some() {
            out.push(match refusal(tx, stmts, known, first).await? {
                Some(r) => Err(r),
                None => Ok(store_snapshot(tx, stmts, first).await?),
            });
            rest = &rest[1..];
            continue;
        }
        let end = rest
            .iter()
            .position(|e| e.snapshot_covers.is_some())
            .unwrap_or(rest.len());
        let (run, after) = rest.split_at(end);
        let mut refused = Vec::with_capacity(run.len());
        for e in run {
            refused.push(refusal(tx, stmts, known, e).await?);
        }
        let shared: &Transaction<'_> = tx;
        let inserts =
            run.iter()
                .zip(&refused)
                .filter(|(_, r)| r.is_none())
                .map(|(e, _)| async move {
                    let (doc, id) = (&e.doc.0[..], &e.id.0[..]);
                    shared
                        .query_opt(&stmts.insert_envelope, &[&doc, &id, &e.bytes])
                        .await
                });
        let mut rows = futures_util::future::try_join_all(inserts)
            .await?
            .into_iter();
        for (e, r) in run.iter().zip(refused) {
            out.push(match r {
                Some(r) => Err(r),
                None => match rows.next().flatten() {
                    Some(row) => Ok(Written {
                        seq: row.get::<_, i64>(0) as u64,
                        added: e.bytes.len() as i64,
                        prev: None,
                    }),
                    // The id was stored before.
                    None => {
                        let row = tx
                            .query_one(&stmts.stored_envelope, &[&&e.doc.0[..], &&e.id.0[..]])
                            .await?;
                        repeated(row.get(0), row.get::<_, &[u8]>(1), &e.bytes)
                    }
                },
            });
        }
        rest = after;
    }
    tell_prev(tx, stmts, envs, &mut out).await?;
    Ok(out)
}

/// Fills in [`Written::prev`] for the changes stored that asked for it, in
/// one round trip, inside the transaction that stored them (which holds
/// their documents' locks, so every earlier envelope of each is visible).
async fn tell_prev(
    tx: &Transaction<'_>,
    stmts: &Statements,
    envs: &[NewEnvelope],
    out: &mut WriteResult,
) -> Result<(), StoreError> {
    let wanted: Vec<usize> = (0..envs.len())
        .filter(|&k| envs[k].wants_prev && envs[k].snapshot_covers.is_none() && out[k].is_ok())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let docs: Vec<&[u8]> = wanted.iter().map(|&k| &envs[k].doc.0[..]).collect();
    let seqs: Vec<i64> = wanted
        .iter()
        .map(|&k| out[k].as_ref().map_or(0, |w| w.seq as i64))
        .collect();
    let rows = tx.query(&stmts.seqs_before, &[&docs, &seqs]).await?;
    for (k, row) in wanted.into_iter().zip(rows) {
        if let Ok(w) = &mut out[k] {
            w.prev = Some(row.get::<_, i64>(0) as u64);
        }
    }
    Ok(())
}

/// Stores a snapshot in place of an older one and of the changes it covers.
async fn store_snapshot(
    tx: &Transaction<'_>,
    stmts: &Statements,
    e: &NewEnvelope,
) -> Result<Written, StoreError> {
    let doc = &e.doc.0[..];
    let covers = e.snapshot_covers.unwrap_or(0);
    let covers_i = covers as i64;
    let older: Option<i64> = tx
        .query_opt(&stmts.older_snapshot, &[&doc, &covers_i])
        .await?
        .map(|r| r.get(0));
    let replaced = tx
        .execute(&stmts.put_snapshot, &[&doc, &covers_i, &e.bytes])
        .await?;
    let freed: i64 = tx
        .query_one(&stmts.covered_bytes, &[&doc, &covers_i])
        .await?
        .get(0);
    // The snapshot holds every change it covers: keep their ids (so a
    // retried upload is still recognised) but not their bytes.
    tx.execute(&stmts.prune_covered, &[&doc, &covers_i]).await?;
    Ok(snapshot_written(
        covers,
        replaced == 1,
        e.bytes.len(),
        older,
        freed,
    ))
}
