//! What an edit queues for the relay: its changes sealed as an envelope
//! under the document's newest epoch, and their weight toward the next
//! snapshot. Documents do this as they are edited; the sync round sends
//! what they queued (and seals it again if the epoch moved), so this lives
//! with documents and sync depends on it, not the other way round.

use casebook_shared::envelope::{Envelope, Header, Kind, MAX_ENVELOPE};
use casebook_shared::ids::{DocId, EnvelopeId};

use super::Access;
use crate::error::{Error, Inconsistent, Result};

/// After changes of this weight since the last snapshot, a device with write
/// access uploads a new one, so a new device loads one document instead of
/// replaying its history, and the relay drops the changes it covers.
pub const SNAPSHOT_EVERY: u64 = 16;

/// The weight of one change toward the next snapshot: one, plus one per
/// 512 bytes, so 16 small edits or about 8 KiB of new text call for one.
pub fn snapshot_weight(change_len: usize) -> u64 {
    1 + change_len as u64 / 512
}

impl Access<'_> {
    /// Seals a change of `doc` as envelope `id` under the document's
    /// newest epoch, signed by this device.
    pub(crate) fn seal_change(&self, doc: &DocId, id: [u8; 24], body: &[u8]) -> Result<Vec<u8>> {
        self.seal(doc, Kind::Change, id, body)
    }

    /// Seals `body` as an envelope of `kind` (a change or a signal) of
    /// `doc` under its newest epoch, signed by this device.
    pub(crate) fn seal(
        &self,
        doc: &DocId,
        kind: Kind,
        id: [u8; 24],
        body: &[u8],
    ) -> Result<Vec<u8>> {
        let meta = self.doc_meta(doc)?.ok_or(Inconsistent::NoAccessLog(*doc))?;
        let keys = self.doc_keys(doc)?;
        let key = keys.get(&meta.epoch).ok_or(Error::NoKey(*doc))?;
        if body.len() > MAX_ENVELOPE - 1024 {
            return Err(Error::EditTooLarge { bytes: body.len() });
        }
        let header = Header {
            kind,
            doc: *doc,
            epoch: meta.epoch,
            account: self.me,
            author: self.signer.device_id(),
            id: EnvelopeId(id),
            covers: 0,
        };
        Ok(Envelope::seal(header, key, self.signer, body).into_bytes())
    }
}
