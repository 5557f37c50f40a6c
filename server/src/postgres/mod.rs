//! The PostgreSQL backend, for a relay that outgrows one machine: the same
//! tables and the same contract as SQLite ([`crate::sqlite`]), reads from a
//! small connection pool, writes through one group-committing writer
//! ([`write`]), the schema made and upgraded only by `casebook-relay
//! migrate` ([`schema`]).
//!
//! The connection is TLS when the relay is given the database's certificate
//! authority ([`db`]); otherwise plain, for a database on the same machine
//! (a Unix socket: `postgres://user@%2Frun%2Fpostgresql/db`) or a private
//! network.

mod db;
mod index;
mod listen;
pub mod schema;
mod statements;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex};

use casebook_shared::codec;
use casebook_shared::frames::Stored;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{Notify, broadcast, oneshot};

use crate::mailbox::{self, MailboxError};
use crate::storage::{
    DocRecord, Jobs, Loaded, LogChange, Storage, StoreError, StoreEvent, WriteJob, WriteResult,
};
pub use db::Db;
pub use schema::Migrated;
use write::Writer;

/// Connections kept for reads (fetches, readiness probes).
const READ_POOL: usize = 8;

/// Taken by a pairing mailbox put, so two nodes count live mailboxes alike.
const MAILBOX_LOCK: i64 = 0x6d61_696c_626f_7865; // "mailboxe"

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    jobs: Jobs,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What other nodes wrote, heard by the listening task.
    events: broadcast::Sender<StoreEvent>,
    /// The receiver made before the first `LISTEN`, for the first caller
    /// of `events`: nothing announced while the relay loads is lost.
    first_events: Mutex<Option<broadcast::Receiver<StoreEvent>>>,
    listener: tokio::task::JoinHandle<()>,
    /// Woken by a pairing message put through this node or another.
    mailbox: Arc<Notify>,
    node: u64,
}

