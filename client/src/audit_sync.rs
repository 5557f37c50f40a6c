//! The audit trail, shared among the account's own devices.
//!
//! Each device keeps its own hash chain (see
//! [`crate::audit::Trail::verify`]). The account has one more document on
//! the relay, the audit document, owned by the account and shared with no
//! one; each sync round sends the entries this device wrote since the
//! last round as one envelope, and keeps the entries other devices sent,
//! once each (by device and sequence number), however often an envelope is
//! delivered.

use casebook_shared::access::{self, DocEntry, DocOp, SIG_LABEL};
use casebook_shared::codec;
use casebook_shared::crypto::{self, SecretKey};
use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;

use crate::error::{Error, Result};
use crate::home::{AuditRecord, Home};
use crate::net::{NetError, Relay};

/// How far this device's own entries have gone out.
pub(crate) const SENT: &str = "audit_sent";

/// The audit document of an account: derived from its id, so every device
/// finds the same one.
pub fn audit_doc(account: &AccountId) -> DocId {
    let h = crypto::hash("casebook/v1/audit-document", &account.0);
    DocId(h.0[..16].try_into().expect("16 of 32 bytes"))
}

impl Home {
    /// Whether `doc` is this account's audit document.
    pub(crate) fn is_audit_doc(&self, doc: &DocId) -> bool {
        *doc == audit_doc(&self.account_id())
    }

    /// Makes the audit document on the relay if no device has yet. Sent
    /// straight away rather than queued, so two devices racing to make it
    /// cannot both keep a genesis: the loser's is refused and it fetches
    /// the winner's.
    pub(crate) async fn ensure_audit_doc(&mut self, relay: &Relay, listed: bool) -> Result<()> {
        let doc = audit_doc(&self.account_id());
        if listed || self.access().doc_meta(&doc)?.is_some() {
            return Ok(());
        }
        let me = self.account_state()?;
        let key = SecretKey::random();
        let entry = DocEntry {
            doc,
            seq: 0,
            prev: None,
            at: self.now(),
            account: me.id,
            account_len: me.len,
            op: DocOp::Genesis {
                key: access::key_envelope(&doc, 0, &key, &me)?,
            },
        };
        let signed = Signed::sign(&self.id.signer, SIG_LABEL, &entry);
        match relay
            .request(&Request::AppendAccess {
                doc,
                entries: vec![signed.clone()],
            })
            .await
        {
            Ok(_) => {
                let accounts = std::collections::BTreeMap::from([(me.id, me)]);
                self.atomically(|home| {
                    home.access()
                        .accept_access_entries(&doc, &[signed], &accounts)
                })?;
                Ok(())
            }
            Err(NetError::Relay {
                code: ErrorCode::Conflict,
                ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the entries this device wrote since the last round.
    pub(crate) async fn push_audit(&mut self, relay: &Relay) -> Result<usize> {
        let doc = audit_doc(&self.account_id());
        let Some(meta) = self.access().doc_meta(&doc)? else {
            return Ok(0);
        };
        let sent = match self.store.get_secret(SENT)? {
            Some(b) if b.len() == 8 => u64::from_be_bytes(b[..].try_into().expect("8 bytes")),
            _ => 0,
        };
        let mine: Vec<AuditRecord> = self
            .trail()
            .own()?
            .into_iter()
            .filter(|r| r.seq > sent)
            .collect();
        let Some(last) = mine.last().map(|r| r.seq) else {
            return Ok(0);
        };
        // Entries about changes just fetched were written by commits that
        // did not wait for the disk; once on the relay they must not be
        // lost here (this device would write others under their numbers).
        self.store.durable_barrier()?;
        let keys = self.access().doc_keys(&doc)?;
        let key = keys.get(&meta.epoch).ok_or(Error::NoKey(doc))?;
        let mut sent_now = 0;
        // Bounded envelopes: a long offline stretch goes out in parts.
        for chunk in mine.chunks(2000) {
            let header = Header {
                kind: Kind::Change,
                doc,
                epoch: meta.epoch,
                account: self.account_id(),
                author: self.device_id(),
                id: EnvelopeId::fresh(),
                covers: 0,
            };
            let env = Envelope::seal(
                header,
                key,
                &self.id.signer,
                &codec::encode(&chunk.to_vec()),
            );
            match relay
                .request(&Request::Upload {
                    envelopes: vec![env.into_bytes()],
                })
                .await?
            {
                Response::Uploaded { results } if results.first().is_some_and(Result::is_ok) => {
                    if let Some(Ok(seq)) = results.first() {
                        self.store.note_acked(&doc, *seq)?;
                    }
                }
                // Another device of the account rotated the trail's key
                // after this round read it: the rest goes next round,
                // sealed under the new key.
                Response::Uploaded { results }
                    if results.first() == Some(&Err(ErrorCode::AccessMoved)) =>
                {
                    tracing::info!(
                        "the audit trail's key moved on since this round read it; its entries go next round"
                    );
                    break;
                }
                other => {
                    return Err(Error::Net(NetError::Protocol(format!(
                        "the relay did not take the audit entries: {other:?}"
                    ))));
                }
            }
            sent_now += chunk.len();
            let upto = chunk.last().map_or(last, |r| r.seq);
            self.store.put_secret(SENT, &upto.to_be_bytes())?;
        }
        Ok(sent_now)
    }

    /// Keeps the entries another device sent (checked and opened by the
    /// caller). Entries claiming to be this device's are ignored: this
    /// device's own chain is the one on its disk.
    pub(crate) fn take_audit(
        &mut self,
        author: &casebook_shared::ids::DeviceId,
        body: &[u8],
    ) -> Result<usize> {
        let records: Vec<AuditRecord> = codec::decode(body)?;
        let mut new = 0;
        for r in records {
            if r.device != *author || r.device == self.device_id() {
                continue;
            }
            if self
                .store
                .put_remote_audit(&r.device.0, r.seq, &codec::encode(&r))?
            {
                new += 1;
            }
        }
        Ok(new)
    }
}
