//! The storage contract (`common/contract.rs`) against the SQLite backend,
//! each check on a fresh database in a temporary folder.

#[path = "common/contract.rs"]
mod contract;

use casebook_relay::sqlite::SqliteStore;

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_repeated_envelope_is_acknowledged_once() {
    let (_dir, s) = fresh();
    contract::a_repeated_envelope_is_acknowledged_once(&s).await;
}

#[tokio::test]
async fn a_snapshot_replaces_what_it_covers_and_covers_only_rise() {
    let (_dir, s) = fresh();
    contract::a_snapshot_replaces_what_it_covers_and_covers_only_rise(&s).await;
}

#[tokio::test]
async fn a_log_append_at_a_taken_position_is_refused_whole() {
    let (_dir, s) = fresh();
    contract::a_log_append_at_a_taken_position_is_refused_whole(&s).await;
}

#[tokio::test]
async fn a_fetch_pages_end_to_end() {
    let (_dir, s) = fresh();
    contract::a_fetch_pages_end_to_end(&s).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_a_reopen() {
    let (dir, s) = fresh();
    let path = dir.path().join("relay.db");
    contract::acknowledged_writes_survive_a_reopen(s, |s| {
        s.close();
        drop(s);
        SqliteStore::open(&path).unwrap()
    })
    .await;
}

#[tokio::test]
async fn a_disposal_keeps_itself_alone() {
    let (_dir, s) = fresh();
    contract::a_disposal_keeps_itself_alone(&s).await;
}
