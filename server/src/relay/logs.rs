//! Appends to the signed logs: accounts (devices) and documents' access.

use casebook_shared::access::{Member, Role};
use casebook_shared::frames::{ErrorCode, Response};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::{Change, MAX_CREATES_PER_CONN, Relay, Session, err, store_err};
use crate::state::{Account, State};
use crate::storage::{Storage, StoreError, WriteJob};

/// Whether an append was refused because its position was taken: another
/// device (or, over a shared store, another relay node) appended first.
fn moved_on(r: &Response) -> bool {
    matches!(r, Response::Error { code: ErrorCode::Conflict, reason } if reason == MOVED_ON)
}

const MOVED_ON: &str = "the log moved on; fetch it and retry";

impl<S: Storage> Relay<S> {
    /// The account appending `entries` to a log: authenticated, within its
    /// write rate (new documents count too), and the signer of every entry.
    async fn log_writer(
        &self,
        session: &Session,
        entries: &[Signed],
    ) -> Result<AccountId, Response> {
        if entries.is_empty() {
            return Err(err(ErrorCode::BadRequest, "an append needs entries"));
        }
        let (account, device) = self.identity(session).await?;
        self.limiter.upload(&account)?;
        if entries.iter().any(|e| e.signer != device) {
            return Err(err(
                ErrorCode::Forbidden,
                "entries must be signed by this connection's device",
            ));
        }
        Ok(account)
    }

    pub(super) async fn create_account(
        &self,
        session: &mut Session,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        if session.creates >= MAX_CREATES_PER_CONN {
            return err(
                ErrorCode::Limited,
                "too many accounts created on this connection",
            );
        }
        session.creates += 1;
        if let Err(e) = self.catch_up().await {
            return store_err(e);
        }
        let _guard = self.log_lock.lock().await;
        let state = match State::check_account(None, &entries) {
            Ok(s) => s,
            Err(e) => return err(ErrorCode::Invalid, e.to_string()),
        };
        match self.account(&state.id).await {
            Ok(Some(_)) => return err(ErrorCode::Conflict, "this account already exists"),
            Ok(None) => {}
            Err(e) => return store_err(e),
        }
        // A device another account lists is refused by the store.
        self.store_account(None, state, entries).await
    }

    pub(super) async fn append_account(
        &self,
        session: &Session,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        // First, so a device revoked through another node is refused here.
        if let Err(e) = self.catch_up().await {
            return store_err(e);
        }
        let account = match self.log_writer(session, &entries).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let answer = {
            let _guard = self.log_lock.lock().await;
            let held = match self.account(&account).await {
                Ok(Some(a)) => a,
                Ok(None) => return err(ErrorCode::NotFound, "no such account on this relay"),
                Err(e) => return store_err(e),
            };
            match State::check_account(Some(&held.state), &entries) {
                Err(e) => err(ErrorCode::Invalid, e.to_string()),
                // A device another account lists is refused by the store.
                Ok(state) => self.store_account(Some(&held), state, entries).await,
            }
        };
        // Another node appended first: hold the log as stored, so the
        // device's retry is checked against it.
        if moved_on(&answer)
            && let Err(e) = self.catch_up().await
        {
            return store_err(e);
        }
        answer
    }

    pub(super) async fn store_account(
        &self,
        prev: Option<&Account>,
        state: casebook_shared::account::AccountState,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        let first_seq = state.len - entries.len() as u64;
        let job = WriteJob::Account {
            account: state.id,
            first_seq,
            entries: entries.clone(),
            devices: state.devices.keys().copied().collect(),
        };
        match self.store.submit(job).await {
            Ok(mut r) => match r.pop() {
                Some(Ok(_)) => {
                    tracing::info!(account = %state.id.short(), entries = entries.len(), "account log appended");
                    self.write().commit_account(prev, state, entries);
                    Response::Ok
                }
                Some(Err(StoreError::LogConflict)) => err(ErrorCode::Conflict, MOVED_ON),
                // Another node gave it to another account first.
                Some(Err(e @ StoreError::DeviceClaimed(_))) => {
                    err(ErrorCode::Conflict, e.to_string())
                }
                Some(Err(e)) => store_err(e),
                None => store_err(StoreError::Stopped),
            },
            Err(_) => store_err(StoreError::Stopped),
        }
    }

