//! The statements the PostgreSQL writer runs, prepared once per
//! connection.

use tokio_postgres::{Client, Statement};

use super::listen;

/// The statements the writer runs, prepared once per connection.
pub(super) struct Statements {
    pub(super) lock: Statement,
    pub(super) notify: Statement,
    pub(super) access_len: Statement,
    pub(super) account_len: Statement,
    pub(super) account_changed: Statement,
    pub(super) doc_changed: Statement,
    pub(super) append_account: Statement,
    pub(super) append_access: Statement,
    pub(super) older_snapshot: Statement,
    pub(super) put_snapshot: Statement,
    pub(super) covered_bytes: Statement,
    pub(super) prune_covered: Statement,
    pub(super) is_disposed: Statement,
    pub(super) insert_envelope: Statement,
    pub(super) seqs_before: Statement,
    pub(super) stored_envelope: Statement,
    pub(super) device_owner: Statement,
    pub(super) add_device: Statement,
    pub(super) add_owner: Statement,
    pub(super) add_member: Statement,
}

impl Statements {
    pub(super) async fn prepare(c: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            lock: c.prepare("SELECT pg_advisory_xact_lock($1)").await?,
            notify: c
                .prepare(&format!("SELECT pg_notify('{}', $1)", listen::CHANNEL))
                .await?,
            account_changed: c
                .prepare("INSERT INTO log_changes(account) VALUES ($1)")
                .await?,
            doc_changed: c
                .prepare("INSERT INTO log_changes(doc) VALUES ($1)")
                .await?,
            access_len: c
                .prepare("SELECT COALESCE(MAX(seq) + 1, 0) FROM access_entries WHERE doc = $1")
                .await?,
            account_len: c
                .prepare(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM account_entries WHERE account = $1",
                )
                .await?,
            append_account: c
                .prepare(
                    "INSERT INTO account_entries(account, seq, entry) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            append_access: c
                .prepare(
                    "INSERT INTO access_entries(doc, seq, entry) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            older_snapshot: c
                .prepare("SELECT octet_length(bytes)::BIGINT FROM snapshots WHERE doc = $1 AND covers < $2")
                .await?,
            put_snapshot: c
                .prepare(
                    "INSERT INTO snapshots(doc, covers, bytes) VALUES ($1, $2, $3)
                     ON CONFLICT(doc) DO UPDATE SET covers = excluded.covers, bytes = excluded.bytes
                     WHERE excluded.covers > snapshots.covers",
                )
                .await?,
            covered_bytes: c
                .prepare(
                    "SELECT COALESCE(SUM(octet_length(bytes)), 0)::BIGINT FROM envelopes
                     WHERE doc = $1 AND seq <= $2 AND octet_length(bytes) > 0",
                )
                .await?,
            prune_covered: c
                .prepare(
                    "UPDATE envelopes SET bytes = ''::bytea
                     WHERE doc = $1 AND seq <= $2 AND octet_length(bytes) > 0",
                )
                .await?,
            is_disposed: c
                .prepare("SELECT 1 FROM disposed WHERE doc = $1")
                .await?,
            insert_envelope: c
                .prepare(
                    "INSERT INTO envelopes(doc, env_id, bytes) VALUES ($1, $2, $3)
                     ON CONFLICT(doc, env_id) DO NOTHING RETURNING seq",
                )
                .await?,
            seqs_before: c
                .prepare(
                    "SELECT (SELECT COALESCE(MAX(e.seq), 0) FROM envelopes e
                             WHERE e.doc = t.doc AND e.seq < t.seq)
                     FROM unnest($1::bytea[], $2::bigint[]) WITH ORDINALITY AS t(doc, seq, i)
                     ORDER BY t.i",
                )
                .await?,
            stored_envelope: c
                .prepare("SELECT seq, bytes FROM envelopes WHERE doc = $1 AND env_id = $2")
                .await?,
            device_owner: c
                .prepare("SELECT account FROM devices WHERE device = $1")
                .await?,
            add_device: c
                .prepare(
                    "INSERT INTO devices(device, account) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await?,
            add_owner: c
                .prepare(
                    "INSERT INTO doc_owners(doc, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await?,
            add_member: c
                .prepare(
                    "INSERT INTO doc_members(account, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await?,
        })
    }
}
