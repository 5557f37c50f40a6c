//! Request handling, apart from QUIC: what each request may do and what the
//! relay answers. Every check is against verified logs held in [`State`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use casebook_shared::access::Role;
use casebook_shared::crypto::{self, random_bytes};
use casebook_shared::envelope::{Envelope, Kind};
use casebook_shared::frames::{self, ErrorCode, MAX_MAILBOX_MSG, MAX_UPLOAD, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use tokio::sync::broadcast;

use crate::mailbox::{MailboxError, Mailboxes};
use crate::state::State;
use crate::storage::{NewEnvelope, Storage, StoreError, WriteJob};

/// Largest page of fetched envelopes.
pub const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;
/// Accounts one connection may create (stops a loop filling the database).
const MAX_CREATES_PER_CONN: u32 = 4;

/// One connection's standing.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub identity: Option<(AccountId, DeviceId)>,
    nonce: Option<[u8; 32]>,
    creates: u32,
}

/// A document changed: which one and its new head.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub doc: DocId,
    pub seq: u64,
}

/// The relay's shared core.
pub struct Relay<S: Storage> {
    store: Arc<S>,
    state: RwLock<State>,
    log_lock: tokio::sync::Mutex<()>,
    /// Uploads are checked and queued under the read side; an access-log
    /// change is checked, written and applied under the write side. So an
    /// envelope's sequence number falls on the same side of an access
    /// change as the state its check saw: a member's last upload before a
    /// removal is stored before anything under the epoch that follows,
    /// which is what clients rely on to judge a former member's changes.
    order: tokio::sync::RwLock<()>,
    changes: broadcast::Sender<Change>,
    mailboxes: Mailboxes,
    fingerprint: [u8; 32],
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn err(code: ErrorCode, reason: impl Into<String>) -> Response {
    Response::error(code, reason)
}

fn store_err(e: StoreError) -> Response {
    tracing::error!(error = %e, "storage");
    err(
        ErrorCode::Internal,
        "the relay could not store this; nothing was kept",
    )
}

impl<S: Storage> Relay<S> {
    /// Loads and re-verifies every log from the store.
    pub fn new(store: Arc<S>, fingerprint: [u8; 32]) -> Result<Self, StoreError> {
        let state = State::rebuild(store.load()?)?;
        Ok(Relay {
            store,
            state: RwLock::new(state),
            log_lock: tokio::sync::Mutex::new(()),
            order: tokio::sync::RwLock::new(()),
            changes: broadcast::channel(4096).0,
            mailboxes: Mailboxes::default(),
            fingerprint,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to document changes (filtered per connection by membership).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Whether `account` may read `doc` now.
    pub fn may_read(&self, doc: &DocId, account: &AccountId) -> bool {
        self.read().role(doc, account, now()).is_some()
    }

    /// The authenticated, still-active identity of a session.
    pub fn identity(&self, session: &Session) -> Result<(AccountId, DeviceId), Response> {
        let Some((account, device)) = session.identity else {
            return Err(err(ErrorCode::Unauthorized, "authenticate first"));
        };
        if !self.read().device_active(&account, &device) {
            return Err(err(
                ErrorCode::Unauthorized,
                "this device has been revoked from its account",
            ));
        }
        Ok((account, device))
    }

    /// Answers one request.
    pub async fn handle(&self, session: &mut Session, req: Request) -> Response {
        match req {
            Request::Challenge => {
                let nonce = random_bytes();
                session.nonce = Some(nonce);
                Response::Challenge { nonce }
            }
            Request::Auth {
                account,
                device,
                sig,
            } => {
                let Some(nonce) = session.nonce.take() else {
                    return err(ErrorCode::BadRequest, "ask for a challenge first");
                };
                let msg =
                    frames::auth_message(&self.fingerprint, &nonce, account.as_ref(), &device);
                if crypto::verify(&device, frames::AUTH_LABEL, &msg, &sig).is_err() {
                    return err(ErrorCode::Unauthorized, "the challenge signature is wrong");
                }
                let listed = self.read().device_account(&device);
                let account = match (account, listed) {
                    (Some(a), Some(l)) if a == l => a,
                    (None, Some(l)) => l,
                    (_, None) => return err(ErrorCode::NotFound, "no account lists this device"),
                    (Some(_), Some(_)) => {
                        return err(
                            ErrorCode::Unauthorized,
                            "this device belongs to another account",
                        );
                    }
                };
                if !self.read().device_active(&account, &device) {
                    return err(
                        ErrorCode::Unauthorized,
                        "this device has been revoked from its account",
                    );
                }
                session.identity = Some((account, device));
                Response::Authenticated { account }
            }
            Request::CreateAccount { entries } => self.create_account(session, entries).await,
            Request::AppendAccount { entries } => self.append_account(session, entries).await,
            Request::GetAccount { account, from } => {
                if let Err(r) = self.identity(session) {
                    return r;
                }
                match self.read().accounts.get(&account) {
                    Some(a) => Response::Log {
                        entries: a.log.iter().skip(from as usize).cloned().collect(),
                    },
                    None => err(ErrorCode::NotFound, "no such account on this relay"),
                }
            }
            Request::AppendAccess { doc, entries } => {
                self.append_access(session, doc, entries).await
            }
            Request::GetAccess { doc, from } => {
                let (account, _) = match self.identity(session) {
                    Ok(i) => i,
                    Err(r) => return r,
                };
                let st = self.read();
                match st.docs.get(&doc) {
                    Some(d) if d.state.role_of(&account, now()).is_some() => Response::Log {
                        entries: d.log.iter().skip(from as usize).cloned().collect(),
                    },
                    Some(_) => err(ErrorCode::Forbidden, "not a member of this document"),
                    None => err(ErrorCode::NotFound, "no such document"),
                }
            }
            Request::ListDocs { .. } => match self.identity(session) {
                Ok((account, _)) => {
                    let st = self.read();
                    Response::Docs {
                        docs: st.docs_for(&account, now()),
                        cursor: st.cursor,
                    }
                }
                Err(r) => r,
            },
            Request::Upload { envelopes } => self.upload(session, envelopes).await,
            Request::Fetch { docs, max_bytes } => self.fetch(session, docs, max_bytes).await,
            Request::Subscribe => err(ErrorCode::BadRequest, "subscribe is a stream of its own"),
            Request::MailboxPut { mailbox, slot, msg } => {
                if msg.len() > MAX_MAILBOX_MSG {
                    return err(ErrorCode::BadRequest, "mailbox message too large");
                }
                match self.mailboxes.put(mailbox, slot, msg) {
                    Ok(()) => Response::Ok,
                    Err(e @ MailboxError::Taken) => err(ErrorCode::Conflict, e.to_string()),
                    Err(e @ MailboxError::Full) => err(ErrorCode::Limited, e.to_string()),
                }
            }
            Request::MailboxTake {
                mailbox,
                slot,
                wait_ms,
            } => {
                let wait = Duration::from_millis(u64::from(wait_ms.min(120_000)));
                Response::Mailbox {
                    msg: self.mailboxes.take(mailbox, slot, wait).await,
                }
            }
        }
    }

    async fn create_account(
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
        let _guard = self.log_lock.lock().await;
        let state = match self.read().check_account(None, &entries) {
            Ok(s) => s,
            Err(e) => return err(ErrorCode::Invalid, e.to_string()),
        };
        if self.read().accounts.contains_key(&state.id) {
            return err(ErrorCode::Conflict, "this account already exists");
        }
        if let Some(e) = self.read().claimed_device(&state) {
            return err(ErrorCode::Conflict, e);
        }
        self.store_account(state, entries).await
    }

    async fn append_account(
        &self,
        session: &Session,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        let (account, device) = match self.identity(session) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if entries.iter().any(|e| e.signer != device) {
            return err(
                ErrorCode::Forbidden,
                "entries must be signed by this connection's device",
            );
        }
        let _guard = self.log_lock.lock().await;
        let state = match self.read().check_account(Some(&account), &entries) {
            Ok(s) => s,
            Err(e) => return err(ErrorCode::Invalid, e.to_string()),
        };
        if let Some(e) = self.read().claimed_device(&state) {
            return err(ErrorCode::Conflict, e);
        }
        self.store_account(state, entries).await
    }

    async fn store_account(
        &self,
        state: casebook_shared::account::AccountState,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        let first_seq = state.len - entries.len() as u64;
        let job = WriteJob::Account {
            account: state.id,
            first_seq,
            entries: entries.clone(),
        };
        match self.store.submit(job).await {
            Ok(mut r) => match r.pop() {
                Some(Ok(_)) => {
                    tracing::info!(account = %state.id.short(), entries = entries.len(), "account log appended");
                    self.write().commit_account(state, entries);
                    Response::Ok
                }
                Some(Err(StoreError::LogConflict)) => {
                    err(ErrorCode::Conflict, "the log moved on; fetch it and retry")
                }
                Some(Err(e)) => store_err(e),
                None => store_err(StoreError::Stopped),
            },
            Err(_) => store_err(StoreError::Stopped),
        }
    }

    async fn append_access(
        &self,
        session: &Session,
        doc: DocId,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        let (account, device) = match self.identity(session) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if entries.iter().any(|e| e.signer != device) {
            return err(
                ErrorCode::Forbidden,
                "entries must be signed by this connection's device",
            );
        }
        let _guard = self.log_lock.lock().await;
        let _order = self.order.write().await;
        let (state, first_seq) = {
            let st = self.read();
            let first_seq = st.docs.get(&doc).map_or(0, |d| d.log.len() as u64);
            match st.check_access(&doc, &entries) {
                Ok(s) => (s, first_seq),
                Err(e) => return err(ErrorCode::Invalid, e.to_string()),
            }
        };
        if state.members.get(&account).map(|m| m.role) != Some(Role::Owner) {
            return err(
                ErrorCode::Forbidden,
                "only an owner changes who may read a document",
            );
        }
        let job = WriteJob::Access {
            doc,
            first_seq,
            entries: entries.clone(),
        };
        match self.store.submit(job).await {
            Ok(mut r) => match r.pop() {
                Some(Ok(_)) => {
                    tracing::info!(doc = %doc.short(), entries = entries.len(), "access log appended");
                    self.write().commit_access(state, entries);
                    let head = self.read().docs.get(&doc).map_or(0, |d| d.head);
                    let _ = self.changes.send(Change { doc, seq: head });
                    Response::Ok
                }
                Some(Err(StoreError::LogConflict)) => {
                    err(ErrorCode::Conflict, "the log moved on; fetch it and retry")
                }
                Some(Err(e)) => store_err(e),
                None => store_err(StoreError::Stopped),
            },
            Err(_) => store_err(StoreError::Stopped),
        }
    }

    /// Checks each envelope (signature, author, membership, role) and stores
    /// the good ones in one group-committed job.
    async fn upload(&self, session: &Session, envelopes: Vec<Vec<u8>>) -> Response {
        let (account, device) = match self.identity(session) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if envelopes.len() > MAX_UPLOAD {
            return err(
                ErrorCode::BadRequest,
                format!("at most {MAX_UPLOAD} envelopes per upload"),
            );
        }
        let order = self.order.read().await;
        let mut results: Vec<Result<u64, ErrorCode>> = Vec::with_capacity(envelopes.len());
        let mut good = Vec::with_capacity(envelopes.len());
        // Where in `results` each good envelope's answer goes.
        let mut slots = Vec::with_capacity(envelopes.len());
        let now = now();
        for bytes in envelopes {
            match self.check_envelope(bytes, &account, &device, now) {
                Ok(e) => {
                    slots.push(results.len());
                    results.push(Err(ErrorCode::Internal));
                    good.push(e);
                }
                Err(code) => {
                    results.push(Err(code));
                }
            }
        }
        if good.is_empty() {
            return Response::Uploaded { results };
        }
        let docs: Vec<(DocId, bool)> = good
            .iter()
            .map(|e| (e.doc, e.snapshot_covers.is_some()))
            .collect();
        let queued = self.store.submit(WriteJob::Envelopes(good));
        drop(order);
        let stored = match queued.await {
            Ok(r) => r,
            Err(_) => return store_err(StoreError::Stopped),
        };
        let mut changed = Vec::new();
        for ((i, (doc, snapshot)), r) in slots.into_iter().zip(docs).zip(stored) {
            results[i] = match r {
                Ok(seq) => {
                    if !snapshot {
                        changed.push(Change { doc, seq });
                    }
                    Ok(seq)
                }
                Err(StoreError::Conflict) => Err(ErrorCode::Conflict),
                Err(e) => {
                    tracing::error!(error = %e, "storing an envelope");
                    Err(ErrorCode::Internal)
                }
            };
        }
        if !changed.is_empty() {
            let mut st = self.write();
            for c in &changed {
                st.advance(&c.doc, c.seq);
            }
        }
        for c in changed {
            let _ = self.changes.send(c);
        }
        Response::Uploaded { results }
    }

    fn check_envelope(
        &self,
        bytes: Vec<u8>,
        account: &AccountId,
        device: &DeviceId,
        now: u64,
    ) -> Result<NewEnvelope, ErrorCode> {
        let env = Envelope::decode(bytes).map_err(|_| ErrorCode::BadRequest)?;
        let h = &env.header;
        if h.author != *device || h.account != *account {
            return Err(ErrorCode::Forbidden);
        }
        env.verify().map_err(|_| ErrorCode::Invalid)?;
        {
            let st = self.read();
            let doc = st.docs.get(&h.doc).ok_or(ErrorCode::NotFound)?;
            let role = doc
                .state
                .role_of(account, now)
                .ok_or(ErrorCode::Forbidden)?;
            let allowed = match h.kind {
                Kind::Change => role.can_upload(),
                Kind::Snapshot => role >= Role::Write,
            };
            // Sealed under an epoch of the current membership: a member
            // whose terms changed (removed, added again as a commenter)
            // holds the old epochs' keys, and clients judge a change by
            // the role of its epoch.
            let since = doc
                .state
                .current_grant_from(account)
                .ok_or(ErrorCode::Forbidden)?;
            if !allowed || h.epoch > doc.state.epoch || h.epoch < since {
                return Err(ErrorCode::Forbidden);
            }
            // A snapshot may only cover changes the relay already holds:
            // covering more would hide changes that land later.
            if h.kind == Kind::Snapshot && h.covers > doc.head {
                return Err(ErrorCode::Invalid);
            }
        }
        let snapshot_covers = (h.kind == Kind::Snapshot).then_some(h.covers);
        let (doc, id) = (h.doc, h.id);
        Ok(NewEnvelope {
            doc,
            id,
            snapshot_covers,
            bytes: env.into_bytes(),
        })
    }

    async fn fetch(&self, session: &Session, docs: Vec<(DocId, u64)>, max_bytes: u32) -> Response {
        let (account, _) = match self.identity(session) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if docs.len() > 10_000 {
            return err(ErrorCode::BadRequest, "at most 10000 documents per fetch");
        }
        for (doc, _) in &docs {
            if !self.may_read(doc, &account) {
                return err(
                    ErrorCode::Forbidden,
                    format!("not a member of document {}", doc.short()),
                );
            }
        }
        let max = (max_bytes as usize).clamp(1, MAX_FETCH_BYTES);
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.fetch(&docs, max)).await {
            Ok(Ok((items, more))) => Response::Changes { items, more },
            Ok(Err(e)) => store_err(e),
            Err(_) => store_err(StoreError::Stopped),
        }
    }
}
