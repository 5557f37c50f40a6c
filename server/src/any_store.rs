//! The store a relay runs on, chosen at start: SQLite in its data folder
//! or a PostgreSQL database. One type, so the relay and its connections
//! are built once for both.

use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use tokio::sync::{broadcast, oneshot};

use crate::mailbox::MailboxError;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::storage::{
    DocRecord, Loaded, LogChange, Storage, StoreError, StoreEvent, WriteJob, WriteResult,
};

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

    async fn account_log(&self, account: AccountId) -> Result<Vec<Signed>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.account_log(account).await,
            AnyStore::Postgres(s) => s.account_log(account).await,
        }
    }

    async fn doc_record(&self, doc: DocId) -> Result<Option<DocRecord>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.doc_record(doc).await,
            AnyStore::Postgres(s) => s.doc_record(doc).await,
        }
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        match self {
            AnyStore::Sqlite(s) => s.events(),
            AnyStore::Postgres(s) => s.events(),
        }
    }

    fn is_shared(&self) -> bool {
        match self {
            AnyStore::Sqlite(s) => s.is_shared(),
            AnyStore::Postgres(s) => s.is_shared(),
        }
    }

    async fn log_version(&self) -> Result<u64, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.log_version().await,
            AnyStore::Postgres(s) => s.log_version().await,
        }
    }

    async fn log_changes(&self, version: u64) -> Result<(Vec<LogChange>, u64), StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.log_changes(version).await,
            AnyStore::Postgres(s) => s.log_changes(version).await,
        }
    }

    async fn mailbox_put(
        &self,
        mailbox: [u8; 16],
        slot: u8,
        msg: Vec<u8>,
    ) -> Result<(), MailboxError> {
        match self {
            AnyStore::Sqlite(s) => s.mailbox_put(mailbox, slot, msg).await,
            AnyStore::Postgres(s) => s.mailbox_put(mailbox, slot, msg).await,
        }
    }

    async fn mailbox_take(
        &self,
        mailbox: [u8; 16],
        slot: u8,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.mailbox_take(mailbox, slot).await,
            AnyStore::Postgres(s) => s.mailbox_take(mailbox, slot).await,
        }
    }

    fn mailbox_changed(&self) -> &tokio::sync::Notify {
        match self {
            AnyStore::Sqlite(s) => s.mailbox_changed(),
            AnyStore::Postgres(s) => s.mailbox_changed(),
        }
    }

    async fn heads(&self, docs: Vec<DocId>) -> Result<Vec<(DocId, u64)>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.heads(docs).await,
            AnyStore::Postgres(s) => s.heads(docs).await,
        }
    }

    async fn device_account(&self, device: DeviceId) -> Result<Option<AccountId>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.device_account(device).await,
            AnyStore::Postgres(s) => s.device_account(device).await,
        }
    }

    async fn member_docs(&self, account: AccountId) -> Result<Vec<DocId>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.member_docs(account).await,
            AnyStore::Postgres(s) => s.member_docs(account).await,
        }
    }

    async fn owner_usage(&self, owner: AccountId) -> Result<u64, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.owner_usage(owner).await,
            AnyStore::Postgres(s) => s.owner_usage(owner).await,
        }
    }

    async fn cursor(&self) -> Result<u64, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.cursor().await,
            AnyStore::Postgres(s) => s.cursor().await,
        }
    }

    async fn stored_bytes(&self) -> Result<u64, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.stored_bytes().await,
            AnyStore::Postgres(s) => s.stored_bytes().await,
        }
    }
}
