//! The SQLite backend: WAL, `synchronous=FULL`, one writer thread with group
//! commit ([`write`]), and a small pool of reader connections ([`read`];
//! WAL lets them read while the writer writes).

mod read;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex};

use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::mailbox::{MailboxError, Mailboxes};
use crate::storage::{
    DocRecord, Jobs, Loaded, LogChange, Storage, StoreError, StoreEvent, WriteJob, WriteResult,
};
use read::Readers;

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
CREATE TABLE IF NOT EXISTS devices(
    device BLOB PRIMARY KEY, account BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS doc_owners(
    doc BLOB PRIMARY KEY, owner BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_owners_by_owner ON doc_owners(owner);
CREATE TABLE IF NOT EXISTS doc_members(
    account BLOB NOT NULL, doc BLOB NOT NULL, PRIMARY KEY(account, doc)) WITHOUT ROWID;
";

/// The layout version in `PRAGMA user_version`: 1 added the device index,
/// 2 the documents' owners and members.
const LAYOUT: i64 = 2;

/// The SQLite store.
pub struct SqliteStore {
    jobs: Jobs,
    /// Pairing mailboxes: one process, so memory.
    mailboxes: Mailboxes,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Readers>,
}

pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
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

/// A connection that only reads, beside the writer's. It sets none of
/// [`open`]'s pragmas: the database already has them, and setting
/// `auto_vacuum` takes a write transaction, which made a group commit
/// in flight fail with "database is locked" when a reader was opened
/// under load.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Makes the tables, and brings a database of an older layout up to
/// [`LAYOUT`]: a database from before the device index gets it from its
/// account logs, verified again.
fn upgrade(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let layout: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if layout > LAYOUT {
        return Err(StoreError::Schema(format!(
            "the database's layout is version {layout}, newer than this relay knows ({LAYOUT}): run a relay as new as the one that wrote it"
        )));
    }
    let existed: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'account_entries'",
        [],
        |r| r.get(0),
    )?;
    conn.execute_batch(SCHEMA)?;
    if layout < LAYOUT && existed > 0 {
        let readers = Readers {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
            read_only: false,
        };
        let index = crate::storage::Index::of(readers.load()?)?;
        let tx = conn.unchecked_transaction()?;
        {
            let mut ins =
                tx.prepare("INSERT OR IGNORE INTO devices(device, account) VALUES (?1, ?2)")?;
            for (d, a) in &index.devices {
                ins.execute(rusqlite::params![&d.0[..], &a.0[..]])?;
            }
        }
        for (doc, owner, members) in &index.docs {
            write::index_doc(&tx, doc, owner, members)?;
        }
        tx.commit()?;
        tracing::info!(
            devices = index.devices.len(),
            docs = index.docs.len(),
            "indexed the devices, owners and members of every stored log"
        );
    }
    conn.pragma_update(None, "user_version", LAYOUT)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (or creates) the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = open(path)?;
        upgrade(&conn, path)?;
        // See `numbering::sequence_floor`.
        conn.execute(
            "INSERT INTO sqlite_sequence(name, seq) SELECT 'envelopes', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'envelopes')",
            [],
        )?;
        conn.execute(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'envelopes'",
            [crate::numbering::sequence_floor() as i64],
        )?;
        let (jobs, rx) = Jobs::new();
        let writer = std::thread::Builder::new()
            .name("casebook-relay-writer".into())
            .spawn(move || write::writer_loop(conn, rx))
            .map_err(|e| StoreError::Damaged(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs,
            mailboxes: Mailboxes::default(),
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
            mailboxes: Mailboxes::default(),
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

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
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

    async fn account_log(&self, account: AccountId) -> Result<Vec<Signed>, StoreError> {
        self.read(move |r| r.account_log(&account)).await
    }

    async fn doc_record(&self, doc: DocId) -> Result<Option<DocRecord>, StoreError> {
        self.read(move |r| r.doc_record(&doc)).await
    }

    /// One process writes a SQLite file: there are no other nodes.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }

    fn is_shared(&self) -> bool {
        false
    }

    async fn log_version(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn mailbox_put(
        &self,
        mailbox: [u8; 16],
        slot: u8,
        msg: Vec<u8>,
    ) -> Result<(), MailboxError> {
        self.mailboxes.put(mailbox, slot, msg)
    }

    async fn mailbox_take(
        &self,
        mailbox: [u8; 16],
        slot: u8,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.mailboxes.try_take(mailbox, slot))
    }

    fn mailbox_changed(&self) -> &tokio::sync::Notify {
        self.mailboxes.changed()
    }

    async fn log_changes(&self, version: u64) -> Result<(Vec<LogChange>, u64), StoreError> {
        Ok((Vec::new(), version))
    }

    async fn heads(&self, docs: Vec<DocId>) -> Result<Vec<(DocId, u64)>, StoreError> {
        self.read(move |r| {
            r.with_reader(|conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT MAX(seq) FROM envelopes WHERE doc = ?1")?;
                let mut out = Vec::with_capacity(docs.len());
                for d in docs {
                    let head: Option<i64> = stmt.query_row([&d.0[..]], |r| r.get(0))?;
                    out.extend(head.map(|h| (d, h as u64)));
                }
                Ok(out)
            })
        })
        .await
    }

    async fn device_account(&self, device: DeviceId) -> Result<Option<AccountId>, StoreError> {
        self.read(move |r| r.device_account(&device)).await
    }

    async fn member_docs(&self, account: AccountId) -> Result<Vec<DocId>, StoreError> {
        self.read(move |r| r.member_docs(&account)).await
    }

    async fn owner_usage(&self, owner: AccountId) -> Result<u64, StoreError> {
        self.read(move |r| r.owner_usage(&owner)).await
    }

    async fn cursor(&self) -> Result<u64, StoreError> {
        self.read(|r| r.with_reader(read::cursor)).await
    }

    async fn stored_bytes(&self) -> Result<u64, StoreError> {
        self.read(|r| {
            r.with_reader(|conn| {
                let n: i64 = conn.query_row(
                    "SELECT COALESCE((SELECT SUM(length(bytes)) FROM envelopes), 0)
                          + COALESCE((SELECT SUM(length(bytes)) FROM snapshots), 0)",
                    [],
                    |r| r.get(0),
                )?;
                Ok(n as u64)
            })
        })
        .await
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

    /// A reader opened while a write transaction holds the database reads
    /// and writes nothing. It used to set `auto_vacuum`, a write: here it
    /// waited out the busy timeout and failed; under load it failed the
    /// writer's group commit instead.
    #[tokio::test]
    async fn a_reader_opened_during_a_write_takes_no_write_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("relay.db");
        let store = SqliteStore::open(&path).unwrap();
        let other = open(&path).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let readers = Readers {
            path: path.clone(),
            pool: Mutex::new(Vec::new()),
            read_only: false,
        };
        let n = readers
            .with_reader(|c| {
                Ok(c.query_row("SELECT count(*) FROM envelopes", [], |r| r.get::<_, i64>(0))?)
            })
            .expect("a reader beside a writer");
        assert_eq!(n, 0);
        other.execute_batch("COMMIT").unwrap();
        Storage::close(&store).await;
    }

    /// A store opened again (after a restart, or a restore from an older
    /// copy) hands out numbers above any it handed out before, even where
    /// the copy's own counter is lower.
    #[tokio::test]
    async fn numbers_handed_out_only_rise_across_a_restore() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("relay.db");
        let counter = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let before = crate::numbering::sequence_floor() as i64;
        let store = SqliteStore::open(&path).unwrap();
        Storage::close(&store).await;
        let c = open(&path).unwrap();
        let first = counter(&c);
        assert!(first >= before, "{first} < {before}");
        // An older copy's counter, far below what was handed out.
        c.execute(
            "UPDATE sqlite_sequence SET seq = 7 WHERE name = 'envelopes'",
            [],
        )
        .unwrap();
        drop(c);
        let store = SqliteStore::open(&path).unwrap();
        Storage::close(&store).await;
        assert!(counter(&open(&path).unwrap()) >= first);
    }
}
