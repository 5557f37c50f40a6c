//! Online backup and restore of a SQLite relay: one file holding the
//! database and the relay's TLS identity, so that a restored relay has the
//! fingerprint its clients pinned.
//!
//! The copy is taken with SQLite's backup API in a single step, which
//! reads one consistent snapshot of the database while the relay goes on
//! writing (WAL lets a reader and the writer run side by side); a copy
//! made page by page in several steps would start over each time the
//! relay commits, and under load might never finish. Both commands check
//! what they wrote by rebuilding the relay's verified state from it.
//!
//! A PostgreSQL relay is backed up with PostgreSQL's own tools (`pg_dump`,
//! or base backups with WAL archiving for point-in-time recovery).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::data_dir::{self, DataDir, DataDirError};
use crate::sqlite::SqliteStore;
use crate::state::State;
use crate::storage::StoreError;

const CERT: &str = "relay-cert.der";
const KEY: &str = "relay-key.der";

/// A backup or restore failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("no relay database in {0}: is this the relay's --data folder?")]
    NoDatabase(String),
    #[error("{0} already exists; give a new file name (a backup never overwrites)")]
    Exists(String),
    #[error(
        "{0} already holds a relay; restore into an empty or absent folder (move the old one aside first)"
    )]
    NotEmpty(String),
    #[error("the database stayed busy for 5 s; try again")]
    Busy,
    #[error("{0} is not a casebook relay backup")]
    NotABackup(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the copy does not verify: {0}")]
    Verify(#[from] StoreError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

/// What a backup or restore holds, for the operator to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub accounts: usize,
    pub documents: usize,
    /// Highest envelope sequence number.
    pub cursor: u64,
    pub stored_bytes: u64,
    /// Whether the TLS certificate and key are in it.
    pub identity: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} accounts, {} documents, envelopes up to {}, {} bytes stored; certificate and key {}",
            self.accounts,
            self.documents,
            self.cursor,
            self.stored_bytes,
            if self.identity {
                "included"
            } else {
                "NOT included (the relay uses --cert/--key files: keep those yourself)"
            }
        )
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Copies the relay in `data` (running or not) into the new file `to`.
pub fn backup(data: &Path, to: &Path) -> Result<Summary, BackupError> {
    let db = data.join(data_dir::DB_FILE);
    if std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(BackupError::NoDatabase(data.display().to_string()));
    }
    // Made 0600 first, as a new file: it holds the relay's private key.
    if let Err(e) = data_dir::new_private_file(to) {
        return Err(match to.exists() {
            true => BackupError::Exists(to.display().to_string()),
            false => e.into(),
        });
    }
    let result = (|| {
        let src = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        src.busy_timeout(std::time::Duration::from_secs(30))?;
        let mut dst = Connection::open(to)?;
        copy_all(&src, &mut dst)?;
        // One self-contained file, not a WAL database.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        dst.execute_batch(
            "CREATE TABLE relay_identity(name TEXT PRIMARY KEY, bytes BLOB NOT NULL);",
        )?;
        for name in [CERT, KEY] {
            let p = data.join(name);
            if p.exists() {
                let bytes = std::fs::read(&p).map_err(io(&p))?;
                dst.execute(
                    "INSERT INTO relay_identity(name, bytes) VALUES (?1, ?2)",
                    rusqlite::params![name, bytes],
                )?;
            }
        }
        drop(dst);
        verify(to)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(to);
    }
    result
}

/// Puts a backup into `data`, which must be empty or absent, with the
/// certificate and key it holds.
pub fn restore(from: &Path, data: &Path) -> Result<Summary, BackupError> {
    let not_a_backup = || BackupError::NotABackup(from.display().to_string());
    if !from.is_file() {
        return Err(BackupError::Io {
            path: from.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|_| not_a_backup())?;
    let identity: Vec<(String, Vec<u8>)> = src
        .prepare("SELECT name, bytes FROM relay_identity")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(|_| not_a_backup())?;
    let made = !data.exists();
    // Locked for the restore, so no relay starts on it half-written; a
    // running relay holds the lock, so that is refused here too.
    let dir = DataDir::lock_with_db(data)?;
    let holds_a_relay = std::fs::read_dir(data)
        .map_err(io(data))?
        .filter_map(Result::ok)
        .any(|e| {
            let name = e.file_name();
            name != data_dir::LOCK_FILE
                && !(name == data_dir::DB_FILE && e.metadata().is_ok_and(|m| m.len() == 0))
        });
    if holds_a_relay {
        return Err(BackupError::NotEmpty(data.display().to_string()));
    }
    let result = (|| {
        {
            let mut dst = Connection::open(dir.db())?;
            copy_all(&src, &mut dst)?;
            // secure_delete: the key's bytes are overwritten, not left in
            // free pages of the database.
            dst.execute_batch("PRAGMA secure_delete = ON; DROP TABLE relay_identity;")?;
            dst.pragma_update(None, "journal_mode", "WAL")?;
        }
        for (name, bytes) in &identity {
            if name == CERT || name == KEY {
                let p = data.join(name);
                let mut f = data_dir::private_file(&p)?;
                std::io::Write::write_all(&mut f, bytes).map_err(io(&p))?;
                f.sync_all().map_err(io(&p))?;
            }
        }
        let mut s = verify(&dir.db())?;
        s.identity = data.join(CERT).exists() && data.join(KEY).exists();
        Ok(s)
    })();
    if result.is_err() {
        // Back to how it was, so the restore can be tried again.
        drop(dir);
        for name in data_dir::RELAY_FILES {
            let _ = std::fs::remove_file(data.join(name));
        }
        if made {
            let _ = std::fs::remove_dir(data);
        }
    }
    result
}

/// Copies every page in one step, so from one read snapshot of the source
/// (a copy in several steps starts over whenever the relay commits). A
/// source busy with a checkpoint is waited for a little.
fn copy_all(src: &Connection, dst: &mut Connection) -> Result<(), BackupError> {
    use rusqlite::backup::{Backup, StepResult};
    let copy = Backup::new(src, dst)?;
    for _ in 0..100 {
        match copy.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            _ => {}
        }
    }
    Err(BackupError::Busy)
}

/// Rebuilds the relay's verified state from a database file: every log's
/// signatures checked again, as a relay does when it starts.
fn verify(db: &Path) -> Result<Summary, BackupError> {
    let identity = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'relay_identity'",
        [],
        |r| r.get::<_, i64>(0),
    )? == 1;
    let has_key = identity
        && Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?.query_row(
            "SELECT count(*) FROM relay_identity WHERE name IN (?1, ?2)",
            [CERT, KEY],
            |r| r.get::<_, i64>(0),
        )? == 2;
    let store = SqliteStore::open_read_only(db)?;
    let state = State::rebuild(store.load_now()?)?;
    Ok(Summary {
        accounts: state.held().0,
        documents: state.held().1,
        cursor: state.cursor,
        stored_bytes: state.stored,
        identity: has_key,
    })
}
