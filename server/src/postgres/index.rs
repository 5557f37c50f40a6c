//! What the store indexes of the logs, read for a relay that holds only
//! the logs in use: a device's account, an account's documents, what an
//! owner stores.

use casebook_shared::ids::{AccountId, DeviceId, DocId};
use tokio_postgres::GenericClient;

use super::blob;
use crate::storage::StoreError;

pub(super) async fn device_account(
    c: &impl GenericClient,
    device: DeviceId,
) -> Result<Option<AccountId>, StoreError> {
    let row = c
        .query_opt(
            "SELECT account FROM devices WHERE device = $1",
            &[&&device.0[..]],
        )
        .await?;
    row.map(|r| Ok(AccountId(blob(r.get(0))?))).transpose()
}

pub(super) async fn member_docs(
    c: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<DocId>, StoreError> {
    let rows = c
        .query(
            "SELECT doc FROM doc_members WHERE account = $1",
            &[&&account.0[..]],
        )
        .await?;
    rows.into_iter()
        .map(|r| Ok(DocId(blob(r.get(0))?)))
        .collect()
}

pub(super) async fn owner_usage(
    c: &impl GenericClient,
    owner: AccountId,
) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT (COALESCE((SELECT SUM(octet_length(e.bytes)) FROM doc_owners o
                               JOIN envelopes e ON e.doc = o.doc WHERE o.owner = $1), 0)
                   + COALESCE((SELECT SUM(octet_length(s.bytes)) FROM doc_owners o
                               JOIN snapshots s ON s.doc = o.doc WHERE o.owner = $1), 0))::BIGINT",
            &[&&owner.0[..]],
        )
        .await?
        .get(0);
    Ok(n as u64)
}

pub(super) async fn stored_bytes(c: &impl GenericClient) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT (COALESCE((SELECT SUM(octet_length(bytes)) FROM envelopes), 0)
                   + COALESCE((SELECT SUM(octet_length(bytes)) FROM snapshots), 0))::BIGINT",
            &[],
        )
        .await?
        .get(0);
    Ok(n as u64)
}
