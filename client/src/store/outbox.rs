//! The outbox: what this device has to send, kept until the relay
//! acknowledges it, so a crash or a lost connection loses nothing.

use casebook_shared::ids::{DocId, EnvelopeId};
use rusqlite::params;
use zeroize::Zeroizing;

use super::{Store, StoreError};

/// An outbox row: something to send to the relay.
#[derive(Debug)]
pub struct Outgoing {
    pub id: i64,
    pub doc: DocId,
    pub kind: OutKind,
    /// Access-log entries, or a batch of Automerge changes (opened, plaintext).
    pub payload: Zeroizing<Vec<u8>>,
    /// The envelope once sealed, kept so a retry sends the same bytes.
    pub envelope: Option<Vec<u8>>,
    /// The envelope id, fixed when the row is made.
    pub env_id: [u8; 24],
}

/// What an outbox row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    Access = 0,
    Change = 1,
    /// A change made through `comment`: all a commenter may send.
    Comment = 2,
}

/// A queued change's envelope id and opened payload.
type ChangeRow = ([u8; 24], Zeroizing<Vec<u8>>);

/// An outbox row as read: id, doc, kind, envelope id, sealed payload, envelope.
type OutboxRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>, Option<Vec<u8>>);

impl Store {
    /// Queues something for the relay.
    pub fn push_outbox(
        &self,
        doc: &DocId,
        kind: OutKind,
        payload: &[u8],
    ) -> Result<i64, StoreError> {
        self.push_outbox_sealed(doc, kind, &EnvelopeId::fresh().0, payload, None)
    }

    /// Queues a change with its envelope id and, where it could be sealed
    /// already, its envelope: written with the edit, so sending it takes
    /// no write of its own.
    pub fn push_outbox_sealed(
        &self,
        doc: &DocId,
        kind: OutKind,
        env_id: &[u8; 24],
        payload: &[u8],
        envelope: Option<&[u8]>,
    ) -> Result<i64, StoreError> {
        self.execute(
            "INSERT INTO outbox(doc, kind, env_id, payload, envelope) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &doc.0[..],
                kind as i64,
                &env_id[..],
                self.seal("outbox", env_id, payload),
                envelope
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Everything queued, oldest first.
    pub fn outbox(&self) -> Result<Vec<Outgoing>, StoreError> {
        self.outbox_where("1")
    }

    /// The queued access-log entries only, oldest first: what a pull needs
    /// to know, without opening every queued change.
    pub fn access_outbox(&self) -> Result<Vec<Outgoing>, StoreError> {
        self.outbox_where("kind = 0")
    }

    fn outbox_where(&self, filter: &'static str) -> Result<Vec<Outgoing>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, doc, kind, env_id, payload, envelope FROM outbox WHERE {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map([], |r| -> rusqlite::Result<OutboxRow> {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, doc, kind, env_id, payload, envelope) = r?;
            let bad = || StoreError::Damaged("an outbox row is malformed".into());
            let env_id: [u8; 24] = env_id.try_into().map_err(|_| bad())?;
            out.push(Outgoing {
                id,
                doc: DocId(doc.try_into().map_err(|_| bad())?),
                kind: match kind {
                    0 => OutKind::Access,
                    1 => OutKind::Change,
                    2 => OutKind::Comment,
                    _ => return Err(bad()),
                },
                payload: self.unseal("outbox", &env_id, &payload)?,
                envelope,
                env_id,
            });
        }
        Ok(out)
    }

    /// Number of rows waiting to be sent.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// A queued change (not an access-log row): its envelope id and its
    /// payload, opened.
    fn change_row(&self, id: i64) -> Result<Option<ChangeRow>, StoreError> {
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
        let payload = self.unseal("outbox", &env_id, &payload)?;
        Ok(Some((env_id, payload)))
    }

    /// The payload of a queued change, opened.
    pub fn outbox_change(&self, id: i64) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.change_row(id)?.map(|(_, payload)| payload))
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

    /// Gives a queued change a new envelope id (and forgets its sealed
    /// envelope): the relay holds other bytes under the old one.
    pub fn new_envelope_id(&self, id: i64) -> Result<(), StoreError> {
        let Some((_, payload)) = self.change_row(id)? else {
            return Ok(());
        };
        let fresh = EnvelopeId::fresh().0;
        self.execute(
            "UPDATE outbox SET env_id = ?2, payload = ?3, envelope = NULL WHERE id = ?1",
            params![id, &fresh[..], self.seal("outbox", &fresh, &payload)],
        )?;
        Ok(())
    }

    /// Records the sealed envelope of a row so a retry sends the same bytes.
    pub fn set_outbox_envelope(&self, id: i64, envelope: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "UPDATE outbox SET envelope = ?2 WHERE id = ?1",
            params![id, envelope],
        )?;
        Ok(())
    }

    /// Removes every queued change and comment of a document (its held
    /// edits, once settled); returns how many.
    pub fn remove_outbox_changes(&self, doc: &DocId) -> Result<usize, StoreError> {
        Ok(self.execute(
            "DELETE FROM outbox WHERE doc = ?1 AND kind != 0",
            [&doc.0[..]],
        )?)
    }

    /// Removes a row the relay acknowledged.
    pub fn remove_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        Ok(())
    }
}
