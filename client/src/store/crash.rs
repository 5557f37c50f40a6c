//! A process that stops between two writes of its store, for the
//! simulation: what a power cut or `kill -9` leaves behind, at any write.
//!
//! A crash point armed with `n` lets the store commit `n` more writes and
//! rolls back every later one (SQLite's commit hook turns the commit into a
//! rollback, so the write never reaches the file), until it is disarmed.
//! The operation under way fails; the simulation drops the home and opens
//! it again from what the file holds, as a restarted process would. People
//! never have one: a [`crate::home::Setup`] holds none by default.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::{Store, StoreError};

/// Shared by every store opened with it; one device writes at a time.
#[derive(Clone, Debug)]
pub struct CrashPoint {
    /// Writes still allowed; negative when disarmed.
    left: Arc<AtomicI64>,
    fired: Arc<AtomicBool>,
}

impl Default for CrashPoint {
    fn default() -> Self {
        CrashPoint {
            left: Arc::new(AtomicI64::new(-1)),
            fired: Arc::new(AtomicBool::new(false)),
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
}

impl Store {
    /// Puts the store's writes under `point`.
    pub(crate) fn crash_at(&mut self, point: &CrashPoint) -> Result<(), StoreError> {
        let point = point.clone();
        self.conn.commit_hook(Some(move || point.stop()))?;
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
}
