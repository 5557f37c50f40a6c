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

    /// Queues the newest changes of this device's to `doc` the relay
    /// acknowledged, to tell, in place of those queued before: a device's
    /// changes follow one another, so holding the newest is holding all.
    pub fn queue_claims(&self, doc: &DocId, hashes: &[Hash]) -> Result<(), StoreError> {
        if hashes.is_empty() {
            return Ok(());
        }
        self.execute("DELETE FROM claims_out WHERE doc = ?1", [&doc.0[..]])?;
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

    /// Keeps claims another device of the account made, told in the
    /// envelope at `at`: its newest per document (an envelope fetched again
    /// tells nothing newer than what a later one told).
    pub fn keep_claims(
        &self,
        device: &DeviceId,
        claims: &[(DocId, Hash)],
        at: u64,
    ) -> Result<(), StoreError> {
        for (doc, h) in claims {
            self.execute(
                "INSERT INTO claims_in(doc, device, hash, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(doc, device) DO UPDATE SET hash = excluded.hash,
                 at = excluded.at, fresh = 1 WHERE excluded.at > claims_in.at",
                params![&doc.0[..], &device.0[..], &h[..], at as i64],
            )?;
        }
        Ok(())
    }

    /// A pull begins: the claims kept so far were stored on the relay
    /// before its listing, so it may judge them (see `sync::claims`).
    pub fn settle_claims(&self) -> Result<(), StoreError> {
        self.execute("UPDATE claims_in SET fresh = 0 WHERE fresh = 1", [])?;
        Ok(())
    }

    /// Whether claims were kept since the last pull began.
    pub fn has_fresh_claims(&self) -> Result<bool, StoreError> {
        Ok(self.query_row(
            "SELECT EXISTS(SELECT 1 FROM claims_in WHERE fresh = 1)",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every claim kept before this pull began, by document: hash and the
    /// device that made it.
    pub fn kept_claims(&self) -> Result<Vec<(DocId, Hash, DeviceId)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc, hash, device FROM claims_in WHERE fresh = 0 ORDER BY doc",
        )?;
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

    /// Drops the wants of `doc` that no kept claim names: what its
    /// changes built on has arrived.
    pub fn forget_met_wants(&self, doc: &DocId) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM wants_out WHERE doc = ?1
             AND hash NOT IN (SELECT hash FROM claims_in WHERE doc = ?1)",
            [&doc.0[..]],
        )?;
        Ok(())
    }

    /// Forgets every claim and want of a document deleted here.
    pub fn forget_claims(&self, doc: &DocId) -> Result<(), StoreError> {
        for table in ["claims_out", "claims_in", "wants_out", "wants_in"] {
            self.execute(&format!("DELETE FROM {table} WHERE doc = ?1"), [&doc.0[..]])?;
        }
        Ok(())
    }

    /// Keeps what another device of the account asked of this one; a want
    /// kept before (answered or not) is not kept again, however often the
    /// envelope asking it is served.
    pub fn keep_wants(&self, wants: &[(DocId, Hash)]) -> Result<(), StoreError> {
        for (doc, h) in wants {
            self.execute(
                "INSERT OR IGNORE INTO wants_in(doc, hash) VALUES (?1, ?2)",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    /// Up to `limit` wants asked of this device and not answered yet.
    pub fn wants_to_answer(&self, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT doc, hash FROM wants_in WHERE answered = 0 ORDER BY doc, hash LIMIT ?1",
            limit,
        )
    }

    /// Wants answered: never answered again.
    pub fn wants_answered(&self, done: &[(DocId, Hash)]) -> Result<(), StoreError> {
        for (doc, h) in done {
            self.execute(
                "UPDATE wants_in SET answered = 1 WHERE doc = ?1 AND hash = ?2",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
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
        store.queue_claims(&a, &[[7; 32]]).unwrap();
        store.queue_claims(&a, &[[6; 32], [8; 32]]).unwrap();
        store.queue_claims(&b, &[[9; 32]]).unwrap();
        let all = store.claims_to_tell(10).unwrap();
        assert_eq!(
            all,
            [(a, [6; 32]), (a, [8; 32]), (b, [9; 32])],
            "the newest in place of the older"
        );
        assert_eq!(store.claims_to_tell(1).unwrap().len(), 1);
        store.claims_told(&all[..2]).unwrap();
        assert_eq!(store.claims_to_tell(10).unwrap(), [(b, [9; 32])]);

        let (dev, other) = (DeviceId([3; 32]), DeviceId([4; 32]));
        store
            .keep_claims(&dev, &[(a, [7; 32]), (b, [9; 32])], 10)
            .unwrap();
        store.keep_claims(&other, &[(a, [5; 32])], 11).unwrap();
        assert!(
            store.kept_claims().unwrap().is_empty(),
            "judged from the next pull"
        );
        store.settle_claims().unwrap();
        assert_eq!(store.kept_claims().unwrap().len(), 3);
        store.keep_claims(&dev, &[(a, [8; 32])], 12).unwrap();
        store.keep_claims(&dev, &[(a, [1; 32])], 9).unwrap();
        store.settle_claims().unwrap();
        store.drop_claim(&a, &[5; 32]).unwrap();
        let kept = store.kept_claims().unwrap();
        assert_eq!(
            kept,
            [(a, [8; 32], dev), (b, [9; 32], dev)],
            "a later envelope's claim in place of an earlier one's, never the reverse"
        );
    }

    #[test]
    fn a_want_is_asked_once_and_dropped_with_its_claim() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        let a = DocId([1; 16]);
        store
            .keep_claims(&DeviceId([3; 32]), &[(a, [7; 32])], 1)
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
        assert_eq!(store.wants_to_answer(10).unwrap(), [(a, [7; 32])]);
        store.wants_answered(&[(a, [7; 32])]).unwrap();
        store.keep_wants(&[(a, [7; 32])]).unwrap();
        assert!(
            store.wants_to_answer(10).unwrap().is_empty(),
            "a want served again is answered once"
        );
    }

    #[test]
    fn a_queued_change_takes_a_new_envelope_id_and_keeps_its_payload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        let a = DocId([1; 16]);
        let id = store
            .push_outbox_sealed(
                &a,
                crate::store::OutKind::Change,
                &[5; 24],
                b"change",
                Some(b"env"),
            )
            .unwrap();
        store.new_envelope_id(id).unwrap();
        let row = store.outbox().unwrap().remove(0);
        assert_ne!(row.env_id, [5; 24]);
        assert_eq!(&row.payload[..], b"change");
        assert_eq!(row.envelope, None, "sealed again under the new id");
    }

    #[test]
    fn a_document_deleted_here_keeps_no_claim_or_want() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        let a = DocId([1; 16]);
        store.queue_claims(&a, &[[7; 32]]).unwrap();
        store
            .keep_claims(&DeviceId([3; 32]), &[(a, [8; 32])], 1)
            .unwrap();
        store.queue_want(&a, &[8; 32]).unwrap();
        store.keep_wants(&[(a, [9; 32])]).unwrap();
        store.delete_doc(&a).unwrap();
        store.settle_claims().unwrap();
        assert!(store.claims_to_tell(10).unwrap().is_empty());
        assert!(store.kept_claims().unwrap().is_empty());
        assert!(store.wants_to_tell(10).unwrap().is_empty());
        assert!(store.wants_to_answer(10).unwrap().is_empty());
    }
}
