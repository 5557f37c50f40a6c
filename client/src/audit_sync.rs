//! The audit trail, shared among the account's own devices.
//!
//! Each device keeps its own hash chain (see
//! [`crate::audit::Trail::verify`]). The account has one more document on
//! the relay, the audit document, owned by the account and shared with no
//! one; each sync round sends the entries this device wrote since the
//! last round as one envelope, and keeps the entries other devices sent,
//! once each (by device and sequence number), however often an envelope is
//! delivered.
//!
//! The same envelopes carry this device's claims: the changes of its own
//! the relay acknowledged since the last round (see `sync::claims`).

use std::collections::BTreeSet;

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

/// Audit entries per envelope: a long offline stretch goes out in parts,
/// each well under the envelope limit.
pub(crate) const PER_ENVELOPE: usize = 2000;

/// Claims per envelope, likewise.
const CLAIMS_PER_ENVELOPE: usize = 4000;

/// What an audit envelope carries (public for the fuzz target of what
/// another device may have sealed in one).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct AuditBody {
    pub records: Vec<AuditRecord>,
    /// Changes of the sending device's the relay acknowledged: document,
    /// the change's hash, and its last operation's number.
    pub claims: Vec<crate::store::Claim>,
    /// Changes another device claimed that the sending device was not
    /// served: the device that made one sends it again.
    pub wants: Vec<(DocId, [u8; 32])>,
}

impl AuditBody {
    /// Decodes a body; one written before claims were carried is the
    /// entries alone.
    pub fn decode(bytes: &[u8]) -> Result<AuditBody> {
        match codec::decode::<AuditBody>(bytes) {
            Ok(b) => Ok(b),
            Err(e) => match codec::decode::<Vec<AuditRecord>>(bytes) {
                Ok(records) => Ok(AuditBody {
                    records,
                    claims: Vec::new(),
                    wants: Vec::new(),
                }),
                Err(_) => Err(e.into()),
            },
        }
    }
}

/// What the relay's answer to one envelope of audit entries means.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Stored at this sequence number: the entries are sent.
    Stored(u64),
    /// Another device of the account rotated the trail's key after this
    /// round read it: the rest goes next round, sealed under the new key.
    KeyMoved,
    /// Refused for another reason, or not an answer to an upload.
    NotTaken,
}

fn answer(response: &Response) -> Answer {
    match response {
        Response::Uploaded { results } => match results.first() {
            Some(Ok(seq)) => Answer::Stored(*seq),
            Some(Err(ErrorCode::AccessMoved)) => Answer::KeyMoved,
            _ => Answer::NotTaken,
        },
        _ => Answer::NotTaken,
    }
}

