//! The store's file: its tables, how a connection to it is opened, and
//! the columns added since the first release.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS logs(owner BLOB NOT NULL, seq INTEGER NOT NULL, sealed BLOB NOT NULL,
    PRIMARY KEY(owner, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs(doc BLOB PRIMARY KEY, seen INTEGER NOT NULL DEFAULT 0,
    access_len INTEGER NOT NULL DEFAULT 0, since_snapshot INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0, top_epoch INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0, body BLOB, summary BLOB, rev INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
-- Revisions are read for every document on every listing: from here,
-- not from the rows, where they lie after the bodies.
CREATE INDEX IF NOT EXISTS docs_rev ON docs(doc, rev);
-- Each case made ready to search, at the revision it was made from: a
-- search right after unlocking reads these, not every document.
CREATE TABLE IF NOT EXISTS search_text(doc BLOB PRIMARY KEY, rev INTEGER NOT NULL,
    sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB NOT NULL,
    kind INTEGER NOT NULL, env_id BLOB NOT NULL, payload BLOB NOT NULL, envelope BLOB);
CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, sealed BLOB NOT NULL);
-- The newest change of this device's the relay acknowledged, by
-- document (`max_op` orders them), to tell the account's other devices
-- (see `sync::claims`); the newest each of them told this one, in the
-- envelope the relay numbered `at`, and whether it is here (`met`).
CREATE TABLE IF NOT EXISTS claims_out(doc BLOB PRIMARY KEY, hash BLOB NOT NULL,
    max_op INTEGER NOT NULL, told INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims_in(doc BLOB NOT NULL, device BLOB NOT NULL, hash BLOB NOT NULL,
    max_op INTEGER NOT NULL, at INTEGER NOT NULL, met INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(doc, device)) WITHOUT ROWID;
-- Changes this device was not served, to ask the account's other devices
-- for (last `told` at that time, `asked` times so far; see
-- `ASK_AGAIN_AFTER`), and what each of them asked of this one, in the
-- envelope at `at` (answered once per asking).
CREATE TABLE IF NOT EXISTS wants_out(doc BLOB NOT NULL, hash BLOB NOT NULL,
    told INTEGER NOT NULL DEFAULT 0, asked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(doc, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wants_in(doc BLOB NOT NULL, hash BLOB NOT NULL, device BLOB NOT NULL,
    at INTEGER NOT NULL, answered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(doc, hash, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_remote(device BLOB NOT NULL, seq INTEGER NOT NULL, sealed BLOB NOT NULL,
    PRIMARY KEY(device, seq)) WITHOUT ROWID;
";

pub(super) fn open_db(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_handler(Some(wait_for_writer))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Temporary tables and sort spills stay in memory, never in plaintext files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(SCHEMA)?;
    migrate(&conn)?;
    Ok(conn)
}

/// How long a write waits for another connection's (the page's background
/// sync beside its edits, a CLI beside a watcher) before it fails.
const WRITER_WAIT: Duration = Duration::from_secs(30);

thread_local! {
    /// When this thread's write began to wait.
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set while a write that may be skipped is made: it does not wait.
    static NO_WAITING: Cell<bool> = const { Cell::new(false) };
}

/// Waits for another connection's write to end, a millisecond at a time,
/// for up to [`WRITER_WAIT`]. SQLite's own handler sleeps longer the longer
/// it waits (up to 100 ms a try), so a write a few milliseconds long kept
/// a keystroke's save waiting 100 to 200 ms behind the page's background
/// sync. SQLite calls it on the thread of the waiting statement, with the
/// number of tries so far.
fn wait_for_writer(tries: i32) -> bool {
    if NO_WAITING.get() {
        return false;
    }
    let now = Instant::now();
    let since = match (tries, WAITING_SINCE.get()) {
        (1.., Some(since)) => since,
        _ => {
            WAITING_SINCE.set(Some(now));
            now
        }
    };
    if now.duration_since(since) >= WRITER_WAIT {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

/// Runs `f`, whose writes fail at once (busy) rather than wait for another
/// connection's: for a write that can simply be made another time.
pub(super) fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    NO_WAITING.set(true);
    let out = f();
    NO_WAITING.set(false);
    out
}

/// Columns added after the first release, added to a store made before.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    const ADDED: [(&str, &[&str]); 2] = [
        ("docs", &["acked", "top_epoch", "missing"]),
        ("wants_out", &["asked"]),
    ];
    for (table, columns) in ADDED {
        let mut have = Vec::new();
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
            have.push(name?);
        }
        for column in columns {
            if !have.iter().any(|h| h == column) {
                // Another process opening the same old store may add it first.
                if let Err(e) = conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                )) && !e.to_string().contains("duplicate column")
                {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    /// A write behind another connection's transaction waits for it, and
    /// then lands.
    #[test]
    fn a_write_waits_for_another_connections_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casebook.db");
        let first = Store::create(&path, b"pass").unwrap();
        let second = Store::open(&path, b"pass").unwrap();
        assert!(first.begin().unwrap());
        first.put_secret("a", b"1").unwrap();
        let (sent, done) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            second.put_secret("b", b"2").unwrap();
            sent.send(()).unwrap();
            second
        });
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert!(done.try_recv().is_err(), "it waits");
        first.end(true, true).unwrap();
        done.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let second = writer.join().unwrap();
        assert_eq!(&second.get_secret("a").unwrap().unwrap()[..], b"1");
        assert_eq!(&first.get_secret("b").unwrap().unwrap()[..], b"2");
    }
}
