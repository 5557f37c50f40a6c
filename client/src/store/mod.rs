//! The local store: one SQLite file per device home, every value sealed.
//!
//! A random master key encrypts every document, key and log entry before it
//! is written; the master key itself is sealed under a key that Argon2id
//! derives from the person's passphrase. Only random ids, sequence numbers and
//! the Argon2 salt are in the clear. Each sealed value's associated data names
//! its table and row, so a value moved to another row does not open.

use std::path::Path;

use casebook_shared::crypto::{self, SecretKey};
use casebook_shared::ids::DocId;
use rusqlite::{Connection, OptionalExtension, params};
use schema::open_db;
use zeroize::Zeroizing;

mod audit;
mod claims;
mod crash;
mod doc_rows;
mod kdf;
mod outbox;
mod schema;
mod upkeep;

pub use crash::CrashPoint;

pub use claims::{ASK_AGAIN_AFTER, Claim, Hash};
pub use kdf::KdfParams;
pub(crate) use kdf::kek;
pub use outbox::{OutKind, Outgoing};

const MASTER_AAD: &[u8] = b"casebook/v1/local/master-key";

/// The fewest characters a new passphrase may have.
pub const MIN_PASSPHRASE: usize = 8;

/// Checks a passphrase chosen for a new home, or as a new one for a home.
pub fn check_new_passphrase(p: &str) -> Result<(), StoreError> {
    match p.chars().count() < MIN_PASSPHRASE {
        true => Err(StoreError::PassphraseTooShort),
        false => Ok(()),
    }
}

/// A local store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("wrong passphrase for this casebook home")]
    WrongPassphrase,
    #[error("the passphrase must be at least {MIN_PASSPHRASE} characters")]
    PassphraseTooShort,
    #[error("no casebook home here yet")]
    NotInitialised,
    #[error("a casebook home already exists here")]
    AlreadyInitialised,
    #[error("local database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("local data is damaged: {0}")]
    Damaged(String),
    #[error("key derivation: {0}")]
    Kdf(String),
}

/// The per-document sync record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocSync {
    /// Highest relay sequence number seen for the document.
    pub seen: u64,
    /// Access-log entries held.
    pub access_len: u64,
    /// Envelopes applied since the last snapshot (ours or fetched).
    pub since_snapshot: u64,
    /// Highest relay sequence number the relay gave one of this device's
    /// uploads: a relay showing less has lost an acknowledged change.
    pub acked: u64,
    /// Highest key epoch of any envelope taken for the document, in relay
    /// order: a membership that ended before it vouches for nothing more.
    pub top_epoch: u32,
    /// Changes the document's applied changes build on that the relay has
    /// not served (Automerge dependencies, named by hash inside signed
    /// envelopes): while any is missing, each round fetches the document
    /// again from the start, so a relay that was repaired delivers it.
    pub missing: u64,
}

/// An opened value, wiped from memory when dropped.
pub type Sealed = Zeroizing<Vec<u8>>;

/// The open store.
pub struct Store {
    conn: Connection,
    /// Commits may have been made that did not wait for the disk (see
    /// [`Store::wait_for_disk`]) and no commit that waits has followed.
    relaxed: std::sync::atomic::AtomicBool,
    /// Whether commits wait for the disk now: shared with a simulated
    /// power cut's hook, which keeps the files as of each commit that does.
    waits: std::sync::Arc<std::sync::atomic::AtomicBool>,
    master: SecretKey,
}

fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = table.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(key);
    a
}

impl Store {
    /// Whether a home at `path` has been set up.
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Creates a store with a fresh master key sealed under the passphrase.
    pub fn create(path: &Path, passphrase: &[u8]) -> Result<Store, StoreError> {
        Self::create_with(path, passphrase, KdfParams::default())
    }

