//! Which account lists each device, kept by the store: an append that
//! gives a device to a second account is refused whole on either backend,
//! also when two relay nodes take the two appends at once; and a database
//! made before the store kept its indexes (devices, documents' owners and
//! members) is indexed from its logs.

#[path = "common/contract.rs"]
mod contract;
#[path = "common/logs.rs"]
mod logs;
#[path = "common/postgres.rs"]
mod pg;

use casebook_relay::storage::{Storage, StoreError, WriteJob};
use casebook_shared::ids::{AccountId, DeviceId};

/// A real account with one device: its id, its genesis and the device.
fn an_account() -> (AccountId, WriteJob, DeviceId) {
    let (signer, state, job) = logs::an_account();
    (state.id, job, signer.device_id())
}

/// Another account's genesis that also lists `device`.
fn claiming(device: DeviceId) -> WriteJob {
    let (account, job, _) = an_account();
    let WriteJob::Account { entries, .. } = job else {
        unreachable!()
    };
    WriteJob::Account {
        account,
        first_seq: 0,
        entries,
        devices: vec![device],
    }
}

async fn write(s: &impl Storage, job: WriteJob) -> Result<(), StoreError> {
    let mut r = s.submit(job).await.expect("the writer answers");
    r.pop().expect("one answer").map(|_| ())
}

mod sqlite {
    use super::*;
    use casebook_relay::sqlite::SqliteStore;

    #[tokio::test]
    async fn a_device_is_listed_by_one_account_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
        contract::a_device_is_listed_by_one_account_only(&s).await;
    }

    #[tokio::test]
    async fn a_database_from_before_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let (signer, state, job) = logs::an_account();
        let (account, device) = (state.id, signer.device_id());
        let (doc, genesis) = logs::a_document(&signer, &state);
        {
            let s = SqliteStore::open(&path).unwrap();
            write(&s, job).await.unwrap();
            write(&s, genesis).await.unwrap();
            Storage::close(&s).await;
        }
        // As a relay before the index left it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE devices; DROP TABLE doc_owners; DROP TABLE doc_members;
             PRAGMA user_version = 0;",
        )
        .unwrap();
        drop(conn);
        let s = SqliteStore::open(&path).unwrap();
        let r = write(&s, claiming(device)).await;
        assert!(
            matches!(r, Err(StoreError::DeviceClaimed(d)) if d == device),
            "{r:?}"
        );
        assert_eq!(s.member_docs(account).await.unwrap(), vec![doc]);
        assert_eq!(s.device_account(device).await.unwrap(), Some(account));
        Storage::close(&s).await;
        // A layout newer than this relay's is refused, not misread.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 9;").unwrap();
        drop(conn);
        let e = SqliteStore::open(&path).err().expect("refused");
        assert!(e.to_string().contains("newer than this relay"), "{e}");
    }
}

mod postgres {
    use super::pg::TestPostgres;
    use super::*;
    use casebook_relay::postgres::{PgStore, migrate};

    async fn fresh() -> Option<(TestPostgres, String, PgStore)> {
        let server = TestPostgres::start()?;
        let url = server.create_db("relay").await;
        migrate(&url, None).await.expect("migrate");
        let store = PgStore::open(&url, None).await.expect("open");
        Some((server, url, store))
    }

    #[tokio::test]
    async fn a_device_is_listed_by_one_account_only() {
        let Some((_pg, _, s)) = fresh().await else {
            return;
        };
        contract::a_device_is_listed_by_one_account_only(&s).await;
    }

    /// Two nodes each take an account that lists the same device, at once:
    /// exactly one is stored.
    #[tokio::test]
    async fn two_nodes_cannot_give_one_device_to_two_accounts() {
        let Some((_pg, url, a)) = fresh().await else {
            return;
        };
        let b = PgStore::open(&url, None).await.expect("a second node");
        for _ in 0..5 {
            let (_, first, device) = an_account();
            let (ra, rb) = tokio::join!(write(&a, first), write(&b, claiming(device)));
            assert!(
                ra.is_ok() != rb.is_ok(),
                "exactly one may list the device: {ra:?} {rb:?}"
            );
            let refused = if ra.is_err() { ra } else { rb };
            assert!(matches!(refused, Err(StoreError::DeviceClaimed(d)) if d == device));
        }
    }

    #[tokio::test]
    async fn migrating_from_before_the_index_fills_it() {
        let Some((pg, url, s)) = fresh().await else {
            return;
        };
        let (signer, state, job) = logs::an_account();
        let (account, device) = (state.id, signer.device_id());
        let (doc, genesis) = logs::a_document(&signer, &state);
        write(&s, job).await.unwrap();
        write(&s, genesis).await.unwrap();
        Storage::close(&s).await;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                "DROP TABLE devices; DROP TABLE doc_owners; DROP TABLE doc_members;
                 UPDATE casebook_schema SET version = 1;",
            )
            .await
            .unwrap();
        let refused = PgStore::open(&url, None)
            .await
            .err()
            .expect("an old schema");
        assert!(
            refused.to_string().contains("casebook-relay migrate"),
            "{refused}"
        );
        let m = migrate(&url, None).await.unwrap();
        assert_eq!((m.from, m.to), (1, 3));
        let s = PgStore::open(&url, None).await.unwrap();
        let r = write(&s, claiming(device)).await;
        assert!(
            matches!(r, Err(StoreError::DeviceClaimed(d)) if d == device),
            "{r:?}"
        );
        assert_eq!(s.member_docs(account).await.unwrap(), vec![doc]);
        drop(pg);
    }
}
