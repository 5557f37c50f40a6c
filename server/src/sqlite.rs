//! The SQLite backend: WAL, `synchronous=FULL`, one writer thread with group
//! commit, and a small pool of reader connections (WAL lets them read while
//! the writer writes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use casebook_shared::codec;
use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::storage::{
    Jobs, Loaded, MAX_GROUP, NewEnvelope, Queued, Storage, StoreError, WriteJob, WriteResult,
    Written, all_failed, repeated, snapshot_written,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account_entries(
    account BLOB NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
    PRIMARY KEY(account, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_entries(
    doc BLOB NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
    PRIMARY KEY(doc, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc BLOB NOT NULL, env_id BLOB NOT NULL, bytes BLOB NOT NULL,
    UNIQUE(doc, env_id));
CREATE INDEX IF NOT EXISTS envelopes_by_doc ON envelopes(doc, seq);
CREATE TABLE IF NOT EXISTS snapshots(
    doc BLOB PRIMARY KEY, covers INTEGER NOT NULL, bytes BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disposed(
    doc BLOB PRIMARY KEY, readers BLOB NOT NULL, head INTEGER NOT NULL) WITHOUT ROWID;
";

/// A stored log: its owner's id (account or document) and its entries.
type OwnedLog = (Vec<u8>, Vec<Signed>);

/// The SQLite store.
pub struct SqliteStore {
    jobs: Jobs,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Readers>,
}

/// A small pool of reader connections, shared with the blocking threads
/// that run reads.
struct Readers {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    /// Opened to be read only (to check a backup): no writer, no pragmas.
    read_only: bool,
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Snapshots free the space of the changes they cover; incremental vacuum
    // gives it back to the disk. This must come before anything else touches
    // a new database, and does nothing to an existing one.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    // What is deleted (a disposed document above all) is overwritten in
    // the file, not only unlinked.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A large group commit grows the WAL; give the space back after it.
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = open(path)?;
        conn.execute_batch(SCHEMA)?;
        let (jobs, rx) = Jobs::new();
        let writer = std::thread::Builder::new()
            .name("casebook-relay-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Damaged(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs,
            writer: Mutex::new(Some(writer)),
            readers: Arc::new(Readers {
                path: path.to_path_buf(),
                pool: Mutex::new(Vec::new()),
                read_only: false,
            }),
        })
    }

    /// Opens a database to read only, changing nothing in it; writes are
    /// answered `Stopped`.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row("SELECT count(*) FROM envelopes", [], |_| Ok(()))
            .map_err(|e| StoreError::Damaged(format!("not a relay database: {e}")))?;
        Ok(SqliteStore {
            jobs: Jobs::closed(),
            writer: Mutex::new(None),
            readers: Arc::new(Readers {
                path: path.to_path_buf(),
                pool: Mutex::new(vec![conn]),
                read_only: true,
            }),
        })
    }

    /// Every log and document head, read now on this thread (for a backup
    /// check and a simulation, which have no runtime to wait in).
    pub fn load_now(&self) -> Result<Loaded, StoreError> {
        self.readers.load()
    }

    /// Runs a blocking read of the pool on tokio's blocking threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Readers) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || f(&readers))
            .await
            .unwrap_or(Err(StoreError::Stopped))
    }

    /// Whether the writer thread is alive and takes jobs.
    fn writing(&self) -> bool {
        self.jobs.is_open()
            && self
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|w| !w.is_finished())
    }

    /// Stops taking jobs, lets the writer commit what is queued, and waits for it.
    pub fn close(&self) {
        self.jobs.close();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Readers {
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None if self.read_only => {
                Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?
            }
            None => open(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let results = commit_batch(&mut conn, &batch);
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
        let mut tx = conn.transaction()?;
        let mut out = Vec::with_capacity(batch.len());
        for (job, _) in batch {
            out.push(run_job(&mut tx, job)?);
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
    job: &WriteJob,
) -> Result<WriteResult, rusqlite::Error> {
    match job {
        WriteJob::Account {
            account,
            first_seq,
            entries,
        } => Ok(vec![append_log(
            tx,
            "account_entries",
            "account",
            &account.0,
            *first_seq,
            entries,
        )?]),
        WriteJob::Access {
            doc,
            first_seq,
            entries,
        } => Ok(vec![append_log(
            tx,
            "access_entries",
            "doc",
            &doc.0,
            *first_seq,
            entries,
        )?]),
        WriteJob::Dispose {
            doc,
            first_seq,
            entries,
            readers,
            head,
        } => {
            let appended = append_log(tx, "access_entries", "doc", &doc.0, *first_seq, entries)?;
            if appended.is_err() {
                return Ok(vec![appended]);
            }
            let last = *first_seq + entries.len() as u64 - 1;
            Ok(vec![dispose(tx, doc, last, readers, *head)?])
        }
        WriteJob::Envelopes(envs) => {
            let mut out = Vec::with_capacity(envs.len());
            for e in envs {
                out.push(insert_envelope(tx, e)?);
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
    tx.execute("DELETE FROM envelopes WHERE doc = ?1", [d])?;
    tx.execute("DELETE FROM snapshots WHERE doc = ?1", [d])?;
    tx.execute(
        "DELETE FROM access_entries WHERE doc = ?1 AND seq < ?2",
        params![d, last as i64],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO disposed(doc, readers, head) VALUES (?1, ?2, ?3)",
        params![d, codec::encode(&readers.to_vec()), head as i64],
    )?;
    Ok(Ok(Written {
        seq: 0,
        added: -freed,
    }))
}

fn insert_envelope(
    tx: &mut rusqlite::Transaction<'_>,
    e: &NewEnvelope,
) -> Result<Result<Written, StoreError>, rusqlite::Error> {
    let doc = &e.doc.0[..];
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
    let disposed: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM disposed WHERE doc = ?1")?
        .query_row([doc], |r| r.get(0))
        .optional()?;
    if disposed.is_some() {
        return Ok(Err(StoreError::Disposed));
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO envelopes(doc, env_id, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT(doc, env_id) DO NOTHING",
        )?
        .execute(params![doc, &e.id.0[..], &e.bytes])?;
    if inserted == 1 {
        return Ok(Ok(Written {
            seq: tx.last_insert_rowid() as u64,
            added: e.bytes.len() as i64,
        }));
    }
    let (seq, bytes): (i64, Vec<u8>) = tx
        .prepare_cached("SELECT seq, bytes FROM envelopes WHERE doc = ?1 AND env_id = ?2")?
        .query_row(params![doc, &e.id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(repeated(seq, &bytes, &e.bytes))
}

fn blob<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Damaged("an id column has the wrong length".into()))
}

fn load_logs(conn: &Connection, table: &str, key_col: &str) -> Result<Vec<OwnedLog>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {key_col}, seq, entry FROM {table} ORDER BY {key_col}, seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out: Vec<(Vec<u8>, Vec<Signed>)> = Vec::new();
    while let Some(r) = rows.next()? {
        let key: Vec<u8> = r.get(0)?;
        let entry: Vec<u8> = r.get(2)?;
        let signed: Signed =
            codec::decode(&entry).map_err(|e| StoreError::Damaged(format!("{table}: {e}")))?;
        match out.last_mut() {
            Some((k, v)) if *k == key => v.push(signed),
            _ => out.push((key, vec![signed])),
        }
    }
    Ok(out)
}

impl Readers {
    fn load(&self) -> Result<Loaded, StoreError> {
        self.with_reader(|conn| {
            let mut loaded = Loaded::default();
            for (k, v) in load_logs(conn, "account_entries", "account")? {
                loaded.accounts.push((AccountId(blob(k)?), v));
            }
            for (k, v) in load_logs(conn, "access_entries", "doc")? {
                loaded.docs.push((DocId(blob(k)?), v));
            }
            let mut stmt = conn.prepare("SELECT doc, MAX(seq) FROM envelopes GROUP BY doc")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(1)?;
                loaded.heads.push((DocId(blob(r.get(0)?)?), seq as u64));
            }
            let mut stmt = conn.prepare(
                "SELECT doc, SUM(n) FROM (
                     SELECT doc, length(bytes) AS n FROM envelopes
                     UNION ALL SELECT doc, length(bytes) FROM snapshots)
                 GROUP BY doc",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let n: i64 = r.get(1)?;
                loaded.doc_bytes.push((DocId(blob(r.get(0)?)?), n as u64));
            }
            // Numbers handed out only rise, even past envelopes since
            // deleted with a disposed document (AUTOINCREMENT keeps the
            // highest in sqlite_sequence).
            loaded.cursor = conn
                .query_row(
                    "SELECT MAX(n) FROM (SELECT MAX(seq) AS n FROM envelopes
                     UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'envelopes')",
                    [],
                    |r| r.get::<_, Option<i64>>(0),
                )?
                .unwrap_or(0) as u64;
            // A database from before disposals (a backup being checked,
            // opened read-only without the schema) has no such table.
            let has_disposed: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'disposed')",
                [],
                |r| r.get(0),
            )?;
            if has_disposed {
                let mut stmt = conn.prepare("SELECT doc, readers, head FROM disposed")?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let doc = DocId(blob(r.get(0)?)?);
                    let readers: Vec<AccountId> = codec::decode(&r.get::<_, Vec<u8>>(1)?)
                        .map_err(|e| StoreError::Damaged(format!("disposed: {e}")))?;
                    loaded.heads.push((doc, r.get::<_, i64>(2)? as u64));
                    loaded.disposed.push((doc, readers));
                }
            }
            Ok(loaded)
        })
    }

    fn fetch(
        &self,
        docs: &[(DocId, u64)],
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        self.with_reader(|conn| {
            let mut items = Vec::new();
            let mut size = 0usize;
            for (doc, since) in docs {
                let mut since = *since;
                {
                    let snap: Option<(i64, Vec<u8>)> = conn
                        .prepare_cached("SELECT covers, bytes FROM snapshots WHERE doc = ?1")?
                        .query_row([&doc.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    if let Some((covers, bytes)) = snap.filter(|(c, _)| *c as u64 > since) {
                        if size > 0 && size + bytes.len() > max_bytes {
                            return Ok((items, true));
                        }
                        size += bytes.len();
                        since = covers as u64;
                        items.push(Stored {
                            doc: *doc,
                            seq: since,
                            envelope: bytes,
                        });
                    }
                }
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, bytes FROM envelopes WHERE doc = ?1 AND seq > ?2 AND length(bytes) > 0 ORDER BY seq",
                )?;
                let mut rows = stmt.query(params![&doc.0[..], since as i64])?;
                while let Some(r) = rows.next()? {
                    let bytes: Vec<u8> = r.get(1)?;
                    if size > 0 && size + bytes.len() > max_bytes {
                        return Ok((items, true));
                    }
                    size += bytes.len();
                    items.push(Stored {
                        doc: *doc,
                        seq: r.get::<_, i64>(0)? as u64,
                        envelope: bytes,
                    });
                }
            }
            Ok((items, false))
        })
    }
}

impl Storage for SqliteStore {
    async fn load(&self) -> Result<Loaded, StoreError> {
        self.read(|r| r.load()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writing() {
            return Err(StoreError::Stopped);
        }
        self.read(|r| {
            r.with_reader(|conn| {
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                Ok(())
            })
        })
        .await
    }

    fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult> {
        self.jobs.submit(job)
    }

    async fn fetch(
        &self,
        docs: Vec<(DocId, u64)>,
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        self.read(move |r| r.fetch(&docs, max_bytes)).await
    }

    async fn close(&self) {
        // The writer thread is joined on a blocking thread, not the runtime's.
        self.jobs.close();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(w) = writer {
                let _ = w.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_whose_writer_stopped_is_not_ready() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("relay.db")).unwrap();
        store.ping().await.expect("ready");
        Storage::close(&store).await;
        assert!(matches!(store.ping().await, Err(StoreError::Stopped)));
    }
}
