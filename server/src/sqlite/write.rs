//! The SQLite writer: one thread that commits whatever queued up while the
//! last commit ran in one transaction, and answers each job only after it.

use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use crate::storage::{
    Fence, Known, MAX_GROUP, NewEnvelope, Queued, StoreError, WriteJob, WriteResult, Written,
    all_failed, drop_prev_of_disposed, repeated, snapshot_written,
};

pub(super) fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let mut results = commit_batch(&mut conn, &batch);
        drop_prev_of_disposed(batch.iter().map(|(j, _)| j), &mut results);
        crate::metrics::commit(batch.len(), started.elapsed());
        let pruned = batch.iter().any(|(j, _)| {
            matches!(j, WriteJob::Envelopes(v) if v.iter().any(|e| e.snapshot_covers.is_some()))
        });
        let disposed = batch
            .iter()
            .any(|(j, _)| matches!(j, WriteJob::Dispose { .. }));
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        if pruned || disposed {
            // After the replies, so nobody waits on it; it frees what was just pruned.
            if let Err(e) = incremental_vacuum(&conn) {
                tracing::warn!(error = %e, "incremental vacuum");
            }
        }
        if disposed {
            // A disposed document's pages are zeroed in the database
            // (secure_delete); their earlier versions may still sit in the
            // write-ahead log until it is checkpointed and emptied.
            if let Err(e) = checkpoint(&conn) {
                tracing::warn!(error = %e, "checkpoint after a disposal");
            }
        }
    }
}

/// Checkpoints the WAL into the database and empties it, waiting a little
/// for readers that hold an older snapshot (the pragma says "busy" then).
fn checkpoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    for _ in 0..50 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tracing::warn!("the write-ahead log stayed busy; it is emptied at a later checkpoint");
    Ok(())
}

