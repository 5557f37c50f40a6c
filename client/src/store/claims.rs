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

/// A claim: the document, the change's hash, and its last operation's
/// number.
pub type Claim = (DocId, Hash, u64);

/// A want still unmet is asked for again: the ask, or the change sent in
/// answer, may have been lost on the way (a relay losing data, or
/// restored), and the device that made it answers each asking once. After
/// an hour, then twice as long each time, at most a day apart, so a change
/// nobody can send any more costs one small envelope a day, not one a
/// round.
pub const ASK_AGAIN_AFTER: u64 = 3600;
const ASK_AGAIN_AT_MOST: u64 = 86_400;

fn damaged() -> StoreError {
    StoreError::Damaged("a claim row is malformed".into())
}

impl Store {
    /// Queues `hash`, a change of this device's to `doc` the relay
    /// acknowledged, to tell, unless a newer one (by `max_op`, which only
    /// grows along a history) is queued or told already: a device's changes
    /// follow one another, so holding the newest is holding all, and a row
    /// sent again holds older changes.
    pub fn queue_claim(&self, doc: &DocId, hash: &Hash, max_op: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO claims_out(doc, hash, max_op) VALUES (?1, ?2, ?3)
             ON CONFLICT(doc) DO UPDATE SET hash = excluded.hash, max_op = excluded.max_op,
             told = 0 WHERE excluded.max_op > claims_out.max_op",
            params![&doc.0[..], &hash[..], max_op as i64],
        )?;
        Ok(())
    }

    /// Tells this device's claim of `doc` again: a snapshot covers the
    /// envelope that told it, and where that was a signal in the document
    /// the relay dropped it (see `sync::snapshot`).
    pub fn retell_claim(&self, doc: &DocId) -> Result<(), StoreError> {
        self.execute(
            "UPDATE claims_out SET told = 0 WHERE doc = ?1",
            params![&doc.0[..]],
        )?;
        Ok(())
    }

    /// Tells every claim of this device's again: the relay lost the audit
    /// envelopes that told them (see `sync::heal`).
    pub fn retell_every_claim(&self) -> Result<(), StoreError> {
        self.execute("UPDATE claims_out SET told = 0", [])?;
        Ok(())
    }

    /// Up to `limit` claims not told yet.
    pub fn claims_to_tell(&self, limit: usize) -> Result<Vec<Claim>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc, hash, max_op FROM claims_out WHERE told = 0 ORDER BY doc LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (doc, hash, max_op) = r?;
            out.push((
                DocId(doc.try_into().map_err(|_| damaged())?),
                hash.try_into().map_err(|_| damaged())?,
                max_op as u64,
            ));
        }
        Ok(out)
    }

    /// Claims the relay has taken in an envelope: told (unless a newer one
    /// took a claim's place meanwhile).
    pub fn claims_told(&self, told: &[Claim]) -> Result<(), StoreError> {
        self.transaction(|s| {
            for (doc, h, _) in told {
                s.execute(
                    "UPDATE claims_out SET told = 1 WHERE doc = ?1 AND hash = ?2",
                    params![&doc.0[..], &h[..]],
                )?;
            }
            Ok(())
        })
    }

    /// Keeps the claims another device of the account made in the
    /// envelope the relay numbered `at`, each in place of an older one of
    /// that device's for the same document.
    pub fn keep_claims(
        &self,
        device: &DeviceId,
        claims: &[Claim],
        at: u64,
    ) -> Result<(), StoreError> {
        self.transaction(|s| {
            for (doc, h, max_op) in claims {
                s.execute(
                    "INSERT INTO claims_in(doc, device, hash, max_op, at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(doc, device) DO UPDATE SET hash = excluded.hash,
                     max_op = excluded.max_op, at = excluded.at, met = 0
                     WHERE excluded.max_op > claims_in.max_op",
                    params![&doc.0[..], &device.0[..], &h[..], *max_op as i64, at as i64],
                )?;
            }
            Ok(())
        })
    }

    /// The claims not met told in envelopes the relay numbered `upto` or
    /// below, by document: hash and the device that made it.
    pub fn kept_claims(&self, upto: u64) -> Result<Vec<(DocId, Hash, DeviceId)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc, hash, device FROM claims_in WHERE met = 0 AND at <= ?1 ORDER BY doc",
        )?;
        let rows = stmt.query_map([upto as i64], |r| {
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

    /// The hashes of `doc` claimed and not met.
    pub fn unmet_claims(&self, doc: &DocId) -> Result<Vec<Hash>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM claims_in WHERE doc = ?1 AND met = 0")?;
        let rows = stmt.query_map([&doc.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?.try_into().map_err(|_| damaged())?);
        }
        Ok(out)
    }

    /// A kept claim is met (the change is here, or no longer anyone's
    /// due): it is judged no more, and not asked for; an older claim of
    /// the same device does not take its place.
    pub fn meet_claim(&self, doc: &DocId, hash: &Hash) -> Result<(), StoreError> {
        self.execute(
            "UPDATE claims_in SET met = 1 WHERE doc = ?1 AND hash = ?2",
            params![&doc.0[..], &hash[..]],
        )?;
        self.execute(
            "DELETE FROM wants_out WHERE doc = ?1 AND hash = ?2",
            params![&doc.0[..], &hash[..]],
        )?;
        Ok(())
    }

    /// Queues a want of a change, unless it was asked for already or
    /// `limit` of the document's are queued.
    pub fn queue_want(&self, doc: &DocId, hash: &Hash, limit: usize) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO wants_out(doc, hash) SELECT ?1, ?2
             WHERE (SELECT COUNT(*) FROM wants_out WHERE doc = ?1) < ?3",
            params![&doc.0[..], &hash[..], limit as i64],
        )?;
        Ok(())
    }

    /// Up to `limit` wants to ask for at `now`: those not asked for yet,
    /// and those asked for long enough ago to ask again (see
    /// [`ASK_AGAIN_AFTER`]), but a want of `once` (the account's audit
    /// document, whose wants are asked once while the gap lasts).
    pub fn wants_to_tell(
        &self,
        limit: usize,
        now: u64,
        once: &DocId,
    ) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT doc, hash FROM wants_out
             WHERE told = 0 OR (doc != ?3 AND (?2 < told
                OR ?2 >= told + MIN(?4 << MIN(MAX(asked - 1, 0), 16), ?5)))
             ORDER BY doc, hash LIMIT ?1",
            params![
                limit as i64,
                now as i64,
                &once.0[..],
                ASK_AGAIN_AFTER as i64,
                ASK_AGAIN_AT_MOST as i64
            ],
        )
    }

    /// Rows of (document, hash) that `sql` selects with `params`.
    fn pairs(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(DocId, Hash)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| {
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

    /// Wants the relay has taken in an envelope at `now`: asked for.
    pub fn wants_told(&self, told: &[(DocId, Hash)], now: u64) -> Result<(), StoreError> {
        self.transaction(|s| {
            for (doc, h) in told {
                s.execute(
                    "UPDATE wants_out SET told = MAX(?3, 1), asked = asked + 1
                     WHERE doc = ?1 AND hash = ?2",
                    params![&doc.0[..], &h[..], now as i64],
                )?;
            }
            Ok(())
        })
    }

    /// Drops the wants of `doc` that no claim not met names: what its
    /// changes built on has arrived.
    pub fn forget_met_wants(&self, doc: &DocId) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM wants_out WHERE doc = ?1
             AND hash NOT IN (SELECT hash FROM claims_in WHERE doc = ?1 AND met = 0)",
            [&doc.0[..]],
        )?;
        Ok(())
    }

    /// Drops the wants of `doc` but those of `keep`.
    pub fn forget_wants_but(&self, doc: &DocId, keep: &[Hash]) -> Result<(), StoreError> {
        let held = self.pairs_of(doc)?;
        for h in held.iter().filter(|h| !keep.contains(h)) {
            self.execute(
                "DELETE FROM wants_out WHERE doc = ?1 AND hash = ?2",
                params![&doc.0[..], &h[..]],
            )?;
        }
        Ok(())
    }

    fn pairs_of(&self, doc: &DocId) -> Result<Vec<Hash>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM wants_out WHERE doc = ?1")?;
        let rows = stmt.query_map([&doc.0[..]], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?.try_into().map_err(|_| damaged())?);
        }
        Ok(out)
    }

    /// Forgets every claim and want of a document deleted here.
    pub fn forget_claims(&self, doc: &DocId) -> Result<(), StoreError> {
        for table in ["claims_out", "claims_in", "wants_out", "wants_in"] {
            self.execute(&format!("DELETE FROM {table} WHERE doc = ?1"), [&doc.0[..]])?;
        }
        Ok(())
    }

    /// Keeps what `device`, another of the account's, asked of this one in
    /// the envelope at `at`: asked again in a later envelope, a want is
    /// answered again; the same envelope served again asks nothing new.
    pub fn keep_wants(
        &self,
        device: &DeviceId,
        wants: &[(DocId, Hash)],
        at: u64,
    ) -> Result<(), StoreError> {
        self.transaction(|s| {
            for (doc, h) in wants {
                s.execute(
                    "INSERT INTO wants_in(doc, hash, device, at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(doc, hash, device) DO UPDATE SET at = excluded.at, answered = 0
                     WHERE excluded.at > wants_in.at",
                    params![&doc.0[..], &h[..], &device.0[..], at as i64],
                )?;
            }
            Ok(())
        })
    }

    /// Up to `limit` wants asked of this device and not answered yet.
    pub fn wants_to_answer(&self, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT DISTINCT doc, hash FROM wants_in WHERE answered = 0 ORDER BY doc, hash LIMIT ?1",
            [limit as i64],
        )
    }

    /// Up to `limit` of the wants not answered yet that a device of this
    /// account asked (another account's are kept numbered 0; see
    /// `sync::signals`).
    pub fn wants_from_this_account(&self, limit: usize) -> Result<Vec<(DocId, Hash)>, StoreError> {
        self.pairs(
            "SELECT DISTINCT doc, hash FROM wants_in WHERE answered = 0 AND at > 0 ORDER BY doc, hash LIMIT ?1",
            [limit as i64],
        )
    }

    /// Wants answered.
    pub fn wants_answered(&self, done: &[(DocId, Hash)]) -> Result<(), StoreError> {
        self.transaction(|s| {
            for (doc, h) in done {
                s.execute(
                    "UPDATE wants_in SET answered = 1 WHERE doc = ?1 AND hash = ?2",
                    params![&doc.0[..], &h[..]],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("c.db"), b"pass").unwrap();
        (dir, store)
    }

    #[test]
    fn the_newest_claim_of_a_document_is_told_once() {
        let (_dir, store) = store();
        let (a, b) = (DocId([1; 16]), DocId([2; 16]));
        store.queue_claim(&a, &[7; 32], 5).unwrap();
        store.queue_claim(&a, &[8; 32], 9).unwrap();
        store.queue_claim(&a, &[6; 32], 3).unwrap();
        store.queue_claim(&b, &[9; 32], 1).unwrap();
        let all = store.claims_to_tell(10).unwrap();
        assert_eq!(
            all,
            [(a, [8; 32], 9), (b, [9; 32], 1)],
            "the newest in place of the older; an older one sent again does not replace it"
        );
        assert_eq!(store.claims_to_tell(1).unwrap().len(), 1);
        store.claims_told(&all[..1]).unwrap();
        assert_eq!(store.claims_to_tell(10).unwrap(), [(b, [9; 32], 1)]);
        store.queue_claim(&a, &[8; 32], 9).unwrap();
        assert_eq!(store.claims_to_tell(10).unwrap().len(), 1, "told already");
        store.claims_told(&all).unwrap();
        assert!(store.claims_to_tell(10).unwrap().is_empty());
        store.retell_every_claim().unwrap();
        assert_eq!(store.claims_to_tell(10).unwrap(), all, "all told again");
    }

    #[test]
    fn claims_are_judged_once_listed_and_a_newer_one_takes_an_older_ones_place() {
        let (_dir, store) = store();
        let (a, b) = (DocId([1; 16]), DocId([2; 16]));
        let (dev, other) = (DeviceId([3; 32]), DeviceId([4; 32]));
        store
            .keep_claims(&dev, &[(a, [7; 32], 5), (b, [9; 32], 1)], 10)
            .unwrap();
        store.keep_claims(&other, &[(a, [5; 32], 2)], 11).unwrap();
        assert!(
            store.kept_claims(9).unwrap().is_empty(),
            "told after the listing"
        );
        assert_eq!(store.kept_claims(10).unwrap().len(), 2);
        store.keep_claims(&dev, &[(a, [8; 32], 6)], 12).unwrap();
        store.keep_claims(&dev, &[(a, [1; 32], 1)], 13).unwrap();
        assert_eq!(
            store.kept_claims(13).unwrap(),
            [(a, [8; 32], dev), (a, [5; 32], other), (b, [9; 32], dev)],
            "a newer claim in place of an older one, never the reverse"
        );
        store.meet_claim(&a, &[5; 32]).unwrap();
        store.keep_claims(&other, &[(a, [4; 32], 1)], 14).unwrap();
        assert_eq!(store.kept_claims(14).unwrap().len(), 2, "met stays met");
        assert_eq!(store.unmet_claims(&a).unwrap(), [[8; 32]]);
    }

    #[test]
    fn wants_are_asked_and_answered_once_per_asking() {
        let (_dir, store) = store();
        let (a, audit) = (DocId([1; 16]), DocId([9; 16]));
        let at = 1_800_000_000;
        store.queue_want(&a, &[7; 32], 16).unwrap();
        assert_eq!(store.wants_to_tell(10, at, &audit).unwrap(), [(a, [7; 32])]);
        store.wants_told(&[(a, [7; 32])], at).unwrap();
        store.queue_want(&a, &[7; 32], 16).unwrap();
        assert!(
            store.wants_to_tell(10, at + 60, &audit).unwrap().is_empty(),
            "asked once within the hour"
        );
        for i in 0..40u8 {
            store.queue_want(&a, &[i + 100; 32], 16).unwrap();
        }
        assert_eq!(
            store.wants_to_tell(100, at, &audit).unwrap().len(),
            15,
            "16 a document"
        );

        let dev = DeviceId([3; 32]);
        store.keep_wants(&dev, &[(a, [7; 32])], 10).unwrap();
        store.keep_wants(&dev, &[(a, [7; 32])], 10).unwrap();
        assert_eq!(store.wants_to_answer(10).unwrap(), [(a, [7; 32])]);
        store.wants_answered(&[(a, [7; 32])]).unwrap();
        store.keep_wants(&dev, &[(a, [7; 32])], 10).unwrap();
        assert!(
            store.wants_to_answer(10).unwrap().is_empty(),
            "an envelope served again asks nothing new"
        );
        store.keep_wants(&dev, &[(a, [7; 32])], 11).unwrap();
        assert_eq!(store.wants_to_answer(10).unwrap().len(), 1, "asked again");
        // Another account's want is kept numbered 0: not this account's.
        let b = DocId([2; 16]);
        store
            .keep_wants(&DeviceId([4; 32]), &[(b, [9; 32])], 0)
            .unwrap();
        assert_eq!(store.wants_to_answer(10).unwrap().len(), 2);
        assert_eq!(store.wants_from_this_account(10).unwrap(), [(a, [7; 32])]);
    }

    /// A want still unmet is asked again after an hour, then twice as long
    /// each time, at most a day apart; one of the audit document is asked
    /// once while its gap lasts; a clock set back asks again at once.
    #[test]
    fn a_want_still_unmet_is_asked_again_less_often_each_time() {
        let (_dir, store) = store();
        let (a, audit) = (DocId([1; 16]), DocId([9; 16]));
        let hour = ASK_AGAIN_AFTER;
        store.queue_want(&a, &[7; 32], 16).unwrap();
        store.queue_want(&audit, &[3; 32], 16).unwrap();
        let mut at = 1_800_000_000;
        let both = store.wants_to_tell(10, at, &audit).unwrap();
        assert_eq!(both.len(), 2);
        store.wants_told(&both, at).unwrap();
        for gap in [1, 2, 4, 8, 16, 24, 24] {
            let due = at + gap * hour;
            assert!(store.wants_to_tell(10, due - 1, &audit).unwrap().is_empty());
            assert_eq!(
                store.wants_to_tell(10, due, &audit).unwrap(),
                [(a, [7; 32])],
                "after {gap} hours"
            );
            store.wants_told(&[(a, [7; 32])], due).unwrap();
            at = due;
        }
        assert_eq!(
            store.wants_to_tell(10, at - 1, &audit).unwrap(),
            [(a, [7; 32])],
            "a clock set back"
        );
        store.forget_met_wants(&a).unwrap();
        assert!(
            store
                .wants_to_tell(10, at + 100 * hour, &audit)
                .unwrap()
                .is_empty()
        );
    }

    /// A store made before wants were asked again gains the count when
    /// opened, and a want it had told is asked again at once.
    #[test]
    fn a_store_made_before_wants_were_asked_again_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let (a, audit) = (DocId([1; 16]), DocId([9; 16]));
        let store = Store::create(&path, b"pass").unwrap();
        store
            .conn
            .execute_batch("ALTER TABLE wants_out DROP COLUMN asked")
            .unwrap();
        store.queue_want(&a, &[7; 32], 16).unwrap();
        store
            .conn
            .execute_batch("UPDATE wants_out SET told = 1")
            .unwrap();
        drop(store);
        let store = Store::open(&path, b"pass").unwrap();
        let now = 1_800_000_000;
        assert_eq!(
            store.wants_to_tell(10, now, &audit).unwrap(),
            [(a, [7; 32])]
        );
        store.wants_told(&[(a, [7; 32])], now).unwrap();
        assert!(store.wants_to_tell(10, now + 1, &audit).unwrap().is_empty());
    }

    #[test]
    fn a_queued_change_takes_a_new_envelope_id_and_keeps_its_payload() {
        let (_dir, store) = store();
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
        let (_dir, store) = store();
        let a = DocId([1; 16]);
        let dev = DeviceId([3; 32]);
        store.queue_claim(&a, &[7; 32], 1).unwrap();
        store.keep_claims(&dev, &[(a, [8; 32], 1)], 1).unwrap();
        store.queue_want(&a, &[8; 32], 16).unwrap();
        store.keep_wants(&dev, &[(a, [9; 32])], 1).unwrap();
        store.delete_doc(&a).unwrap();
        assert!(store.claims_to_tell(10).unwrap().is_empty());
        assert!(store.kept_claims(u64::MAX >> 1).unwrap().is_empty());
        assert!(
            store
                .wants_to_tell(10, 1, &DocId([9; 16]))
                .unwrap()
                .is_empty()
        );
        assert!(store.wants_to_answer(10).unwrap().is_empty());
    }
}
