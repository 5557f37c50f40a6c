//! Reads of the SQLite store, on a small pool of connections that the
//! blocking threads share.

use std::path::PathBuf;
use std::sync::Mutex;

use casebook_shared::codec;
use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::{DocRecord, Loaded, StoreError};

/// A stored log: its owner's id (account or document) and its entries.
type OwnedLog = (Vec<u8>, Vec<Signed>);

/// A small pool of reader connections, shared with the blocking threads
/// that run reads.
pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) pool: Mutex<Vec<Connection>>,
    /// Opened to be read only (to check a backup): no writer, no pragmas.
    pub(super) read_only: bool,
}

impl Readers {
    pub(super) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None if self.read_only => {
                Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?
            }
            None => super::open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }
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
    pub(super) fn load(&self) -> Result<Loaded, StoreError> {
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
            loaded.cursor = cursor(conn)?;
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

    pub(super) fn fetch(
        &self,
        docs: &[(DocId, u64)],
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        self.with_reader(|conn| {
            // One read transaction: a snapshot and the changes it did not
            // replace are read from the same state of the file.
            let tx = conn.unchecked_transaction()?;
            let conn: &Connection = &tx;
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

impl Readers {
    pub(super) fn account_log(&self, account: &AccountId) -> Result<Vec<Signed>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT entry FROM account_entries WHERE account = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([&account.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|b| {
                codec::decode(&b?).map_err(|e| StoreError::Damaged(format!("account_entries: {e}")))
            })
            .collect()
        })
    }

    pub(super) fn doc_record(&self, doc: &DocId) -> Result<Option<DocRecord>, StoreError> {
        self.with_reader(|conn| {
            // One read transaction: a snapshot and the changes it did not
            // replace are read from the same state of the file.
            let tx = conn.unchecked_transaction()?;
            let conn: &Connection = &tx;
            let d = &doc.0[..];
            let mut rec = DocRecord::default();
            let mut stmt = conn
                .prepare_cached("SELECT entry FROM access_entries WHERE doc = ?1 ORDER BY seq")?;
            let mut rows = stmt.query([d])?;
            while let Some(r) = rows.next()? {
                let entry: Vec<u8> = r.get(0)?;
                rec.log.push(
                    codec::decode(&entry)
                        .map_err(|e| StoreError::Damaged(format!("access_entries: {e}")))?,
                );
            }
            if rec.log.is_empty() {
                return Ok(None);
            }
            let (head, bytes): (Option<i64>, i64) = conn
                .prepare_cached(
                    "SELECT (SELECT MAX(seq) FROM envelopes WHERE doc = ?1),
                            COALESCE((SELECT SUM(length(bytes)) FROM envelopes WHERE doc = ?1), 0)
                          + COALESCE((SELECT SUM(length(bytes)) FROM snapshots WHERE doc = ?1), 0)",
                )?
                .query_row([d], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rec.head = head.unwrap_or(0) as u64;
            rec.bytes = bytes as u64;
            let gone: Option<(Vec<u8>, i64)> = conn
                .prepare_cached("SELECT readers, head FROM disposed WHERE doc = ?1")?
                .query_row([d], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((readers, head)) = gone {
                rec.disposed = Some(
                    codec::decode(&readers)
                        .map_err(|e| StoreError::Damaged(format!("disposed: {e}")))?,
                );
                rec.head = rec.head.max(head as u64);
            }
            Ok(Some(rec))
        })
    }
}

/// Numbers handed out only rise, even past envelopes since deleted with a
/// disposed document (AUTOINCREMENT keeps the highest in sqlite_sequence).
pub(super) fn cursor(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT MAX(n) FROM (SELECT MAX(seq) AS n FROM envelopes
             UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'envelopes')",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )?
        .unwrap_or(0) as u64)
}

impl Readers {
    pub(super) fn device_account(
        &self,
        device: &DeviceId,
    ) -> Result<Option<AccountId>, StoreError> {
        self.with_reader(|conn| {
            let a: Option<Vec<u8>> = conn
                .prepare_cached("SELECT account FROM devices WHERE device = ?1")?
                .query_row([&device.0[..]], |r| r.get(0))
                .optional()?;
            a.map(|a| Ok(AccountId(blob(a)?))).transpose()
        })
    }

    pub(super) fn member_docs(&self, account: &AccountId) -> Result<Vec<DocId>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached("SELECT doc FROM doc_members WHERE account = ?1")?;
            let rows = stmt.query_map([&account.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|d| Ok(DocId(blob(d?)?))).collect()
        })
    }

    pub(super) fn owner_usage(&self, owner: &AccountId) -> Result<u64, StoreError> {
        self.with_reader(|conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE((SELECT SUM(length(e.bytes)) FROM doc_owners o
                                      JOIN envelopes e ON e.doc = o.doc WHERE o.owner = ?1), 0)
                          + COALESCE((SELECT SUM(length(s.bytes)) FROM doc_owners o
                                      JOIN snapshots s ON s.doc = o.doc WHERE o.owner = ?1), 0)",
                )?
                .query_row([&owner.0[..]], |r| r.get(0))?;
            Ok(n as u64)
        })
    }
}
