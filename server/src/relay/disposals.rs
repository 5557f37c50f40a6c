//! A disposal the relay lost, given back by a device that holds it.
//!
//! A relay restored from a copy older than a case's disposal holds the case
//! again, or (from a copy older than the case) holds nothing of it until a
//! device that never saw the disposal sends the case back whole. Either
//! way a device paired since would be served a case its owner destroyed.
//! Every device that carried out the disposal keeps its signed entry, and
//! gives it back alone ([`Request::RestoreDisposal`]): it proves itself, as
//! a sent-back account log does, so whoever sends it only puts back what
//! the owner decided.
//!
//! [`Request::RestoreDisposal`]: casebook_shared::frames::Request

use casebook_shared::access::{DocEntry, DocState, SIG_LABEL};
use casebook_shared::frames::{ErrorCode, Response};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::{Change, Relay, Session, err, store_err};
use crate::storage::{Storage, StoreError, WriteJob};

/// The most readers a disposal given back may name.
const MAX_READERS: usize = 1024;

impl<S: Storage> Relay<S> {
    /// Takes back `entry`, the disposal of `doc`, from any signed-in
    /// device: it must verify against its owner's account log as held
    /// here, from a device the owner has not revoked (deleting is for
    /// good, and a device revoked since could sign one dated back), and be
    /// the owner's of the document the relay holds, or, of one it does not
    /// hold, come from the owner's own devices (so nobody else can claim a
    /// document id first, by disposing of it as theirs). It need not
    /// continue the log held: devices that never saw it may have sent the
    /// case back, or written to it, since the disposal was signed.
    /// `readers` (the accounts the owner's device knew could read it)
    /// are told of it besides those the relay knows, from the owner's own
    /// devices only.
    pub(super) async fn restore_disposal(
        &self,
        session: &Session,
        doc: DocId,
        entry: Signed,
        readers: Vec<AccountId>,
    ) -> Response {
        if readers.len() > MAX_READERS {
            return err(ErrorCode::BadRequest, "too many readers");
        }
        if let Err(e) = self.catch_up().await {
            return store_err(e);
        }
        let account = match self.identity(session).await {
            Ok((account, _)) => account,
            Err(r) => return r,
        };
        if let Err(r) = self.limiter.upload(&account) {
            return r;
        }
        let answer = self
            .restore_disposal_locked(account, doc, entry, readers)
            .await;
        self.caught_up_after(answer).await
    }

    async fn restore_disposal_locked(
        &self,
        sender: AccountId,
        doc: DocId,
        entry: Signed,
        told: Vec<AccountId>,
    ) -> Response {
        let _guard = self.log_lock.lock().await;
        let _order = self.order.write().await;
        let Ok(opened) = entry.open::<DocEntry>(SIG_LABEL) else {
            return err(ErrorCode::Invalid, "not a signed access entry");
        };
        let owner = match self.account(&opened.account).await {
            Ok(Some(a)) => a,
            Ok(None) => return err(ErrorCode::NotFound, "no such account on this relay"),
            Err(e) => return store_err(e),
        };
        if let Err(e) = DocState::verify_disposal(&entry, &doc, &owner.state) {
            return err(ErrorCode::Invalid, e.to_string());
        }
        if owner
            .state
            .devices
            .get(&entry.signer)
            .is_none_or(|d| d.revoked_seq.is_some())
        {
            return err(
                ErrorCode::Forbidden,
                "a disposal signed by a device its owner has revoked",
            );
        }
        let held = match self.doc(&doc).await {
            Ok(d) => d,
            Err(e) => return store_err(e),
        };
        match &held {
            Some(d) if d.state.owner != owner.state.id => {
                return err(
                    ErrorCode::Forbidden,
                    "a disposal signed by someone other than the document's owner",
                );
            }
            // Given back already (by another device), or disposed of
            // again since: the one kept stands.
            Some(d) if d.state.disposed => {
                return Response::Log {
                    entries: d.log.clone(),
                };
            }
            Some(_) => {}
            None if sender != owner.state.id => {
                return err(
                    ErrorCode::Forbidden,
                    "a disposal of a document this relay does not hold is given back by its owner's devices",
                );
            }
            None => {}
        }
        // Everyone who could read it, as in any disposal (see
        // `append_access_locked`), its owner, and whom the owner's device
        // knew of (shares made after the copy the relay was restored from).
        let mut readers: Vec<AccountId> = held.as_ref().map_or_else(Vec::new, |d| {
            d.state
                .grants
                .iter()
                .map(|g| g.account)
                .chain(d.state.members.keys().copied())
                .collect()
        });
        readers.push(owner.state.id);
        if sender == owner.state.id {
            readers.extend(told);
        }
        readers.sort();
        readers.dedup();
        let state = match DocState::tombstone(&entry, &doc, &owner.state, &readers) {
            Ok(s) => s,
            Err(e) => return err(ErrorCode::Invalid, e.to_string()),
        };
        let job = WriteJob::Dispose {
            doc,
            first_seq: opened.seq,
            entries: vec![entry.clone()],
            readers,
            head: held.as_ref().map_or(0, |d| d.head()),
            signer: (owner.state.id, owner.log.len() as u64),
            alone: true,
        };
        match self.store.submit(job).await {
            Ok(mut r) => match r.pop() {
                Some(Ok(w)) => {
                    tracing::warn!(
                        doc = %doc.short(),
                        freed = -w.added,
                        "a disposal the relay lacked was given back: the document is disposed of again"
                    );
                    let d = self.write().commit_disposal(
                        held.as_deref(),
                        state,
                        vec![entry.clone()],
                        w.seq,
                        w.added,
                    );
                    self.announce(&[(Change::told(doc, d.head()), d)]);
                    Response::Log {
                        entries: vec![entry],
                    }
                }
                Some(Err(StoreError::LogConflict | StoreError::Stale)) => {
                    err(ErrorCode::Conflict, super::logs::MOVED_ON)
                }
                Some(Err(e)) => store_err(e),
                None => store_err(StoreError::Stopped),
            },
            Err(_) => store_err(StoreError::Stopped),
        }
    }
}