/// Creates the relay's schema in the database at `url`, or upgrades it.
pub async fn migrate(url: &str, ca: Option<&Path>) -> Result<Migrated, StoreError> {
    let mut client = Db::new(url, ca)?.client().await?;
    schema::migrate(&mut client).await
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` address; over
    /// TLS verified against `ca` if given), checks that its schema is this
    /// relay's, and starts the writer.
    pub async fn open(url: &str, ca: Option<&Path>) -> Result<PgStore, StoreError> {
        let db = Db::new(url, ca)?;
        let mut client = db.client().await?;
        schema::check(&client).await?;
        // See `numbering::sequence_floor`. Raised only, and with every other
        // node's uploads held back meanwhile (they take numbers from the
        // same sequence), so it never moves below one handed out.
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE envelopes IN EXCLUSIVE MODE")
            .await?;
        tx.execute(
            "SELECT setval('envelope_seq', $1)
             WHERE $1 > (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM envelope_seq)",
            &[&(crate::numbering::sequence_floor() as i64)],
        )
        .await?;
        tx.commit().await?;
        drop(client);
        let node = u64::from_be_bytes(casebook_shared::crypto::random_bytes());
        // Listening before anything is read, so nothing written by another
        // node between the read and the first notice is missed.
        let (events, first_events) = broadcast::channel(4096);
        let (ready, listening) = oneshot::channel();
        let mailbox = Arc::new(Notify::new());
        let listener = tokio::spawn(listen::run(
            db.clone(),
            node,
            events.clone(),
            mailbox.clone(),
            ready,
        ));
        match listening.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(StoreError::Stopped),
        }
        let writer = Writer::open(db.clone(), node).await?;
        let manager = Manager::from_config(
            db.config,
            db.tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(READ_POOL)
            .build()
            .map_err(|e| StoreError::Schema(format!("connection pool: {e}")))?;
        let (jobs, rx) = Jobs::new();
        let task = tokio::spawn(writer.run(rx));
        Ok(PgStore {
            pool,
            jobs,
            writer: Mutex::new(Some(task)),
            events,
            first_events: Mutex::new(Some(first_events)),
            listener,
            mailbox,
            node,
        })
    }

    fn writing(&self) -> bool {
        self.jobs.is_open()
            && self
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|w| !w.is_finished())
    }
}

/// A read-only transaction that sees one snapshot of the database: what
/// several statements read belongs together (a log and the logs it names,
/// a snapshot and the changes it did not replace).
async fn snapshot(
    c: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    Ok(c.build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

fn blob<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Damaged("an id column has the wrong length".into()))
}

/// A stored log: its owner's id (account or document) and its entries.
type OwnedLog = (Vec<u8>, Vec<Signed>);

async fn load_logs(
    client: &tokio_postgres::Transaction<'_>,
    sql: &str,
    table: &str,
) -> Result<Vec<OwnedLog>, StoreError> {
    let mut out: Vec<OwnedLog> = Vec::new();
    for row in client.query(sql, &[]).await? {
        let key: Vec<u8> = row.get(0);
        let entry: &[u8] = row.get(1);
        let signed: Signed =
            codec::decode(entry).map_err(|e| StoreError::Damaged(format!("{table}: {e}")))?;
        match out.last_mut() {
            Some((k, v)) if *k == key => v.push(signed),
            _ => out.push((key, vec![signed])),
        }
    }
    Ok(out)
}

/// Numbers handed out only rise: the sequence remembers the highest.
async fn cursor(c: &impl tokio_postgres::GenericClient) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM envelope_seq",
            &[],
        )
        .await?
        .get(0);
    Ok(n as u64)
}

/// Every log and head, read in one snapshot `c` (at start, and by a
/// migration that indexes what an older schema did not).
pub(crate) async fn load_in(c: &tokio_postgres::Transaction<'_>) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let accounts = "SELECT account, entry FROM account_entries ORDER BY account, seq";
    for (k, v) in load_logs(c, accounts, "account_entries").await? {
        loaded.accounts.push((AccountId(blob(k)?), v));
    }
    let docs = "SELECT doc, entry FROM access_entries ORDER BY doc, seq";
    for (k, v) in load_logs(c, docs, "access_entries").await? {
        loaded.docs.push((DocId(blob(k)?), v));
    }
    for r in c
        .query("SELECT doc, MAX(seq) FROM envelopes GROUP BY doc", &[])
        .await?
    {
        loaded
            .heads
            .push((DocId(blob(r.get(0))?), r.get::<_, i64>(1) as u64));
    }
    for r in c
        .query(
            "SELECT doc, SUM(n)::BIGINT FROM (
                 SELECT doc, octet_length(bytes) AS n FROM envelopes
                 UNION ALL SELECT doc, octet_length(bytes) FROM snapshots) AS sizes
             GROUP BY doc",
            &[],
        )
        .await?
    {
        loaded
            .doc_bytes
            .push((DocId(blob(r.get(0))?), r.get::<_, i64>(1) as u64));
    }
    loaded.cursor = cursor(c).await?;
    for r in c
        .query("SELECT doc, readers, head FROM disposed", &[])
        .await?
    {
        let doc = DocId(blob(r.get(0))?);
        let readers: Vec<AccountId> = codec::decode(r.get::<_, &[u8]>(1))
            .map_err(|e| StoreError::Damaged(format!("disposed: {e}")))?;
        loaded.heads.push((doc, r.get::<_, i64>(2) as u64));
        loaded.disposed.push((doc, readers));
    }
    Ok(loaded)
}

impl PgStore {
    /// Deletes all but the newest `keep` rows of the log-change list (the
    /// writer does so every so often with `write::KEEP_LOG_CHANGES`).
    pub async fn prune_log_changes(&self, keep: u64) -> Result<u64, StoreError> {
        write::prune(&**self.pool.get().await?, keep).await
    }
}

impl Storage for PgStore {
    async fn load(&self) -> Result<Loaded, StoreError> {
        let mut client = self.pool.get().await?;
        let c = snapshot(&mut client).await?;
        load_in(&c).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writing() {
            return Err(StoreError::Stopped);
        }
        self.pool.get().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    fn submit(&self, job: WriteJob) -> oneshot::Receiver<WriteResult> {
        self.jobs.submit(job)
    }

    async fn fetch(
        &self,
        docs: Vec<(DocId, u64)>,
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, bool), StoreError> {
        let mut client = self.pool.get().await?;
        let c = snapshot(&mut client).await?;
        let snapshot = c
            .prepare_cached("SELECT covers, bytes FROM snapshots WHERE doc = $1")
            .await?;
        // Only the rows that start within what is left of the page (`$3`),
        // and the first that does not, which tells the page is full (the
        // first two at least: a first row larger than the page still comes
        // alone, and the second then says there is more). The server still
        // sums the sizes of the rest of the history; it sends only these.
        let envelopes = c
            .prepare_cached(
                "SELECT seq, bytes FROM (
                     SELECT seq, bytes, SUM(octet_length(bytes)) OVER (ORDER BY seq)
                                        - octet_length(bytes) AS before,
                            ROW_NUMBER() OVER (ORDER BY seq) AS n
                     FROM envelopes WHERE doc = $1 AND seq > $2 AND octet_length(bytes) > 0
                 ) AS page WHERE before <= $3 OR n <= 2 ORDER BY seq",
            )
            .await?;
        let mut items = Vec::new();
        let mut size = 0usize;
        for (doc, since) in docs {
            let d = &doc.0[..];
            let mut since = since;
            if let Some(r) = c.query_opt(&snapshot, &[&d]).await? {
                let covers = r.get::<_, i64>(0) as u64;
                if covers > since {
                    let bytes: Vec<u8> = r.get(1);
                    if size > 0 && size + bytes.len() > max_bytes {
                        return Ok((items, true));
                    }
                    size += bytes.len();
                    since = covers;
                    items.push(Stored {
                        doc,
                        seq: covers,
                        envelope: bytes,
                    });
                }
            }
            let left = i64::try_from(max_bytes.saturating_sub(size)).unwrap_or(i64::MAX);
            for r in c.query(&envelopes, &[&d, &(since as i64), &left]).await? {
                let bytes: Vec<u8> = r.get(1);
                if size > 0 && size + bytes.len() > max_bytes {
                    return Ok((items, true));
                }
                size += bytes.len();
                items.push(Stored {
                    doc,
                    seq: r.get::<_, i64>(0) as u64,
                    envelope: bytes,
                });
            }
        }
        Ok((items, false))
    }

    async fn close(&self) {
        self.jobs.close();
        let task = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        self.listener.abort();
        self.pool.close();
    }

    async fn account_log(&self, account: AccountId) -> Result<Vec<Signed>, StoreError> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT entry FROM account_entries WHERE account = $1 ORDER BY seq",
                &[&&account.0[..]],
            )
            .await?;
        rows.iter()
            .map(|r| {
                codec::decode(r.get::<_, &[u8]>(0))
                    .map_err(|e| StoreError::Damaged(format!("account_entries: {e}")))
            })
            .collect()
    }

    async fn doc_record(&self, doc: DocId) -> Result<Option<DocRecord>, StoreError> {
        let mut client = self.pool.get().await?;
        let c = snapshot(&mut client).await?;
        let d = &doc.0[..];
        let rows = c
            .query(
                "SELECT entry FROM access_entries WHERE doc = $1 ORDER BY seq",
                &[&d],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut rec = DocRecord::default();
        for r in &rows {
            rec.log.push(
                codec::decode(r.get::<_, &[u8]>(0))
                    .map_err(|e| StoreError::Damaged(format!("access_entries: {e}")))?,
            );
        }
        let r = c
            .query_one(
                "SELECT COALESCE((SELECT MAX(seq) FROM envelopes WHERE doc = $1), 0),
                        (COALESCE((SELECT SUM(octet_length(bytes)) FROM envelopes WHERE doc = $1), 0)
                       + COALESCE((SELECT SUM(octet_length(bytes)) FROM snapshots WHERE doc = $1), 0))::BIGINT",
                &[&d],
            )
            .await?;
        rec.head = r.get::<_, i64>(0) as u64;
        rec.bytes = r.get::<_, i64>(1) as u64;
        if let Some(r) = c
            .query_opt("SELECT readers, head FROM disposed WHERE doc = $1", &[&d])
            .await?
        {
            rec.disposed = Some(
                codec::decode(r.get::<_, &[u8]>(0))
                    .map_err(|e| StoreError::Damaged(format!("disposed: {e}")))?,
            );
            rec.head = rec.head.max(r.get::<_, i64>(1) as u64);
        }
        Ok(Some(rec))
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Some(first.unwrap_or_else(|| self.events.subscribe()))
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn log_version(&self) -> Result<u64, StoreError> {
        let v: i64 = self
            .pool
            .get()
            .await?
            .query_one("SELECT COALESCE(MAX(version), 0) FROM log_changes", &[])
            .await?
            .get(0);
        Ok(v as u64)
    }

    async fn log_changes(&self, version: u64) -> Result<(Vec<LogChange>, u64), StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT version, account, doc FROM log_changes WHERE version > $1 ORDER BY version",
                &[&(version as i64)],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut upto = version;
        // Pruned past the version asked for: what changed in between is
        // not listed any more.
        let oldest: Option<i64> = client
            .query_one("SELECT MIN(version) FROM log_changes", &[])
            .await?
            .get(0);
        if oldest.is_some_and(|o| o as u64 > version + 1) {
            out.push(LogChange::Lost);
        }
        for r in rows {
            upto = upto.max(r.get::<_, i64>(0) as u64);
            match (
                r.get::<_, Option<Vec<u8>>>(1),
                r.get::<_, Option<Vec<u8>>>(2),
            ) {
                (Some(a), None) => out.push(LogChange::Account(AccountId(blob(a)?))),
                (None, Some(d)) => out.push(LogChange::Access(DocId(blob(d)?))),
                _ => {
                    return Err(StoreError::Damaged(
                        "a log_changes row names no one log".into(),
                    ));
                }
            }
        }
        Ok((out, upto))
    }

    async fn mailbox_put(
        &self,
        mailbox: [u8; 16],
        slot: u8,
        msg: Vec<u8>,
    ) -> Result<(), MailboxError> {
        let mut c = self.pool.get().await.map_err(StoreError::from)?;
        let put = async {
            let tx = c.transaction().await?;
            // One put at a time, so the count of live mailboxes holds.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAILBOX_LOCK])
                .await?;
            tx.execute(
                "DELETE FROM mailbox_slots WHERE created < now() - make_interval(secs => $1)",
                &[&(mailbox::TTL.as_secs_f64())],
            )
            .await?;
            let id = &mailbox[..];
            let known: bool = tx
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM mailbox_slots WHERE mailbox = $1)",
                    &[&id],
                )
                .await?
                .get(0);
            if !known {
                let live: i64 = tx
                    .query_one("SELECT count(DISTINCT mailbox) FROM mailbox_slots", &[])
                    .await?
                    .get(0);
                if live as usize >= mailbox::MAX_MAILBOXES {
                    return Ok(Err(MailboxError::Full));
                }
            }
            // A mailbox lives from its first message, whichever slot.
            let put = tx
                .execute(
                    "INSERT INTO mailbox_slots(mailbox, slot, msg, created)
                     SELECT $1, $2, $3,
                            COALESCE((SELECT MIN(created) FROM mailbox_slots WHERE mailbox = $1), now())
                     ON CONFLICT DO NOTHING",
                    &[&id, &i16::from(slot), &msg],
                )
                .await?;
            if put == 0 {
                return Ok(Err(MailboxError::Taken));
            }
            let notice = format!("SELECT pg_notify('{}', $1)", listen::CHANNEL);
            tx.execute(&notice, &[&listen::Announce::Mailbox.payload(self.node)])
                .await?;
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(Ok(()))
        };
        let r = put.await.map_err(StoreError::from)?;
        if r.is_ok() {
            self.mailbox.notify_waiters();
        }
        r
    }

    async fn mailbox_take(
        &self,
        mailbox: [u8; 16],
        slot: u8,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .pool
            .get()
            .await?
            .query_opt(
                "UPDATE mailbox_slots s SET msg = NULL
                 FROM (SELECT mailbox, slot, msg FROM mailbox_slots
                       WHERE mailbox = $1 AND slot = $2 AND msg IS NOT NULL
                         AND created >= now() - make_interval(secs => $3)
                       FOR UPDATE) AS old
                 WHERE s.mailbox = old.mailbox AND s.slot = old.slot
                 RETURNING old.msg",
                &[&&mailbox[..], &i16::from(slot), &mailbox::TTL.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    fn mailbox_changed(&self) -> &Notify {
        &self.mailbox
    }

    async fn device_account(&self, device: DeviceId) -> Result<Option<AccountId>, StoreError> {
        index::device_account(&**self.pool.get().await?, device).await
    }

    async fn member_docs(&self, account: AccountId) -> Result<Vec<DocId>, StoreError> {
        index::member_docs(&**self.pool.get().await?, account).await
    }

    async fn owner_usage(&self, owner: AccountId) -> Result<u64, StoreError> {
        index::owner_usage(&**self.pool.get().await?, owner).await
    }

    async fn cursor(&self) -> Result<u64, StoreError> {
        cursor(&**self.pool.get().await?).await
    }

    async fn stored_bytes(&self) -> Result<u64, StoreError> {
        index::stored_bytes(&**self.pool.get().await?).await
    }

    async fn heads(&self, docs: Vec<DocId>) -> Result<Vec<(DocId, u64)>, StoreError> {
        let ids: Vec<&[u8]> = docs.iter().map(|d| &d.0[..]).collect();
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT doc, MAX(seq) FROM (
                     SELECT doc, seq FROM envelopes WHERE doc = ANY($1)
                     UNION ALL SELECT doc, head FROM disposed WHERE doc = ANY($1)) AS h
                 GROUP BY doc",
                &[&ids],
            )
            .await?;
        rows.into_iter()
            .map(|r| Ok((DocId(blob(r.get(0))?), r.get::<_, i64>(1) as u64)))
            .collect()
    }
}
