//! The store a relay runs on, chosen at start: SQLite in its data folder
//! or a PostgreSQL database. One type, so the relay and its connections
//! are built once for both.

use casebook_shared::frames::Stored;
use casebook_shared::ids::DocId;
use tokio::sync::oneshot;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::storage::{Loaded, Storage, StoreError, WriteJob, WriteResult};

/// SQLite or PostgreSQL.
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Storage for AnyStore {
    async fn load(&self) -> Result<Loaded, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.load().await,
            AnyStore::Postgres(s) => s.load().await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.ping().await,
            AnyStore::Postgres(s) => s.ping().await,
        }
    }

    fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult> {
        match self {
            AnyStore::Sqlite(s) => s.submit(job),
            AnyStore::Postgres(s) => s.submit(job),
        }
    }

    async fn fetch(
        &self,
        docs: Vec<(DocId, u64)>,
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.fetch(docs, max_bytes).await,
            AnyStore::Postgres(s) => s.fetch(docs, max_bytes).await,
        }
    }

    async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => Storage::close(s).await,
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}