    /// Creates a store whose passphrase key is derived at the given cost.
    pub fn create_with(
        path: &Path,
        passphrase: &[u8],
        kdf: KdfParams,
    ) -> Result<Store, StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyInitialised);
        }
        let conn = open_db(path)?;
        let salt: [u8; 16] = crypto::random_bytes();
        let master = SecretKey::random();
        let sealed =
            crypto::seal_random(&kek(passphrase, &salt, kdf)?, MASTER_AAD, master.expose());
        conn.execute(
            "INSERT INTO meta(name, value) VALUES ('salt', ?1), ('master', ?2), ('kdf', ?3)",
            params![&salt[..], sealed, &kdf.encode()[..]],
        )?;
        Ok(Store {
            conn,
            master,
            relaxed: Default::default(),
            waits: std::sync::Arc::new(true.into()),
        })
    }

    /// Seals the master key under a new passphrase (a new salt, the same
    /// cost). Nothing else changes: every value stays sealed under the
    /// master key, so this is one small write, all or nothing.
    pub fn change_passphrase(&self, passphrase: &[u8]) -> Result<(), StoreError> {
        let kdf = match self.query_row("SELECT value FROM meta WHERE name = 'kdf'", [], |r| {
            r.get::<_, Vec<u8>>(0)
        }) {
            Ok(b) => KdfParams::decode(&b).ok_or_else(|| {
                StoreError::Damaged("the key-derivation cost is malformed".into())
            })?,
            Err(rusqlite::Error::QueryReturnedNoRows) => KdfParams::default(),
            Err(e) => return Err(e.into()),
        };
        let salt: [u8; 16] = crypto::random_bytes();
        let sealed = crypto::seal_random(
            &kek(passphrase, &salt, kdf)?,
            MASTER_AAD,
            self.master.expose(),
        );
        self.execute(
            "INSERT INTO meta(name, value) VALUES ('salt', ?1), ('master', ?2), ('kdf', ?3)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![&salt[..], sealed, &kdf.encode()[..]],
        )?;
        Ok(())
    }

    /// Opens a store; a wrong passphrase is [`StoreError::WrongPassphrase`].
    pub fn open(path: &Path, passphrase: &[u8]) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotInitialised);
        }
        let conn = open_db(path)?;
        let get = |name: &str| -> Result<Vec<u8>, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or(StoreError::NotInitialised)
        };
        let salt = get("salt")?;
        let sealed = get("master")?;
        // Stores made before the cost was kept used the default.
        let kdf = match get("kdf") {
            Ok(b) => KdfParams::decode(&b).ok_or_else(|| {
                StoreError::Damaged("the key-derivation cost is malformed".into())
            })?,
            Err(StoreError::NotInitialised) => KdfParams::default(),
            Err(e) => return Err(e),
        };
        let master = crypto::open_random(&kek(passphrase, &salt, kdf)?, MASTER_AAD, &sealed)
            .map_err(|_| StoreError::WrongPassphrase)?;
        let arr: [u8; 32] = master
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Damaged("master key has the wrong length".into()))?;
        Ok(Store {
            conn,
            relaxed: Default::default(),
            waits: std::sync::Arc::new(true.into()),
            master: SecretKey::from_bytes(arr),
        })
    }

    /// Another connection to this store's file at `path`, with this one's
    /// key, for a second handle on an unlocked home. A file the key does
    /// not open shows at its first read, as a damaged value.
    pub fn open_again(&self, path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            conn: open_db(path)?,
            relaxed: Default::default(),
            waits: std::sync::Arc::new(true.into()),
            master: self.master.clone(),
        })
    }

    /// Runs one statement, prepared once per connection: most calls are
    /// the same few statements (an edit runs about ten), and preparing
    /// each anew cost more than running it.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// Reads one row with a statement prepared once per connection.
    fn query_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    fn seal(&self, table: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
        crypto::seal_random(&self.master, &aad(table, key), data)
    }

    fn unseal(
        &self,
        table: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        crypto::open_random(&self.master, &aad(table, key), sealed)
            .map_err(|_| StoreError::Damaged(format!("a {table} value does not open")))
    }

    /// Runs `f` in one transaction (one fsync for many writes). Inside a
    /// transaction already, `f` simply joins it.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = self.begin()?;
        let out = f(self);
        self.end(started, out.is_ok())?;
        out
    }

    /// Starts a transaction unless one is open; says whether it started one.
    pub(crate) fn begin(&self) -> Result<bool, StoreError> {
        if !self.conn.is_autocommit() {
            return Ok(false);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(true)
    }

    /// Ends a transaction [`Store::begin`] started: commits, or rolls back.
    pub(crate) fn end(&self, started: bool, commit: bool) -> Result<(), StoreError> {
        if !started {
            return Ok(());
        }
        if commit {
            // A commit that fails (a full disk, say) leaves nothing of the
            // transaction behind, and no transaction open for the next.
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        } else {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        Ok(())
    }

    /// Stores a named secret or setting, sealed.
    pub fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO secrets(name, sealed) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed",
            params![name, self.seal("secrets", name.as_bytes(), value)],
        )?;
        Ok(())
    }

    /// Forgets a named secret or setting.
    pub fn delete_secret(&self, name: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM secrets WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Reads a named secret or setting.
    pub fn get_secret(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .query_row("SELECT sealed FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        sealed
            .map(|s| self.unseal("secrets", name.as_bytes(), &s))
            .transpose()
    }

    /// Appends entries to a stored log (an account's or a document's), from `first_seq`.
    pub fn append_log(
        &self,
        owner: &[u8],
        first_seq: u64,
        entries: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO logs(owner, seq, sealed) VALUES (?1, ?2, ?3)",
        )?;
        for (i, e) in entries.iter().enumerate() {
            let seq = first_seq + i as u64;
            let mut key = owner.to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            stmt.execute(params![owner, seq as i64, self.seal("logs", &key, e)])?;
        }
        Ok(())
    }

    /// Drops a stored log's entries from `len` on.
    pub fn truncate_log(&self, owner: &[u8], len: u64) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM logs WHERE owner = ?1 AND seq >= ?2",
            params![owner, len as i64],
        )?;
        Ok(())
    }

    /// Reads entry `seq` of a stored log, if held.
    pub fn log_entry(
        &self,
        owner: &[u8],
        seq: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT sealed FROM logs WHERE owner = ?1 AND seq = ?2")?
            .query_row(params![owner, seq as i64], |r| r.get(0))
            .optional()?;
        let mut key = owner.to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        sealed.map(|s| self.unseal("logs", &key, &s)).transpose()
    }

    /// Reads a stored log in order.
    pub fn log(&self, owner: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, sealed FROM logs WHERE owner = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([owner], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (seq, sealed) = r?;
            let mut key = owner.to_vec();
            key.extend_from_slice(&(seq as u64).to_be_bytes());
            out.push(self.unseal("logs", &key, &sealed)?);
        }
        Ok(out)
    }

    /// The owners of stored logs whose id has `len` bytes (32: accounts).
    pub fn log_owners(&self, len: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT owner FROM logs WHERE length(owner) = ?1")?;
        let rows = stmt.query_map([len as i64], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every document id held.
    pub fn doc_ids(&self) -> Result<Vec<DocId>, StoreError> {
        self.doc_ids_from("SELECT doc FROM docs")
    }

    /// Those with saved bytes (see [`Store::has_body`]), in one read.
    pub fn doc_ids_with_body(&self) -> Result<Vec<DocId>, StoreError> {
        self.doc_ids_from("SELECT doc FROM docs WHERE body IS NOT NULL")
    }

    fn doc_ids_from(&self, sql: &str) -> Result<Vec<DocId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(DocId(r?.try_into().map_err(|_| {
                StoreError::Damaged("a document id has the wrong length".into())
            })?));
        }
        Ok(out)
    }

    /// A document's sync record (default when unknown).
    pub fn doc_sync(&self, doc: &DocId) -> Result<Option<DocSync>, StoreError> {
        Ok(self
            .query_row(
                "SELECT seen, access_len, since_snapshot, acked, top_epoch, missing FROM docs WHERE doc = ?1",
                [&doc.0[..]],
                |r| {
                    Ok(DocSync {
                        seen: r.get::<_, i64>(0)? as u64,
                        access_len: r.get::<_, i64>(1)? as u64,
                        since_snapshot: r.get::<_, i64>(2)? as u64,
                        acked: r.get::<_, i64>(3)? as u64,
                        top_epoch: r.get::<_, i64>(4)? as u32,
                        missing: r.get::<_, i64>(5)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// Sets a document's sync record (creating the row if needed).
    /// Forgets a document's content and what was fetched of it, keeping its
    /// access log: the next sync fetches it again from the start, as a new
    /// device would, if this account may still read it.
    pub fn forget_doc_content(&self, doc: &DocId) -> Result<(), StoreError> {
        self.execute(
            "UPDATE docs SET body = NULL, summary = NULL, seen = 0, since_snapshot = 0,
             acked = 0, top_epoch = 0, missing = 0, rev = rev + 1 WHERE doc = ?1",
            [&doc.0[..]],
        )?;
        self.forget_search_text(doc)
    }

    pub fn set_doc_sync(&self, doc: &DocId, s: DocSync) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO docs(doc, seen, access_len, since_snapshot, acked, top_epoch, missing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(doc) DO UPDATE SET seen = excluded.seen, access_len = excluded.access_len,
             since_snapshot = excluded.since_snapshot, acked = excluded.acked,
             top_epoch = excluded.top_epoch, missing = excluded.missing",
            params![
                &doc.0[..],
                s.seen as i64,
                s.access_len as i64,
                s.since_snapshot as i64,
                s.acked as i64,
                i64::from(s.top_epoch),
                s.missing as i64
            ],
        )?;
        Ok(())
    }

    /// Records that the relay stored one of this device's uploads at `seq`.
    pub fn note_acked(&self, doc: &DocId, seq: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO docs(doc, acked) VALUES (?1, ?2)
             ON CONFLICT(doc) DO UPDATE SET acked = MAX(acked, excluded.acked)",
            params![&doc.0[..], seq as i64],
        )?;
        Ok(())
    }

    /// Stores a document's saved Automerge bytes and its listing summary;
    /// returns the row's new revision, which tells a copy held in memory
    /// whether another process has written the document since.
    pub fn put_doc(&self, doc: &DocId, body: &[u8], summary: &[u8]) -> Result<i64, StoreError> {
        Ok(self.query_row(
            "INSERT INTO docs(doc, body, summary, rev) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT(doc) DO UPDATE SET body = excluded.body, summary = excluded.summary,
             rev = docs.rev + 1
             RETURNING rev",
            params![
                &doc.0[..],
                self.seal("docs.body", &doc.0, body),
                self.seal("docs.summary", &doc.0, summary)
            ],
            |r| r.get(0),
        )?)
    }

    /// A document's revision (0 when it has no body yet).
    pub fn doc_rev(&self, doc: &DocId) -> Result<i64, StoreError> {
        Ok(self
            .query_row(
                "SELECT rev FROM docs INDEXED BY docs_rev WHERE doc = ?1",
                [&doc.0[..]],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// A document's summary, if any.
    pub fn doc_summary(&self, doc: &DocId) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Option<Vec<u8>>> = self
            .query_row(
                "SELECT summary FROM docs WHERE doc = ?1",
                [&doc.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        sealed
            .flatten()
            .map(|s| self.unseal("docs.summary", &doc.0, &s))
            .transpose()
    }

    /// Whether a document has saved bytes, without reading or opening them.
    pub fn has_body(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self
            .query_row(
                "SELECT body IS NOT NULL FROM docs WHERE doc = ?1",
                [&doc.0[..]],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// A document's saved bytes, if any.
    pub fn doc_body(&self, doc: &DocId) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Option<Vec<u8>>> = self
            .query_row("SELECT body FROM docs WHERE doc = ?1", [&doc.0[..]], |r| {
                r.get(0)
            })
            .optional()?;
        sealed
            .flatten()
            .map(|s| self.unseal("docs.body", &doc.0, &s))
            .transpose()
    }
}

#[cfg(test)]
#[path = "end_tests.rs"]
mod end_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passphrase_and_sealed_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casebook.db");
        {
            let s = Store::create(&path, b"right").unwrap();
            s.put_secret("device", b"zebra kumquat phrase").unwrap();
        }
        assert!(matches!(
            Store::open(&path, b"wrong"),
            Err(StoreError::WrongPassphrase)
        ));
        let s = Store::open(&path, b"right").unwrap();
        assert_eq!(
            &s.get_secret("device").unwrap().unwrap()[..],
            b"zebra kumquat phrase"
        );
        drop(s);
        // The table names are in the clear ("secrets"); the value is not.
        let raw = std::fs::read(&path).unwrap();
        assert!(
            raw.windows(13).any(|w| w == b"CREATE TABLE "),
            "the file was read"
        );
        assert!(!raw.windows(13).any(|w| w == b"zebra kumquat"));
    }
}
