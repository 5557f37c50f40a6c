//! A commit that fails leaves no transaction open: otherwise every later
//! write would join it, "nested", and never be committed.

use super::*;

#[test]
fn a_failed_commit_leaves_nothing_open_and_later_writes_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casebook.db");
    let s = Store::create(&path, b"pass").unwrap();
    // A constraint checked only at commit makes the commit fail.
    s.conn
        .execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TEMP TABLE parent(id INTEGER PRIMARY KEY);
             CREATE TEMP TABLE child(p INTEGER REFERENCES parent(id)
                 DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
    let started = s.begin().unwrap();
    assert!(started);
    s.put_secret("lost", b"with the failed commit").unwrap();
    s.conn
        .execute_batch("INSERT INTO child(p) VALUES (7)")
        .unwrap();
    assert!(s.end(started, true).is_err());
    assert!(s.conn.is_autocommit(), "the failed transaction is gone");
    // The next transaction is a transaction of its own, and lands.
    let started = s.begin().unwrap();
    assert!(started);
    s.put_secret("kept", b"after it").unwrap();
    s.end(started, true).unwrap();
    drop(s);
    let s = Store::open(&path, b"pass").unwrap();
    assert!(s.get_secret("lost").unwrap().is_none());
    assert_eq!(
        s.get_secret("kept").unwrap().as_deref().map(|v| &v[..]),
        Some(&b"after it"[..])
    );
}
