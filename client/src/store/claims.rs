//! Claims: changes the relay acknowledged, by document and hash. This
//! device queues its own for the account's other devices (sent with the
//! audit trail), and keeps theirs until it holds each change; wants: the
//! claimed changes it was not served, asked of the device that made them.
//! See `sync::claims` for why.

use casebook_shared::ids::{DeviceId, DocId};
use rusqlite::params;

use super::{Store, StoreError};

/// A change hash, as Automerge names a change.
pub type Hash = [u8; 32];

fn damaged() -> StoreError {
    StoreError::Damaged("a claim row is malformed".into())
}

impl Store {
    /// The payload of a queued change (not an access-log row), opened.
    pub fn outbox_change(
        &self,
        id: i64,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT env_id, payload FROM outbox WHERE id = ?1 AND kind != 0")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some((env_id, payload)) = row else {
            return Ok(None);
        };
        let env_id: [u8; 24] = env_id
            .try_into()
            .map_err(|_| StoreError::Damaged("an outbox row is malformed".into()))?;
        Ok(Some(self.unseal("outbox", &env_id, &payload)?))
    }

    /// The id of the queued change sent under envelope id `env_id`.
    pub fn outbox_id_of(&self, env_id: &[u8; 24]) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT id FROM outbox WHERE env_id = ?1 AND kind != 0")?
            .query_row([&env_id[..]], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e.into()),
            })
    }

    /// Queues changes of this device's the relay acknowledged, to tell.
    pub fn queue_claims(&self, doc: &DocId, hashes: &[Hash]) -> Result<(), StoreError> {
        for h in hashes {
            self.execute(
                "INSERT OR IGNORE INTO claims_out(doc, hash) VALUES (?1, ?2)",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    /// Up to `limit` queued claims, to tell.
    pub fn claims_to_tell(&self, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT doc, hash FROM claims_out ORDER BY doc, hash LIMIT ?1",
            limit,
        )
    }

    /// Rows of (document, hash) that `sql` selects, at most `limit`.
    fn pairs(&self, sql: &str, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (doc, hash) = r?;
            out.push((
                DocId(doc.try_into().map_err(|_| damaged())?),
                hash.try_into().map_err(|_| damaged())?,
            ));
        }
        Ok(out)
    }

    /// Claims the relay has taken in an envelope: told.
    pub fn claims_told(&self, told: &[(DocId, Hash)]) -> Result<(), StoreError> {
        for (doc, h) in told {
            self.execute(
                "DELETE FROM claims_out WHERE doc = ?1 AND hash = ?2",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    /// Keeps claims another device of the account made.
    pub fn keep_claims(
        &self,
        device: &DeviceId,
        claims: &[(DocId, Hash)],
    ) -> Result<(), StoreError> {
        for (doc, h) in claims {
            self.execute(
                "INSERT OR IGNORE INTO claims_in(doc, hash, device) VALUES (?1, ?2, ?3)",
                params![&doc.0[..], &h[..], &device.0[..]],
            )?;
        }
        Ok(())
    }

    /// Every claim kept, by document: hash and the device that made it.
    pub fn kept_claims(&self) -> Result<Vec<(DocId, Hash, DeviceId)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc, hash, device FROM claims_in ORDER BY doc")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (doc, hash, device) = r?;
            out.push((
                DocId(doc.try_into().map_err(|_| damaged())?),
                hash.try_into().map_err(|_| damaged())?,
                DeviceId(device.try_into().map_err(|_| damaged())?),
            ));
        }
        Ok(out)
    }

    /// Drops a kept claim, and the want of it: the change is here, or no
    /// longer anyone's due.
    pub fn drop_claim(&self, doc: &DocId, hash: &Hash) -> Result<(), StoreError> {
        for table in ["claims_in", "wants_out"] {
            self.execute(
                &format!("DELETE FROM {table} WHERE doc = ?1 AND hash = ?2"),
                params![&doc.0[..], &hash[..]],
            )?;
        }
        Ok(())
    }

    /// Queues a want of a claimed change, unless it was asked for already.
    pub fn queue_want(&self, doc: &DocId, hash: &Hash) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO wants_out(doc, hash) VALUES (?1, ?2)",
            params![&doc.0[..], &hash[..]],
        )?;
        Ok(())
    }

    /// Up to `limit` wants not asked for yet.
    pub fn wants_to_tell(&self, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT doc, hash FROM wants_out WHERE told = 0 ORDER BY doc, hash LIMIT ?1",
            limit,
        )
    }

    /// Wants the relay has taken in an envelope: asked for.
    pub fn wants_told(&self, told: &[(DocId, Hash)]) -> Result<(), StoreError> {
        for (doc, h) in told {
            self.execute(
                "UPDATE wants_out SET told = 1 WHERE doc = ?1 AND hash = ?2",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    /// Keeps what another device of the account asked of this one.
    pub fn keep_wants(&self, wants: &[(DocId, Hash)]) -> Result<(), StoreError> {
        for (doc, h) in wants {
            self.execute(
                "INSERT OR IGNORE INTO wants_in(doc, hash) VALUES (?1, ?2)",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    /// Everything asked of this device and not answered yet; answering
    /// takes them all.
    pub fn take_wants(&self) -> Result<Vec<(DocId, Hash)>, StoreError> {
        let out = self.pairs(
            "SELECT doc, hash FROM wants_in ORDER BY doc LIMIT ?1",
            i64::MAX as usize,
        )?;
        self.execute("DELETE FROM wants_in", [])?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_queue_until_told_and_are_kept_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        let (a, b) = (DocId([1; 16]), DocId([2; 16]));
        store.queue_claims(&a, &[[7; 32], [8; 32]]).unwrap();
        store.queue_claims(&a, &[[7; 32]]).unwrap();
        store.queue_claims(&b, &[[9; 32]]).unwrap();
        let all = store.claims_to_tell(10).unwrap();
        assert_eq!(all, [(a, [7; 32]), (a, [8; 32]), (b, [9; 32])]);
        assert_eq!(store.claims_to_tell(1).unwrap().len(), 1);
        store.claims_told(&all[..2]).unwrap();
        assert_eq!(store.claims_to_tell(10).unwrap(), [(b, [9; 32])]);

        let dev = DeviceId([3; 32]);
        store.keep_claims(&dev, &all).unwrap();
        store.keep_claims(&dev, &all).unwrap();
        assert_eq!(store.kept_claims().unwrap().len(), 3);
        store.drop_claim(&a, &[7; 32]).unwrap();
        let kept = store.kept_claims().unwrap();
        assert_eq!(kept, [(a, [8; 32], dev), (b, [9; 32], dev)]);
    }

    #[test]
    fn a_want_is_asked_once_and_dropped_with_its_claim() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        let a = DocId([1; 16]);
        store
            .keep_claims(&DeviceId([3; 32]), &[(a, [7; 32])])
            .unwrap();
        store.queue_want(&a, &[7; 32]).unwrap();
        assert_eq!(store.wants_to_tell(10).unwrap(), [(a, [7; 32])]);
        store.wants_told(&[(a, [7; 32])]).unwrap();
        store.queue_want(&a, &[7; 32]).unwrap();
        assert!(store.wants_to_tell(10).unwrap().is_empty(), "asked once");
        store.drop_claim(&a, &[7; 32]).unwrap();
        store.queue_want(&a, &[7; 32]).unwrap();
        assert_eq!(
            store.wants_to_tell(10).unwrap().len(),
            1,
            "a new loss asks again"
        );

        store.keep_wants(&[(a, [7; 32]), (a, [7; 32])]).unwrap();
        assert_eq!(store.take_wants().unwrap(), [(a, [7; 32])]);
        assert!(store.take_wants().unwrap().is_empty());
    }
}
