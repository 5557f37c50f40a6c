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
//! What the relay refuses to take as a signal for good (the share ended
//! since this device read the access log, say) goes with the audit
//! entries instead, to the account's own devices only; what it refuses
//! for now (a new epoch, a limit) waits for the next round's signal.
//!
//! What another account tells is weighed: a signal holds one claim (a
//! device's newest change of the document) and at most
//! [`WANTS_PER_DOC`](super::claims) wants, and whatever more it holds is
//! ignored; each want of another account's is answered once, however
//! often it is asked or its signal served again; and a signal that does
//! not decode is the member's fault, not the relay's: it is recorded in
//! the trail and passed over, so it cannot stop this device judging the
//! document's claims.

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::codec;
use casebook_shared::envelope::Kind;
use casebook_shared::frames::{ErrorCode, MAX_UPLOAD, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId};

use super::claims::WANTS_PER_DOC;
use crate::docs::DocMeta;
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};
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
    /// relay took as told. Returns the documents whose signals the relay
    /// refused for good: their claims and wants go to this account's
    /// devices only, with the audit entries. Those of every other document
    /// told in signals wait for its signal (see [`Home::told_in_signals`]):
    /// refused for now, past what one upload takes, or not sealed at all,
    /// as nothing is for a document held back this round (its access log
    /// did not verify), one a refused account log is part of, or one kept
    /// under a legal hold.
    pub(crate) async fn push_signals(
        &mut self,
        relay: &Relay,
        held_back: &BTreeSet<DocId>,
    ) -> Result<BTreeSet<DocId>> {
        let mut given_up = BTreeSet::new();
        let claims = self.store.claims_to_tell(PER_SIGNAL)?;
        let audit = crate::audit_sync::audit_doc(&self.account_id());
        let wants = self.store.wants_to_tell(PER_SIGNAL, self.now(), &audit)?;
        if claims.is_empty() && wants.is_empty() {
            return Ok(given_up);
        }
        let now = self.now();
        let mut bodies: BTreeMap<DocId, Told> = BTreeMap::new();
        for c in &claims {
            bodies.entry(c.0).or_default().0.push(*c);
        }
        for w in &wants {
            bodies.entry(w.0).or_default().1.push(*w);
        }
        let mut sealed = Vec::new();
        let kept = self.kept_under_hold()?;
        for (doc, (claims, wants)) in bodies {
            if !self.told_in_signals(&doc)?
                || held_back.contains(&doc)
                || kept.contains(&doc)
                || self.on_a_refused_log(&doc)?.is_some()
            {
                continue;
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
            sealed.push((doc, env, claims, wants));
        }
        // The rest next round, as one upload takes.
        sealed.truncate(MAX_UPLOAD);
        if sealed.is_empty() {
            return Ok(given_up);
        }
        let n = sealed.len();
        let envelopes = sealed.iter().map(|(_, e, ..)| e.clone()).collect();
        let results = match relay.request(&Request::Upload { envelopes }).await {
            Ok(Response::Uploaded { results }) if results.len() == n => results,
            Ok(r) => return Err(super::unexpected(r)),
            // Refused whole (a limit, say): the signals wait; the round
            // and its audit entries go on.
            Err(NetError::Relay { code, reason }) => {
                tracing::info!(?code, reason, "the relay took no signal this round");
                return Ok(given_up);
            }
            Err(e) => return Err(e.into()),
        };
        for ((doc, _, claims, wants), result) in sealed.iter().zip(results) {
            match result {
                Ok(_) => {
                    self.store.claims_told(claims)?;
                    self.store.wants_told(wants, now)?;
                }
                Err(code) if for_now(code) => {}
                Err(code) => {
                    tracing::info!(
                        ?code,
                        "the relay did not take a signal; its claims go to this account's devices only"
                    );
                    given_up.insert(*doc);
                }
            }
        }
        Ok(given_up)
    }

    /// Whether this account tells its claims and wants of `doc` in `doc`
    /// itself, as signals, rather than in the audit document.
    pub(crate) fn told_in_signals(&self, doc: &DocId) -> Result<bool> {
        if self.is_audit_doc(doc) {
            return Ok(false);
        }
        let me = self.account_id();
        Ok(self
            .access()
            .doc_meta(doc)?
            .is_some_and(|meta| signals_in(&meta, &me, self.now())))
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
        let Ok(signal) = codec::decode::<SignalBody>(body) else {
            // Once: a document fetched again from the start (incomplete,
            // say) serves it again each sync.
            if at > self.docs().sync_record(doc)?.seen {
                self.trail().record(
                    &format!(
                        "a signal from device {} did not decode; passed over",
                        author.short()
                    ),
                    Some(*doc),
                )?;
            }
            return Ok(());
        };
        let writes = self
            .access()
            .doc_meta(doc)?
            .and_then(|m| m.role_of(account, self.now()))
            .is_some_and(|r| r.can_upload());
        // A device's changes follow one another: its newest claim is all.
        let newest = signal.claims.iter().max_by_key(|(_, op)| *op);
        let claims: Vec<Claim> = match (writes, newest) {
            (true, Some((h, op))) => vec![(*doc, *h, *op)],
            _ => Vec::new(),
        };
        let wants: Vec<(DocId, Hash)> = signal
            .wants
            .iter()
            .take(WANTS_PER_DOC)
            .map(|h| (*doc, *h))
            .collect();
        self.store.keep_claims(author, &claims, 0)?;
        // Another account's want is answered once: numbered 0, no later
        // signal asks it anew (a member, or a relay serving an old signal
        // again, cannot make this device send its changes over and over).
        let at = if *account == self.account_id() { at } else { 0 };
        self.store.keep_wants(author, &wants, at)?;
        Ok(())
    }
}

/// Whether the relay refused a signal only for now: a new epoch landed
/// (sealed again next round), a limit, a fault of its own.
fn for_now(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AccessMoved | ErrorCode::Limited | ErrorCode::Internal | ErrorCode::Conflict
    )
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
