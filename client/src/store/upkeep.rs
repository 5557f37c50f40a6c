//! The store's upkeep: settings kept in the clear, a consistent copy for a
//! backup, and deleting a document for good (a disposal).

use std::path::Path;

use casebook_shared::ids::DocId;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    /// Writes a consistent copy of the whole store to a new file at `path`
    /// (SQLite's `VACUUM INTO`: one read transaction, so writes that go on
    /// meanwhile are either wholly in it or not at all). Every value in it
    /// is sealed as it is here.
    pub fn snapshot_into(&self, path: &Path) -> Result<(), StoreError> {
        let path = path
            .to_str()
            .ok_or_else(|| StoreError::Damaged("the snapshot path is not UTF-8".into()))?;
        self.conn.execute("VACUUM INTO ?1", [path])?;
        Ok(())
    }

    /// A setting kept in the clear (no secret: a flag, a number).
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores a setting kept in the clear.
    pub fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta(name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )?;
        Ok(())
    }

    /// Forgets a setting kept in the clear.
    pub fn delete_meta(&self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM meta WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Deletes everything stored of a document: its row, its access log,
    /// what waits to be sent for it, and its search text. (Its sealed settings are the
    /// caller's to delete.)
    pub fn delete_doc(&self, doc: &DocId) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM docs WHERE doc = ?1", [&doc.0[..]])?;
        self.conn
            .execute("DELETE FROM logs WHERE owner = ?1", [&doc.0[..]])?;
        self.conn
            .execute("DELETE FROM outbox WHERE doc = ?1", [&doc.0[..]])?;
        self.forget_claims(doc)?;
        self.forget_search_text(doc)
    }

    /// Rebuilds the database file from its live rows (`VACUUM`, through
    /// memory, as `temp_store` says), then empties the write-ahead log.
    ///
    /// `secure_delete` zeroes a deleted row where it lies, but when SQLite
    /// moves rows between pages (a page splits, or is rebuilt) it leaves
    /// the old copies in the pages' unused space, where they outlive the
    /// row. A disposed case's sealed rows were found there, now and then,
    /// after their deletion; only a rebuild writes every page afresh.
    pub fn rewrite(&self) -> Result<(), StoreError> {
        self.sweep_search_text()?;
        self.conn.execute_batch("VACUUM")?;
        self.checkpoint()
    }

    /// Moves what the write-ahead log holds into the database file and
    /// empties it: after a deletion, so no earlier version of a deleted
    /// page stays behind in it (secure_delete zeroes them in the file).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        // Another process on this home (a `sync --watch`) may hold an older
        // snapshot for a moment: the pragma then says "busy".
        for _ in 0..50 {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(StoreError::Damaged(
            "the write-ahead log stayed in use; run `casebook sync` again to empty it".into(),
        ))
    }

    /// Whether commits wait for the disk. They do, but for what can be
    /// had again: a commit that does not wait survives a crash of the
    /// process, and after a power cut may be gone, all of it or none, with
    /// the store as it was before. Changes fetched from the relay and the
    /// seen mark that says so are lost together, and fetched again; the
    /// next commit that waits (any edit here) makes them durable too.
    pub(crate) fn wait_for_disk(&self, wait: bool) -> Result<(), StoreError> {
        let mode = if wait { "FULL" } else { "NORMAL" };
        if !wait {
            self.relaxed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.conn.pragma_update(None, "synchronous", mode)?;
        self.waits.store(wait, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Runs `f` with commits that do not wait for the disk (see
    /// [`Store::wait_for_disk`]), then waits again; a failure to wait again
    /// is an error even when `f` succeeded, since every later commit would
    /// go on not waiting.
    pub(crate) fn without_disk_wait<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.wait_for_disk(false)?;
        let out = f();
        let restored = self.wait_for_disk(true);
        let out = out?;
        restored?;
        Ok(out)
    }

    /// Makes every commit before it durable, those that did not wait for
    /// the disk included: one small write that does (a commit waiting for
    /// the disk syncs the whole write-ahead log), and nothing if every
    /// commit since the last barrier waited. Called before anything made
    /// from them leaves the device (an audit entry about a fetched change).
    pub(crate) fn durable_barrier(&self) -> Result<(), StoreError> {
        if !self
            .relaxed
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let written = self.wait_for_disk(true).and_then(|()| {
            self.conn.execute(
                "INSERT INTO meta(name, value) VALUES ('durable_mark', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [nanos.to_le_bytes().to_vec()],
            )?;
            Ok(())
        });
        if written.is_err() {
            // Still not durable: the next barrier must try again.
            self.relaxed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        written
    }

    /// Whether a transaction is open on the store's connection.
    pub(crate) fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }
}
