//! Signals: claims and wants told inside a shared document itself.
//!
//! The account's audit document carries claims and wants among the
//! account's own devices (see [`super::claims`]). A colleague's devices
//! cannot read it, so a relay could withhold an owner's newest change from
//! a colleague, or a colleague's from the owner, with nobody the wiser. In
//! a document shared with another account, each member's devices tell
//! their claims and wants in an envelope of the document (a
//! [`Kind::Signal`], sealed under its newest epoch and signed like a
//! change), which every member's devices fetch with the document's
//! changes: a member not served a claimed change names the document
//! INCOMPLETE and asks for it, and the device that made the change sends
//! it again. A reader signals too (the relay takes a signal from any
//! member): it writes nothing, so a claim in its signal is ignored, but it
//! asks for what it lacks.
//!
//! A signal is stored after the changes it claims, in the same document,
//! so a device that fetched the signal was served every envelope of the
//! document before it: its claims are judged by the pull that fetched it.
//! What the relay refuses to take as a signal (the share ended since this
//! device read the access log, say) goes with the audit entries instead,
//! to the account's own devices only.

use std::collections::BTreeMap;

use casebook_shared::codec;
use casebook_shared::envelope::Kind;
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId};

use crate::docs::DocMeta;
use crate::error::Result;
use crate::home::Home;
use crate::net::Relay;
use crate::store::{Claim, Hash};

/// Claims and wants per signal envelope, each (a document holds one claim
/// per device, and at most 16 wants queued).
const PER_SIGNAL: usize = 4000;

/// A document's claims and wants queued here, as the store lists them.
type Told = (Vec<Claim>, Vec<(DocId, Hash)>);

/// What a signal carries (public for the fuzz target of what another
/// member may have sealed in one).
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignalBody {
    /// The sending device's newest change the relay acknowledged: its hash
    /// and its last operation's number.
    pub claims: Vec<(Hash, u64)>,
    /// Changes a member claimed that the sending device was not served.
    pub wants: Vec<Hash>,
}

/// Whether this account, as `me`, tells its claims and wants of `doc` in
/// the document itself at `now`: it is a member, and so is another account.
pub(crate) fn signals_in(meta: &DocMeta, me: &AccountId, now: u64) -> bool {
    !meta.disposed
        && meta.role_of(me, now).is_some()
        && meta
            .members
            .iter()
            .any(|(a, _, exp)| a != me && exp.is_none_or(|e| now < e))
}

impl Home {
    /// Sends the claims and wants queued for documents shared with another
    /// account, one signal per document in one upload, and marks what the
    /// relay took as told; the rest wait for the audit entries. Returns how
    /// many signals were stored.
    pub(crate) async fn push_signals(&mut self, relay: &Relay) -> Result<usize> {
        let claims = self.store.claims_to_tell(PER_SIGNAL)?;
        let wants = self.store.wants_to_tell(PER_SIGNAL)?;
        if claims.is_empty() && wants.is_empty() {
            return Ok(0);
        }
        let me = self.account_id();
        let now = self.now();
        let mut bodies: BTreeMap<DocId, Told> = BTreeMap::new();
        for c in &claims {
            bodies.entry(c.0).or_default().0.push(*c);
        }
        for w in &wants {
            bodies.entry(w.0).or_default().1.push(*w);
        }
        let mut sealed = Vec::new();
        for (doc, (claims, wants)) in bodies {
            if self.is_audit_doc(&doc) {
                continue;
            }
            match self.access().doc_meta(&doc)? {
                Some(meta) if signals_in(&meta, &me, now) => {}
                _ => continue,
            }
            let body = SignalBody {
                claims: claims.iter().map(|(_, h, op)| (*h, *op)).collect(),
                wants: wants.iter().map(|(_, h)| *h).collect(),
            };
            let env = self.access().seal(
                &doc,
                Kind::Signal,
                EnvelopeId::fresh().0,
                &codec::encode(&body),
            )?;
            sealed.push((env, claims, wants));
        }
        if sealed.is_empty() {
            return Ok(0);
        }
        let n = sealed.len();
        let envelopes = sealed.iter().map(|(e, _, _)| e.clone()).collect();
        let results = match relay.request(&Request::Upload { envelopes }).await? {
            Response::Uploaded { results } if results.len() == n => results,
            r => return Err(super::unexpected(r)),
        };
        let mut stored = 0;
        for ((_, claims, wants), result) in sealed.iter().zip(results) {
            match result {
                Ok(_) => {
                    self.store.claims_told(claims)?;
                    self.store.wants_told(wants)?;
                    stored += 1;
                }
                Err(code) => tracing::info!(
                    ?code,
                    "the relay did not take a signal; its claims go to this account's devices only"
                ),
            }
        }
        Ok(stored)
    }

    /// Keeps what another device (of `account`) told in a signal of `doc`
    /// at `at`: its claims, judged by this pull (the signal came after the
    /// changes it names) if its account may write there, and its wants.
    pub(super) fn take_signal(
        &mut self,
        doc: &DocId,
        (account, author): (&AccountId, &DeviceId),
        body: &[u8],
        at: u64,
    ) -> Result<()> {
        if *author == self.device_id() {
            return Ok(());
        }
        let signal: SignalBody = codec::decode(body)?;
        let writes = self
            .access()
            .doc_meta(doc)?
            .and_then(|m| m.role_of(account, self.now()))
            .is_some_and(|r| r.can_upload());
        let claims: Vec<Claim> = match writes {
            true => signal
                .claims
                .iter()
                .map(|(h, op)| (*doc, *h, *op))
                .collect(),
            false => Vec::new(),
        };
        let wants: Vec<(DocId, Hash)> = signal.wants.iter().map(|h| (*doc, *h)).collect();
        self.store.keep_claims(author, &claims, 0)?;
        self.store.keep_wants(author, &wants, at)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casebook_shared::access::{Grant, Role};

    fn meta(members: Vec<(AccountId, Role, Option<u64>)>) -> DocMeta {
        DocMeta {
            owner: AccountId([1; 32]),
            epoch: 0,
            members,
            grants: Vec::<Grant>::new(),
            wraps: Default::default(),
            disposed: false,
        }
    }

    #[test]
    fn only_a_member_of_a_document_shared_with_another_account_signals_in_it() {
        let (me, other) = (AccountId([1; 32]), AccountId([2; 32]));
        let alone = meta(vec![(me, Role::Owner, None)]);
        assert!(!signals_in(&alone, &me, 10), "the audit entries carry it");
        let shared = meta(vec![(me, Role::Owner, None), (other, Role::Read, None)]);
        assert!(signals_in(&shared, &me, 10));
        assert!(signals_in(&shared, &other, 10), "a reader asks too");
        let expired = meta(vec![(me, Role::Owner, None), (other, Role::Write, Some(5))]);
        assert!(!signals_in(&expired, &me, 10), "the share expired");
        let commenter = meta(vec![(other, Role::Owner, None), (me, Role::Comment, None)]);
        assert!(signals_in(&commenter, &me, 10));
        let mut gone = shared;
        gone.disposed = true;
        assert!(!signals_in(&gone, &me, 10));
    }

    #[test]
    fn a_signal_body_decodes_and_garbage_is_an_error() {
        let body = SignalBody {
            claims: vec![([7; 32], 9)],
            wants: vec![[8; 32]],
        };
        let back: SignalBody = codec::decode(&codec::encode(&body)).unwrap();
        assert_eq!(back, body);
        assert!(codec::decode::<SignalBody>(&[0xff; 7]).is_err());
    }
}
