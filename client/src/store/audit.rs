//! The audit trail's rows: this device's chain, sealed like every value,
//! and the entries the account's other devices sent.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{Sealed, Store, StoreError};

impl Store {
    /// Appends a sealed audit record.
    pub fn push_audit(&self, record: &[u8]) -> Result<(), StoreError> {
        let n: i64 = self.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM audit", [], |r| {
            r.get(0)
        })?;
        self.execute(
            "INSERT INTO audit(id, sealed) VALUES (?1, ?2)",
            params![n, self.seal("audit", &n.to_be_bytes(), record)],
        )?;
        Ok(())
    }

    /// Keeps an audit record another device of the account wrote; a record
    /// already held (same device and sequence) is left as it is.
    pub fn put_remote_audit(
        &self,
        device: &[u8; 32],
        seq: u64,
        record: &[u8],
    ) -> Result<bool, StoreError> {
        let mut key = device.to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        let n = self.execute(
            "INSERT OR IGNORE INTO audit_remote(device, seq, sealed) VALUES (?1, ?2, ?3)",
            params![
                &device[..],
                seq as i64,
                self.seal("audit_remote", &key, record)
            ],
        )?;
        Ok(n == 1)
    }

    /// Every record other devices wrote, by device and sequence.
    pub fn remote_audit(&self) -> Result<Vec<Sealed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device, seq, sealed FROM audit_remote ORDER BY device, seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (device, seq, sealed) = r?;
            let mut key = device;
            key.extend_from_slice(&(seq as u64).to_be_bytes());
            out.push(self.unseal("audit_remote", &key, &sealed)?);
        }
        Ok(out)
    }

    /// The devices whose entries held here skip a number: the relay lost
    /// some of them (restored from an older copy, say) after this device
    /// had taken later ones.
    pub fn remote_audit_gaps(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device FROM audit_remote GROUP BY device
             HAVING MIN(seq) != 1 OR MAX(seq) != COUNT(*)",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(
                r?.try_into()
                    .map_err(|_| StoreError::Damaged("an audit row is malformed".into()))?,
            );
        }
        Ok(out)
    }

    /// The newest audit record, if any.
    pub fn last_audit(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .query_row(
                "SELECT id, sealed FROM audit ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, sealed)| self.unseal("audit", &id.to_be_bytes(), &sealed))
            .transpose()
    }

    /// Every audit record, oldest first.
    pub fn audit(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, sealed FROM audit ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, sealed) = r?;
            out.push(self.unseal("audit", &id.to_be_bytes(), &sealed)?);
        }
        Ok(out)
    }

    /// Drops this device's own entries after position `n` (to write them
    /// again after entries a restored device learns it had written).
    pub fn truncate_audit_after(&self, n: u64) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM audit WHERE id > ?1",
            [i64::try_from(n).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }
}