    pub(super) async fn append_access(
        &self,
        session: &Session,
        doc: DocId,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        // First, so a device revoked through another node is refused here.
        if let Err(e) = self.catch_up().await {
            return store_err(e);
        }
        let account = match self.log_writer(session, &entries).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let answer = self.append_access_locked(account, doc, entries).await;
        if moved_on(&answer)
            && let Err(e) = self.catch_up().await
        {
            return store_err(e);
        }
        answer
    }

    async fn append_access_locked(
        &self,
        account: AccountId,
        doc: DocId,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        let _guard = self.log_lock.lock().await;
        let _order = self.order.write().await;
        let held = match self.doc(&doc).await {
            Ok(d) => d,
            Err(e) => return store_err(e),
        };
        let signer_len = match self.account(&account).await {
            Ok(a) => a.map_or(0, |a| a.log.len() as u64),
            Err(e) => return store_err(e),
        };
        let first_seq = held.as_ref().map_or(0, |d| d.access_len());
        let signer = (account, signer_len);
        let mut state = match self.check_access(&doc, held.as_deref(), &entries).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return err(ErrorCode::Invalid, e.to_string()),
            Err(e) => return store_err(e),
        };
        if state.members.get(&account).map(|m| m.role) != Some(Role::Owner) {
            return err(
                ErrorCode::Forbidden,
                "only an owner changes who may read a document",
            );
        }
        let job = if state.disposed {
            // Everyone who ever could read it: a colleague whose share
            // ended still holds their copy, and deletes it too.
            let mut readers: Vec<AccountId> = state.grants.iter().map(|g| g.account).collect();
            readers.extend(state.members.keys());
            readers.sort();
            readers.dedup();
            for r in &readers {
                state.members.entry(*r).or_insert(Member {
                    role: Role::Read,
                    expires: None,
                    added_seq: 0,
                });
            }
            WriteJob::Dispose {
                doc,
                first_seq,
                entries: entries.clone(),
                readers,
                head: held.as_ref().map_or(0, |d| d.head()),
                signer,
            }
        } else {
            WriteJob::Access {
                doc,
                first_seq,
                entries: entries.clone(),
                owner: state.owner,
                members: state.members.keys().copied().collect(),
                signer,
            }
        };
        match self.store.submit(job).await {
            Ok(mut r) => match r.pop() {
                Some(Ok(w)) if state.disposed => {
                    tracing::info!(doc = %doc.short(), freed = -w.added, "document disposed of");
                    // At the head as the store kept it, which may be
                    // higher than this node had heard of.
                    let d = self.write().commit_disposal(
                        held.as_deref(),
                        state,
                        entries,
                        w.seq,
                        w.added,
                    );
                    self.announce(&[(Change::told(doc, d.head()), d)]);
                    Response::Ok
                }
                Some(Ok(_)) => {
                    tracing::info!(doc = %doc.short(), entries = entries.len(), "access log appended");
                    let d = self.write().commit_access(held.as_deref(), state, entries);
                    self.announce(&[(Change::told(doc, d.head()), d)]);
                    Response::Ok
                }
                // The log, or the signer's account log, grew through
                // another node: the caller reads them again.
                Some(Err(StoreError::LogConflict | StoreError::Stale)) => {
                    err(ErrorCode::Conflict, MOVED_ON)
                }
                Some(Err(e)) => store_err(e),
                None => store_err(StoreError::Stopped),
            },
            Err(_) => store_err(StoreError::Stopped),
        }
    }
}
