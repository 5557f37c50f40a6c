//! The relay's tables in PostgreSQL, and the one way they are made and
//! upgraded: `casebook-relay migrate`. `serve` only checks the version, so
//! several nodes starting at once never race to change the schema, and a
//! node older than its database refuses to run on it rather than
//! misreading it.

use tokio_postgres::Client;

use crate::storage::{Index, StoreError};

/// The schema version this relay reads and writes.
pub const VERSION: i32 = 3;

/// Taken (for the transaction) by a migration, so two at once queue.
const MIGRATION_LOCK: i64 = 0x6361_7365_626f_6f6b; // "casebook"

/// Each version's changes, applied in order from the database's version.
const STEPS: &[&str] = &[
    // 1: the SQLite schema's tables, in PostgreSQL's types. Envelope numbers
    // come from a sequence, so they rise across nodes and never return,
    // even past envelopes since deleted with a disposed document. Every log
    // append is also a row of `log_changes`, in the same transaction: a
    // node reads what changed since the version it holds before it answers
    // from memory, so no node serves logs older than another acknowledged.
    "CREATE TABLE account_entries(
        account BYTEA NOT NULL, seq BIGINT NOT NULL, entry BYTEA NOT NULL,
        PRIMARY KEY(account, seq));
     CREATE TABLE access_entries(
        doc BYTEA NOT NULL, seq BIGINT NOT NULL, entry BYTEA NOT NULL,
        PRIMARY KEY(doc, seq));
     CREATE SEQUENCE envelope_seq;
     CREATE TABLE envelopes(
        seq BIGINT PRIMARY KEY DEFAULT nextval('envelope_seq'),
        doc BYTEA NOT NULL, env_id BYTEA NOT NULL, bytes BYTEA NOT NULL,
        UNIQUE(doc, env_id));
     ALTER SEQUENCE envelope_seq OWNED BY envelopes.seq;
     CREATE INDEX envelopes_by_doc ON envelopes(doc, seq);
     CREATE TABLE snapshots(
        doc BYTEA PRIMARY KEY, covers BIGINT NOT NULL, bytes BYTEA NOT NULL);
     CREATE TABLE disposed(
        doc BYTEA PRIMARY KEY, readers BYTEA NOT NULL, head BIGINT NOT NULL);
     CREATE TABLE log_changes(
        version BIGSERIAL PRIMARY KEY, account BYTEA, doc BYTEA);
     CREATE TABLE mailbox_slots(
        mailbox BYTEA NOT NULL, slot SMALLINT NOT NULL, msg BYTEA,
        created TIMESTAMPTZ NOT NULL, PRIMARY KEY(mailbox, slot));",
    // 2: which account lists each device, so that two nodes cannot give
    // one device to two accounts. Filled from the account logs as stored
    // (verified again) by [`migrate`].
    "CREATE TABLE devices(device BYTEA PRIMARY KEY, account BYTEA NOT NULL);",
    // 3: each document's owner (its quota's use) and, for each account,
    // the documents it is or was a member of, so a node reads them from
    // the store rather than holding every log in memory.
    "CREATE TABLE doc_owners(doc BYTEA PRIMARY KEY, owner BYTEA NOT NULL);
     CREATE INDEX doc_owners_by_owner ON doc_owners(owner);
     CREATE TABLE doc_members(
        account BYTEA NOT NULL, doc BYTEA NOT NULL, PRIMARY KEY(account, doc));",
];

/// What a migration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

/// The database's schema version: 0 where no relay schema was made yet.
async fn version(client: &impl tokio_postgres::GenericClient) -> Result<i32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('casebook_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM casebook_schema", &[])
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

/// Creates the schema or brings it up to [`VERSION`], in one transaction.
pub async fn migrate(client: &mut Client) -> Result<Migrated, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS casebook_schema(version INTEGER NOT NULL)")
        .await?;
    let from = version(&tx).await?;
    if from > VERSION {
        return Err(newer(from));
    }
    for step in &STEPS[from as usize..] {
        tx.batch_execute(step).await?;
    }
    if (1..VERSION).contains(&from) {
        index_all(&tx).await?;
    }
    tx.execute("DELETE FROM casebook_schema", &[]).await?;
    tx.execute(
        "INSERT INTO casebook_schema(version) VALUES ($1)",
        &[&VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(Migrated { from, to: VERSION })
}

/// Fills the indexes a database from before them lacks, from its logs as
/// stored, verified again.
async fn index_all(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let index = Index::of(super::load_in(tx).await?)?;
    for (device, account) in &index.devices {
        tx.execute(
            "INSERT INTO devices(device, account) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&&device.0[..], &&account.0[..]],
        )
        .await?;
    }
    for (doc, owner, members) in &index.docs {
        tx.execute(
            "INSERT INTO doc_owners(doc, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&&doc.0[..], &&owner.0[..]],
        )
        .await?;
        for m in members {
            tx.execute(
                "INSERT INTO doc_members(account, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&&m.0[..], &&doc.0[..]],
            )
            .await?;
        }
    }
    tracing::info!(
        devices = index.devices.len(),
        docs = index.docs.len(),
        "indexed the devices, owners and members of every stored log"
    );
    Ok(())
}

/// Refuses a database whose schema is not exactly [`VERSION`].
pub async fn check(client: &Client) -> Result<(), StoreError> {
    match version(client).await? {
        VERSION => Ok(()),
        0 => Err(StoreError::Schema(
            "the database has no relay schema yet: run `casebook-relay migrate` with the same --store first".into(),
        )),
        v if v > VERSION => Err(newer(v)),
        v => Err(StoreError::Schema(format!(
            "the database's schema is version {v}, older than this relay's {VERSION}: run `casebook-relay migrate` with the same --store"
        ))),
    }
}

fn newer(v: i32) -> StoreError {
    StoreError::Schema(format!(
        "the database's schema is version {v}, newer than this relay knows ({VERSION}): run a relay as new as the one that migrated it"
    ))
}
