//! A process that stops between two writes of its store, or a machine
//! that loses power, for the simulation: what `kill -9` or a power cut
//! leaves behind, at any write.
//!
//! A crash point armed with `n` lets the store commit `n` more writes and
//! rolls back every later one (SQLite's commit hook turns the commit into a
//! rollback, so the write never reaches the file), until it is disarmed.
//! The operation under way fails; the simulation drops the home and opens
//! it again from what the file holds, as a restarted process would.
//!
//! A power cut loses more: a commit that did not wait for the disk (see
//! [`Store::wait_for_disk`]) may be gone, with every later one, until a
//! commit that waits makes them durable. So the point keeps each store's
//! files as of its last commit that waited (or its last checkpoint, which
//! syncs both files), and [`CrashPoint::power_cut`] puts them back: the
//! worst a power cut may do. People never have one: a
//! [`crate::home::Setup`] holds none by default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Store, StoreError};

/// Pages in the write-ahead log after which it is checkpointed, as
/// SQLite's automatic checkpoint (which the hook below replaces) does.
const CHECKPOINT_PAGES: i32 = 1000;

/// A store's database file and write-ahead log as they were.
#[derive(Debug)]
struct Image {
    db: Vec<u8>,
    wal: Option<Vec<u8>>,
}

fn wal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl Image {
    fn read(db: &Path) -> std::io::Result<Image> {
        Ok(Image {
            db: std::fs::read(db)?,
            wal: std::fs::read(wal_of(db)).ok(),
        })
    }
}

/// Shared by every store opened with it; one device writes at a time.
#[derive(Clone, Debug)]
pub struct CrashPoint {
    /// Writes still allowed; negative when disarmed.
    left: Arc<AtomicI64>,
    fired: Arc<AtomicBool>,
    /// Each store's files as of its last durable commit, by database path.
    durable: Arc<Mutex<HashMap<PathBuf, Image>>>,
}

impl Default for CrashPoint {
    fn default() -> Self {
        CrashPoint {
            left: Arc::new(AtomicI64::new(-1)),
            fired: Arc::new(AtomicBool::new(false)),
            durable: Default::default(),
        }
    }
}

impl CrashPoint {
    /// Lets `writes` more commits through, then stops every later one.
    pub fn arm(&self, writes: u32) {
        self.fired.store(false, Ordering::SeqCst);
        self.left.store(i64::from(writes), Ordering::SeqCst);
    }

    /// Writes go through again; says whether the crash happened.
    pub fn disarm(&self) -> bool {
        self.left.store(-1, Ordering::SeqCst);
        self.fired.swap(false, Ordering::SeqCst)
    }

    /// Whether this commit must be rolled back.
    fn stop(&self) -> bool {
        let left = self.left.load(Ordering::SeqCst);
        if left < 0 {
            return false;
        }
        if left == 0 {
            self.fired.store(true, Ordering::SeqCst);
            return true;
        }
        self.left.fetch_sub(1, Ordering::SeqCst);
        false
    }

    /// The power fails under the store at `db`, which must be closed: its
    /// files go back to its last durable commit, and what was committed
    /// without waiting since is lost. Returns whether anything was kept
    /// for it (a store opened under this point and written durably).
    pub fn power_cut(&self, db: &Path) -> std::io::Result<bool> {
        let images = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        let Some(image) = images.get(db) else {
            return Ok(false);
        };
        std::fs::write(db, &image.db)?;
        match &image.wal {
            Some(wal) => std::fs::write(wal_of(db), wal)?,
            None => match std::fs::remove_file(wal_of(db)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        let mut shm = db.as_os_str().to_owned();
        shm.push("-shm");
        match std::fs::remove_file(PathBuf::from(shm)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        }
    }
}

impl Store {
    /// Puts the store's writes under `point`.
    pub(crate) fn crash_at(&mut self, point: &CrashPoint) -> Result<(), StoreError> {
        let stop = point.clone();
        self.conn.commit_hook(Some(move || stop.stop()))?;
        let Some(path) = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
        else {
            return Ok(());
        };
        let waits = self.waits.clone();
        let durable = point.durable.clone();
        let keep = move |path: &Path, first: bool| {
            let mut images = durable.lock().unwrap_or_else(|e| e.into_inner());
            if first && images.contains_key(path) {
                return;
            }
            if let Ok(image) = Image::read(path) {
                images.insert(path.to_path_buf(), image);
            }
        };
        // As it is now, if it was just made (every commit so far waited).
        // One opened again keeps what its last durable commit left: the
        // commits that survived a crash of the process without waiting for
        // the disk are not durable for that.
        keep(&path, true);
        // Called after each commit, with the log's length in pages.
        self.conn
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
                let checkpointed = pages >= CHECKPOINT_PAGES;
                if checkpointed {
                    wal.checkpoint()?;
                }
                if checkpointed || waits.load(Ordering::SeqCst) {
                    keep(&path, false);
                }
                Ok(())
            }))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_after_the_crash_point_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casebook.db");
        let point = CrashPoint::default();
        {
            let mut s = Store::create(&path, b"pass").unwrap();
            s.crash_at(&point).unwrap();
            point.arm(1);
            s.put_secret("first", b"kept").unwrap();
            assert!(s.put_secret("second", b"lost").is_err());
            // A crashed process writes nothing more, in or out of a transaction.
            assert!(s.transaction(|s| s.put_secret("third", b"lost")).is_err());
            assert!(point.disarm(), "the crash is reported once");
            assert!(!point.disarm());
        }
        let s = Store::open(&path, b"pass").unwrap();
        assert_eq!(&s.get_secret("first").unwrap().unwrap()[..], b"kept");
        assert!(s.get_secret("second").unwrap().is_none());
        assert!(s.get_secret("third").unwrap().is_none());
    }

    #[test]
    fn a_power_cut_loses_what_did_not_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casebook.db");
        let point = CrashPoint::default();
        let reopen = || {
            let mut s = Store::open(&path, b"pass").unwrap();
            s.crash_at(&point).unwrap();
            s
        };
        {
            let mut s = Store::create(&path, b"pass").unwrap();
            s.crash_at(&point).unwrap();
            s.put_secret("durable", b"1").unwrap();
            s.wait_for_disk(false).unwrap();
            s.put_secret("relaxed", b"2").unwrap();
        }
        assert!(point.power_cut(&path).unwrap());
        {
            let s = reopen();
            assert!(s.get_secret("durable").unwrap().is_some());
            assert!(s.get_secret("relaxed").unwrap().is_none(), "lost");
            // A relaxed commit that a later durable one follows is durable.
            s.wait_for_disk(false).unwrap();
            s.put_secret("relaxed", b"2").unwrap();
            s.wait_for_disk(true).unwrap();
            s.put_secret("after", b"3").unwrap();
            s.wait_for_disk(false).unwrap();
            s.put_secret("lost", b"4").unwrap();
        }
        // A process that crashed and opened again did not make its relaxed
        // commits durable by opening.
        drop(reopen());
        assert!(point.power_cut(&path).unwrap());
        let s = reopen();
        for (name, kept) in [("relaxed", true), ("after", true), ("lost", false)] {
            assert_eq!(s.get_secret(name).unwrap().is_some(), kept, "{name}");
        }
    }
}