/// Frees the pages of pruned changes. The pragma frees one page per step,
/// so it is stepped to the end.
fn incremental_vacuum(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Runs every job of a batch in one transaction, each inside a savepoint so a
/// refused job does not undo the others. If the commit fails, every job fails.
fn commit_batch(conn: &mut Connection, batch: &[Queued]) -> Vec<WriteResult> {
    let mut attempt = || -> Result<Vec<WriteResult>, rusqlite::Error> {
        // The write lock is taken first: a transaction that read before it
        // asked to write would fail at once, busy timeout or not, if
        // anything else had written in between.
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(batch.len());
        let mut known = Known::default();
        for (job, _) in batch {
            out.push(run_job(&mut tx, &mut known, job)?);
        }
        tx.commit()?;
        Ok(out)
    };
    match attempt() {
        Ok(r) => r,
        Err(e) => {
            crate::metrics::storage_error();
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
            all_failed(batch.iter().map(|(job, _)| job))
        }
    }
}

fn run_job(
    tx: &mut rusqlite::Transaction<'_>,
    known: &mut Known,
    job: &WriteJob,
) -> Result<WriteResult, rusqlite::Error> {
    known.forget(job);
    match job {
        WriteJob::Account {
            account,
            first_seq,
            entries,
            devices,
        } => {
            if let Some(d) = claimed(tx, account, devices)? {
                return Ok(vec![Err(StoreError::DeviceClaimed(d))]);
            }
            let r = append_log(
                tx,
                "account_entries",
                "account",
                &account.0,
                *first_seq,
                entries,
            )?;
            if r.is_ok() {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO devices(device, account) VALUES (?1, ?2)",
                )?;
                for d in devices {
                    ins.execute(params![&d.0[..], &account.0[..]])?;
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
            if !signer_holds(tx, known, signer)? {
                return Ok(vec![Err(StoreError::Stale)]);
            }
            let r = append_log(tx, "access_entries", "doc", &doc.0, *first_seq, entries)?;
            if r.is_ok() {
                index_doc(tx, doc, owner, members)?;
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
            if !signer_holds(tx, known, signer)? {
                return Ok(vec![Err(StoreError::Stale)]);
            }
            if *alone {
                // Checked against the relay's memory; another writer
                // (none over SQLite today) would have moved it on.
                if !disposable_alone(tx, doc, &signer.0)? {
                    return Ok(vec![Err(StoreError::LogConflict)]);
                }
                tx.execute(
                    "DELETE FROM access_entries WHERE doc = ?1 AND seq >= ?2",
                    params![&doc.0[..], *first_seq as i64],
                )?;
                index_doc(tx, doc, &signer.0, readers)?;
            }
            let appended = append_log(tx, "access_entries", "doc", &doc.0, *first_seq, entries)?;
            if appended.is_err() {
                return Ok(vec![appended]);
            }
            let last = *first_seq + entries.len() as u64 - 1;
            Ok(vec![dispose(tx, doc, last, readers, *head)?])
        }
        WriteJob::Envelopes(envs) => {
            let mut out = Vec::with_capacity(envs.len());
            for e in envs.iter() {
                out.push(insert_envelope(tx, known, e)?);
            }
            Ok(out)
        }
    }
}

fn append_log(
    tx: &mut rusqlite::Transaction<'_>,
    table: &str,
    key_col: &str,
    key: &[u8],
    first_seq: u64,
    entries: &[Signed],
) -> Result<Result<Written, StoreError>, rusqlite::Error> {
    let sp = tx.savepoint()?;
    {
        let mut stmt = sp.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {table}({key_col}, seq, entry) VALUES (?1, ?2, ?3)"
        ))?;
        for (i, e) in entries.iter().enumerate() {
            if stmt.execute(params![
                key,
                (first_seq + i as u64) as i64,
                codec::encode(e)
            ])? == 0
            {
                drop(stmt);
                sp.finish()?; // savepoint dropped without commit rolls back
                return Ok(Err(StoreError::LogConflict));
            }
        }
    }
    sp.commit()?;
    Ok(Ok(Written::default()))
}

/// Deletes what a disposed document held (secure_delete zeroes it in the
/// file) but for its disposal entry, at `last`.
fn dispose(
    tx: &mut rusqlite::Transaction<'_>,
    doc: &DocId,
    last: u64,
    readers: &[AccountId],
    head: u64,
) -> Result<Result<Written, StoreError>, rusqlite::Error> {
    let d = &doc.0[..];
    let freed: i64 = tx.query_row(
        "SELECT COALESCE((SELECT SUM(length(bytes)) FROM envelopes WHERE doc = ?1), 0)
              + COALESCE((SELECT SUM(length(bytes)) FROM snapshots WHERE doc = ?1), 0)",
        [d],
        |r| r.get(0),
    )?;
    // The head kept is the highest number ever given in the document: it
    // never goes back.
    let head: i64 = tx.query_row(
        "SELECT MAX(?2, COALESCE((SELECT MAX(seq) FROM envelopes WHERE doc = ?1), 0),
                        COALESCE((SELECT head FROM disposed WHERE doc = ?1), 0))",
        params![d, head as i64],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM envelopes WHERE doc = ?1", [d])?;
    tx.execute("DELETE FROM snapshots WHERE doc = ?1", [d])?;
    tx.execute(
        "DELETE FROM access_entries WHERE doc = ?1 AND seq < ?2",
        params![d, last as i64],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO disposed(doc, readers, head) VALUES (?1, ?2, ?3)",
        params![d, codec::encode(&readers.to_vec()), head],
    )?;
    Ok(Ok(Written {
        seq: head as u64,
        added: -freed,
        prev: None,
    }))
}

/// Whether a disposal given back alone may replace what is stored of
/// `doc`: nothing disposed of it yet, and no other owner.
fn disposable_alone(
    tx: &rusqlite::Transaction<'_>,
    doc: &DocId,
    owner: &AccountId,
) -> rusqlite::Result<bool> {
    let d = &doc.0[..];
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT owner FROM doc_owners WHERE doc = ?1")?
        .query_row([d], |r| r.get(0))
        .optional()?;
    let disposed = tx
        .prepare_cached("SELECT 1 FROM disposed WHERE doc = ?1")?
        .exists([d])?;
    Ok(!disposed && stored.is_none_or(|o| o == owner.0))
}

/// Records a document's owner and the accounts its log names.
pub(super) fn index_doc(
    tx: &rusqlite::Transaction<'_>,
    doc: &DocId,
    owner: &AccountId,
    members: &[AccountId],
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO doc_owners(doc, owner) VALUES (?1, ?2)")?
        .execute(params![&doc.0[..], &owner.0[..]])?;
    let mut ins =
        tx.prepare_cached("INSERT OR IGNORE INTO doc_members(account, doc) VALUES (?1, ?2)")?;
    for m in members {
        ins.execute(params![&m.0[..], &doc.0[..]])?;
    }
    Ok(())
}

/// The first of `devices` that another account's log lists.
fn claimed(
    tx: &rusqlite::Transaction<'_>,
    account: &AccountId,
    devices: &[DeviceId],
) -> rusqlite::Result<Option<DeviceId>> {
    let mut stmt = tx.prepare_cached("SELECT account FROM devices WHERE device = ?1")?;
    for d in devices {
        let owner: Option<Vec<u8>> = stmt.query_row([&d.0[..]], |r| r.get(0)).optional()?;
        if owner.is_some_and(|o| o != account.0) {
            return Ok(Some(*d));
        }
    }
    Ok(None)
}

/// Whether the account that signs access entries still has the log length
/// it was checked against.
fn signer_holds(
    tx: &rusqlite::Transaction<'_>,
    known: &mut Known,
    (account, len): &(AccountId, u64),
) -> rusqlite::Result<bool> {
    Ok(account_len(tx, known, account)? as u64 == *len)
}

/// An account log's length as this transaction holds it, read once per batch.
fn account_len(
    tx: &rusqlite::Transaction<'_>,
    known: &mut Known,
    account: &AccountId,
) -> rusqlite::Result<i64> {
    if let Some(n) = known.account_len.get(account) {
        return Ok(*n);
    }
    let n: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM account_entries WHERE account = ?1")?
        .query_row([&account.0[..]], |r| r.get(0))?;
    known.account_len.insert(*account, n);
    Ok(n)
}

/// Whether the logs an envelope was checked against are as long as its
/// fence says (one node never fails this; it is the same check as
/// PostgreSQL's, where several nodes write).
fn fence_holds(
    tx: &rusqlite::Transaction<'_>,
    known: &mut Known,
    e: &NewEnvelope,
) -> rusqlite::Result<bool> {
    let f: &Fence = &e.fence;
    let access = match known.access_len.get(&e.doc) {
        Some(n) => *n,
        None => {
            let n: i64 = tx
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM access_entries WHERE doc = ?1",
                )?
                .query_row([&e.doc.0[..]], |r| r.get(0))?;
            *known.access_len.entry(e.doc).or_insert(n)
        }
    };
    let account = account_len(tx, known, &f.account)?;
    Ok(access as u64 == f.access_len && account as u64 == f.account_len)
}