/// This device's entries not yet sent (those after `sent`), in the
/// envelopes they go out in.
fn unsent(own: Vec<AuditRecord>, sent: u64) -> Vec<Vec<AuditRecord>> {
    let fresh: Vec<AuditRecord> = own.into_iter().filter(|r| r.seq > sent).collect();
    fresh.chunks(PER_ENVELOPE).map(<[_]>::to_vec).collect()
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

    /// Sends the entries this device wrote since the last round, and the
    /// claims queued since (returned in the count: either makes an echo
    /// worth taking).
    /// No signal is sealed in a document of `held_back` (see
    /// `sync::signals`).
    pub(crate) async fn push_audit(
        &mut self,
        relay: &Relay,
        held_back: &BTreeSet<DocId>,
    ) -> Result<usize> {
        // Those of documents shared with another account go in the
        // documents themselves, to every member (see `sync::signals`), or
        // wait for the next round's signal; here only those whose signal
        // the relay refused for good.
        let given_up = self.push_signals(relay, held_back).await?;
        let doc = audit_doc(&self.account_id());
        let Some(meta) = self.access().doc_meta(&doc)? else {
            return Ok(0);
        };
        self.ask_for_audit_gaps(&doc)?;
        let sent = match self.store.get_secret(SENT)? {
            Some(b) if b.len() == 8 => u64::from_be_bytes(b[..].try_into().expect("8 bytes")),
            _ => 0,
        };
        let mut parts: Vec<(Vec<AuditRecord>, bool)> = unsent(self.trail().own()?, sent)
            .into_iter()
            .map(|p| (p, true))
            .collect();
        let forward = self.audit_to_forward()?;
        parts.extend(forward.chunks(PER_ENVELOPE).map(|c| (c.to_vec(), false)));
        let mut claims = self.store.claims_to_tell(CLAIMS_PER_ENVELOPE)?;
        let mut wants = self
            .store
            .wants_to_tell(CLAIMS_PER_ENVELOPE, self.now(), &doc)?;
        let told: BTreeSet<DocId> = claims
            .iter()
            .map(|c| c.0)
            .chain(wants.iter().map(|w| w.0))
            .collect();
        let mut waiting = BTreeSet::new();
        for d in told {
            if !given_up.contains(&d) && self.told_in_signals(&d)? {
                waiting.insert(d);
            }
        }
        claims.retain(|c| !waiting.contains(&c.0));
        wants.retain(|w| !waiting.contains(&w.0));
        if parts.is_empty() && claims.is_empty() && wants.is_empty() {
            return Ok(0);
        }
        if parts.is_empty() {
            parts.push((Vec::new(), true));
        }
        // Entries about changes just fetched were written by commits that
        // did not wait for the disk; once on the relay they must not be
        // lost here (this device would write others under their numbers).
        self.store.durable_barrier()?;
        let keys = self.access().doc_keys(&doc)?;
        let key = keys.get(&meta.epoch).ok_or(Error::NoKey(doc))?;
        let mut sent_now = 0;
        let mut all_sent = true;
        for (part, own) in parts {
            let header = Header {
                kind: Kind::Change,
                doc,
                epoch: meta.epoch,
                account: self.account_id(),
                author: self.device_id(),
                id: EnvelopeId::fresh(),
                covers: 0,
            };
            let body = AuditBody {
                records: part,
                claims: std::mem::take(&mut claims),
                wants: std::mem::take(&mut wants),
            };
            let env = Envelope::seal(header, key, &self.id.signer, &codec::encode(&body));
            let AuditBody {
                records: part,
                claims: body_claims,
                wants: body_wants,
            } = body;
            let response = relay
                .request(&Request::Upload {
                    envelopes: vec![env.into_bytes()],
                })
                .await?;
            match answer(&response) {
                Answer::Stored(seq) => self.store.note_acked(&doc, seq)?,
                Answer::KeyMoved => {
                    tracing::info!(
                        "the audit trail's key moved on since this round read it; its entries go next round"
                    );
                    all_sent = false;
                    break;
                }
                Answer::NotTaken => {
                    return Err(Error::Net(NetError::Protocol(format!(
                        "the relay did not take the audit entries: {response:?}"
                    ))));
                }
            }
            self.store.claims_told(&body_claims)?;
            self.store.wants_told(&body_wants, self.now())?;
            sent_now += part.len() + body_claims.len() + body_wants.len();
            if let Some(last) = part.last().filter(|_| own) {
                self.store.put_secret(SENT, &last.seq.to_be_bytes())?;
            }
        }
        if all_sent && !forward.is_empty() {
            self.audit_forwarded()?;
        }
        Ok(sent_now)
    }

    /// Keeps the entries another device sent (checked and opened by the
    /// caller) in the envelope at `at`, and what it claims and wants.
    /// Entries claiming to be this device's are ignored: this device's own
    /// chain is the one on its disk. Entries of a third device it forwards
    /// are kept only where they fill a gap, chained at both ends (see
    /// `audit_gaps`).
    pub(crate) fn take_audit(
        &mut self,
        author: &casebook_shared::ids::DeviceId,
        body: &[u8],
        at: u64,
    ) -> Result<usize> {
        let AuditBody {
            records,
            claims,
            wants,
        } = AuditBody::decode(body)?;
        if *author != self.device_id() {
            self.store.keep_claims(author, &claims, at)?;
            self.store.keep_wants(author, &wants, at)?;
        }
        let me = self.device_id();
        let (own, others): (Vec<AuditRecord>, Vec<AuditRecord>) =
            records.into_iter().partition(|r| r.device == *author);
        let mut new = self.fill_audit_gaps(others)?;
        for r in own {
            if r.device == me {
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

#[cfg(test)]
mod tests {
    use casebook_shared::ids::{DeviceId, Hash};

    use super::*;

    fn entries(n: u64) -> Vec<AuditRecord> {
        (1..=n)
            .map(|seq| AuditRecord {
                seq,
                prev: Hash([0; 32]),
                at: seq,
                device: DeviceId([1; 32]),
                case: None,
                what: "case viewed".into(),
                disclosure: Default::default(),
            })
            .collect()
    }

    #[test]
    fn only_entries_after_the_last_sent_go_out_in_bounded_envelopes() {
        assert!(unsent(entries(5), 5).is_empty());
        let parts = unsent(entries(5), 3);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
        let long = unsent(entries(2 * PER_ENVELOPE as u64 + 1), 0);
        assert_eq!(
            long.iter().map(Vec::len).collect::<Vec<_>>(),
            [PER_ENVELOPE, PER_ENVELOPE, 1]
        );
        assert_eq!(long[2][0].seq, 2 * PER_ENVELOPE as u64 + 1);
    }

    #[test]
    fn an_upload_answer_is_stored_moved_on_or_not_taken() {
        let up = |results| Response::Uploaded { results };
        assert_eq!(answer(&up(vec![Ok(9)])), Answer::Stored(9));
        assert_eq!(
            answer(&up(vec![Err(ErrorCode::AccessMoved)])),
            Answer::KeyMoved
        );
        assert_eq!(
            answer(&up(vec![Err(ErrorCode::Forbidden)])),
            Answer::NotTaken
        );
        assert_eq!(answer(&up(vec![])), Answer::NotTaken);
        assert_eq!(answer(&Response::Ok), Answer::NotTaken);
    }
}