fn insert_envelope(
    tx: &mut rusqlite::Transaction<'_>,
    known: &mut Known,
    e: &NewEnvelope,
) -> Result<Result<Written, StoreError>, rusqlite::Error> {
    let doc = &e.doc.0[..];
    if !fence_holds(tx, known, e)? {
        return Ok(Err(StoreError::Stale));
    }
    if let Some(covers) = e.snapshot_covers {
        let older: Option<i64> = tx
            .prepare_cached("SELECT length(bytes) FROM snapshots WHERE doc = ?1 AND covers < ?2")?
            .query_row(params![doc, covers as i64], |r| r.get(0))
            .optional()?;
        let replaced = tx
            .prepare_cached(
                "INSERT INTO snapshots(doc, covers, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT(doc) DO UPDATE SET covers = excluded.covers, bytes = excluded.bytes
                 WHERE excluded.covers > snapshots.covers",
            )?
            .execute(params![doc, covers as i64, &e.bytes])?;
        let freed: i64 = tx
            .prepare_cached(
                "SELECT COALESCE(SUM(length(bytes)), 0) FROM envelopes
                 WHERE doc = ?1 AND seq <= ?2 AND length(bytes) > 0",
            )?
            .query_row(params![doc, covers as i64], |r| r.get(0))?;
        // The snapshot holds every change it covers: keep their ids (so a
        // retried upload is still recognised) but not their bytes.
        tx.prepare_cached(
            "UPDATE envelopes SET bytes = x'' WHERE doc = ?1 AND seq <= ?2 AND length(bytes) > 0",
        )?
        .execute(params![doc, covers as i64])?;
        return Ok(Ok(snapshot_written(
            covers,
            replaced == 1,
            e.bytes.len(),
            older,
            freed,
        )));
    }
    let disposed = match known.disposed.get(&e.doc) {
        Some(d) => *d,
        None => {
            let d = tx
                .prepare_cached("SELECT 1 FROM disposed WHERE doc = ?1")?
                .query_row([doc], |r| r.get::<_, i64>(0))
                .optional()?
                .is_some();
            *known.disposed.entry(e.doc).or_insert(d)
        }
    };
    if disposed {
        return Ok(Err(StoreError::Disposed));
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO envelopes(doc, env_id, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT(doc, env_id) DO NOTHING",
        )?
        .execute(params![doc, &e.id.0[..], &e.bytes])?;
    let mut written = if inserted == 1 {
        Written {
            seq: tx.last_insert_rowid() as u64,
            added: e.bytes.len() as i64,
            prev: None,
        }
    } else {
        let (seq, bytes): (i64, Vec<u8>) = tx
            .prepare_cached("SELECT seq, bytes FROM envelopes WHERE doc = ?1 AND env_id = ?2")?
            .query_row(params![doc, &e.id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        match repeated(seq, &bytes, &e.bytes) {
            Ok(w) => w,
            Err(r) => return Ok(Err(r)),
        }
    };
    if e.wants_prev {
        let prev: i64 = tx
            .prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) FROM envelopes WHERE doc = ?1 AND seq < ?2",
            )?
            .query_row(params![doc, written.seq as i64], |r| r.get(0))?;
        written.prev = Some(prev as u64);
    }
    Ok(Ok(written))
}
