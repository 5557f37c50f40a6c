//! Request handling, apart from QUIC: what each request may do and what the
//! relay answers. Every check is against verified logs held in [`State`]
//! (read from the store when not held, [`held`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use casebook_shared::clock::Clock;
use casebook_shared::crypto::{self, random_bytes};
use casebook_shared::frames::{self, DocHead, ErrorCode, MAX_MAILBOX_MSG, Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId};

mod disposals;
mod follow;
mod held;
mod hub;
mod logs;
mod upload;

pub use hub::Watch;

use crate::limits::{Limiter, Limits, Slot};
use crate::mailbox::MailboxError;
use crate::state::{Capacity, Doc, State};
use crate::storage::{Storage, StoreError};

/// Largest page of fetched envelopes.
pub const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;
/// Accounts one connection may create (stops a loop filling the database).
const MAX_CREATES_PER_CONN: u32 = 4;

/// One connection's standing.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub identity: Option<(AccountId, DeviceId)>,
    /// Where the connection comes from, for the log.
    pub peer: Option<std::net::SocketAddr>,
    nonce: Option<[u8; 32]>,
    creates: u32,
    /// The connection's place under its account's connection limit.
    slot: Option<Arc<Slot>>,
}

impl Session {
    /// A new connection's session.
    pub fn for_peer(peer: std::net::SocketAddr) -> Session {
        Session {
            peer: Some(peer),
            ..Session::default()
        }
    }
}

/// A document changed: which one and its new head, and where it is known,
/// the envelope that made the change.
#[derive(Clone, Debug)]
pub struct Change {
    pub doc: DocId,
    pub seq: u64,
    pub pushed: Option<Arc<Pushed>>,
}

impl Change {
    /// A change told without its envelope (the watcher fetches it).
    pub fn told(doc: DocId, seq: u64) -> Change {
        Change {
            doc,
            seq,
            pushed: None,
        }
    }
}

/// An envelope pushed with its change (see
/// [`Request::SubscribeItems`](casebook_shared::frames::Request)).
#[derive(Debug)]
pub struct Pushed {
    pub envelope: Vec<u8>,
    /// The document's highest sequence number below this one.
    pub prev: u64,
}

/// Longest envelope pushed with its change; a longer one is fetched. A
/// watching device that falls behind holds up to its account channel's
/// backlog of changes in memory (a few hundred), envelopes and all, so
/// this bounds what one slow device can pin.
pub const MAX_PUSHED: usize = 16 * 1024;

/// The relay's shared core.
pub struct Relay<S: Storage> {
    store: Arc<S>,
    state: RwLock<State>,
    /// Held while a log is appended to or read again from the store; it
    /// keeps the version of the store's log changes memory holds (see
    /// [`follow`]; always 0 over SQLite).
    log_lock: tokio::sync::Mutex<u64>,
    /// The version `log_lock` holds, readable without waiting for it.
    log_seen: std::sync::atomic::AtomicU64,
    /// Uploads are checked and queued under the read side; an access-log
    /// change is checked, written and applied under the write side. So an
    /// envelope's sequence number falls on the same side of an access
    /// change as the state its check saw: a member's last upload before a
    /// removal is stored before anything under the epoch that follows,
    /// which is what clients rely on to judge a former member's changes.
    order: tokio::sync::RwLock<()>,
    hub: hub::Hub,
    fingerprint: [u8; 32],
    limiter: Arc<Limiter>,
    /// What a share's expiry is judged against: the system's, or a
    /// simulation's that lets days pass.
    clock: Clock,
    /// Whether other relay nodes write to the same store, so memory may be
    /// behind it (see [`follow`]).
    shared: bool,
}

fn err(code: ErrorCode, reason: impl Into<String>) -> Response {
    Response::error(code, reason)
}

fn store_err(e: StoreError) -> Response {
    crate::metrics::storage_error();
    tracing::error!(error = %e, "storage");
    err(
        ErrorCode::Internal,
        "the relay could not store this; nothing was kept",
    )
}

impl<S: Storage> Relay<S> {
    /// A relay over `store`. It reads nothing of the logs now: each is
    /// read and verified when first needed, and at most `cap` of them are
    /// held, so start-up and memory do not grow with what is stored.
    pub async fn load(
        store: Arc<S>,
        fingerprint: [u8; 32],
        limits: Limits,
        cap: Capacity,
    ) -> Result<Self, StoreError> {
        // The version first: what changes after it is read at the first
        // catch-up, never missed.
        let version = store.log_version().await?;
        let cursor = store.cursor().await?;
        let mut relay = Self::new(store, fingerprint, limits, cap).with_cursor(cursor);
        *relay.log_lock.get_mut() = version;
        *relay.log_seen.get_mut() = version;
        Ok(relay)
    }

    /// A relay over `store` holding nothing yet (and with no cursor: see
    /// [`Relay::load`]).
    pub fn new(store: Arc<S>, fingerprint: [u8; 32], limits: Limits, cap: Capacity) -> Self {
        let shared = store.is_shared();
        Relay {
            limiter: Limiter::new(limits),
            store,
            state: RwLock::new(State::new(cap)),
            log_lock: tokio::sync::Mutex::new(0),
            log_seen: std::sync::atomic::AtomicU64::new(0),
            order: tokio::sync::RwLock::new(()),
            hub: hub::Hub::default(),
            fingerprint,
            clock: Clock::system(),
            shared,
        }
    }

    /// Counts what the store holds for the metrics, once; in the
    /// background, since it reads every stored size.
    pub async fn count_stored(&self) -> Result<(), StoreError> {
        let total = self.store.stored_bytes().await?;
        let mut st = self.write();
        // What was stored while it counted is in the total, or nearly.
        st.stored = total;
        crate::metrics::stored_bytes(st.stored);
        Ok(())
    }

    /// The same relay, knowing `cursor` as the highest number handed out
    /// ([`Relay::load`] reads it from the store).
    pub fn with_cursor(self, cursor: u64) -> Self {
        self.write().cursor = cursor;
        self
    }

    /// The same relay, judging time by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Unix seconds now, by this relay's clock.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches the changes to documents `account` may read.
    pub fn watch(&self, account: AccountId) -> Watch<'_> {
        self.hub.watch(account)
    }

    /// Tells the devices watching each document's readers that it changed.
    fn announce(&self, changes: &[(Change, Arc<Doc>)]) {
        let now = self.now();
        for (c, d) in changes {
            self.hub.tell(d.readers(now), c.clone());
        }
    }

    /// Whether `account` may read `doc` now.
    pub async fn may_read(&self, doc: &DocId, account: &AccountId) -> Result<bool, StoreError> {
        let now = self.now();
        Ok(self
            .doc(doc)
            .await?
            .is_some_and(|d| d.state.role_of(account, now).is_some()))
    }

    /// How many accounts and documents it holds verified in memory now.
    pub fn held(&self) -> (usize, usize) {
        self.read().held()
    }

    /// The limits this relay enforces.
    pub fn limits(&self) -> &Limits {
        &self.limiter.limits
    }

    /// Whether the store answers.
    pub async fn store_ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The authenticated, still-active identity of a session.
    pub async fn identity(&self, session: &Session) -> Result<(AccountId, DeviceId), Response> {
        let Some((account, device)) = session.identity else {
            return Err(err(ErrorCode::Unauthorized, "authenticate first"));
        };
        let active = match self.account(&account).await {
            Ok(a) => a.is_some_and(|a| a.state.is_active(&device)),
            Err(e) => return Err(store_err(e)),
        };
        if !active {
            tracing::warn!(
                account = %account.short(),
                device = %device.short(),
                peer = ?session.peer,
                "a revoked device made a request"
            );
            crate::metrics::auth_failed("revoked");
            return Err(err(
                ErrorCode::Unauthorized,
                "this device has been revoked from its account",
            ));
        }
        Ok((account, device))
    }

    /// Every document `account` may read now, with its heads; the client
    /// compares them with what it holds (access-log changes have no
    /// sequence number, so a `since` filter would hide them).
    async fn list(&self, account: &AccountId) -> Result<Vec<DocHead>, StoreError> {
        let ids = self.store.member_docs(*account).await?;
        if self.shared {
            // Heads another node moved, not yet announced here.
            self.refresh_heads(ids.clone()).await?;
        }
        let now = self.now();
        let mut out: Vec<DocHead> = self
            .docs(&ids)
            .await?
            .into_iter()
            .filter_map(|(id, d)| d.head_for(id, account, now))
            .collect();
        out.sort_by_key(|h| (h.seq, h.doc));
        Ok(out)
    }

    /// Refuses an authentication, counted and logged.
    fn auth_refused(
        session: &Session,
        device: &DeviceId,
        reason: &'static str,
        code: ErrorCode,
        says: &str,
    ) -> Response {
        crate::metrics::auth_failed(reason);
        tracing::warn!(device = %device.short(), peer = ?session.peer, reason, "authentication refused");
        err(code, says)
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
                    return Self::auth_refused(
                        session,
                        &device,
                        "bad-signature",
                        ErrorCode::Unauthorized,
                        "the challenge signature is wrong",
                    );
                }
                // A device paired (or revoked) through another relay node.
                if let Err(e) = self.catch_up().await {
                    return store_err(e);
                }
                let listed = match self.store.device_account(device).await {
                    Ok(l) => l,
                    Err(e) => return store_err(e),
                };
                let account = match (account, listed) {
                    (Some(a), Some(l)) if a == l => a,
                    (None, Some(l)) => l,
                    (_, None) => {
                        return Self::auth_refused(
                            session,
                            &device,
                            "unknown-device",
                            ErrorCode::NotFound,
                            "no account lists this device",
                        );
                    }
                    (Some(_), Some(_)) => {
                        return Self::auth_refused(
                            session,
                            &device,
                            "other-account",
                            ErrorCode::Unauthorized,
                            "this device belongs to another account",
                        );
                    }
                };
                let active = match self.account(&account).await {
                    Ok(a) => a.is_some_and(|a| a.state.is_active(&device)),
                    Err(e) => return store_err(e),
                };
                if !active {
                    return Self::auth_refused(
                        session,
                        &device,
                        "revoked",
                        ErrorCode::Unauthorized,
                        "this device has been revoked from its account",
                    );
                }
                if session.identity.map(|(a, _)| a) != Some(account) {
                    match self.limiter.connect(account) {
                        Ok(slot) => session.slot = Some(Arc::new(slot)),
                        Err(r) => return r,
                    }
                }
                session.identity = Some((account, device));
                Response::Authenticated { account }
            }
            Request::CreateAccount { entries } => self.create_account(session, entries).await,
            Request::AppendAccount { entries } => self.append_account(session, entries).await,
            Request::GetAccount { account, from } => {
                if let Err(e) = self.catch_up().await {
                    return store_err(e);
                }
                if let Err(r) = self.identity(session).await {
                    return r;
                }
                match self.account(&account).await {
                    Ok(Some(a)) => Response::Log {
                        entries: a.log.iter().skip(from as usize).cloned().collect(),
                    },
                    Ok(None) => err(ErrorCode::NotFound, "no such account on this relay"),
                    Err(e) => store_err(e),
                }
            }
            Request::AppendAccess { doc, entries } => {
                self.append_access(session, doc, entries).await
            }
            Request::RestoreDisposal {
                doc,
                entry,
                readers,
            } => self.restore_disposal(session, doc, entry, readers).await,
            Request::GetAccess { doc, from } => {
                if let Err(e) = self.catch_up().await {
                    return store_err(e);
                }
                let (account, _) = match self.identity(session).await {
                    Ok(i) => i,
                    Err(r) => return r,
                };
                match self.doc(&doc).await {
                    Ok(Some(d))
                        if d.state.role_of(&account, self.now()).is_some()
                            || (d.state.disposed && d.state.members.contains_key(&account)) =>
                    {
                        Response::Log {
                            entries: d.entries_from(from),
                        }
                    }
                    Ok(Some(_)) => err(ErrorCode::Forbidden, "not a member of this document"),
                    Ok(None) => err(ErrorCode::NotFound, "no such document"),
                    Err(e) => store_err(e),
                }
            }
            Request::ListDocs { .. } => {
                if let Err(e) = self.catch_up().await {
                    return store_err(e);
                }
                let account = match self.identity(session).await {
                    Ok((account, _)) => account,
                    Err(r) => return r,
                };
                match self.list(&account).await {
                    Ok(docs) => Response::Docs {
                        docs,
                        cursor: self.read().cursor,
                    },
                    Err(e) => store_err(e),
                }
            }
            Request::Upload { envelopes } => self.upload(session, envelopes, None).await,
            Request::UploadLatest { envelopes, heads } => {
                let heads: std::collections::HashMap<_, _> = heads.into_iter().collect();
                self.upload(session, envelopes, Some(&heads)).await
            }
            Request::Fetch { docs, max_bytes } => self.fetch(session, docs, max_bytes).await,
            Request::Subscribe | Request::SubscribeItems { .. } => {
                err(ErrorCode::BadRequest, "subscribe is a stream of its own")
            }
            Request::MailboxPut { mailbox, slot, msg } => {
                if msg.len() > MAX_MAILBOX_MSG {
                    return err(ErrorCode::BadRequest, "mailbox message too large");
                }
                match self.store.mailbox_put(mailbox, slot, msg).await {
                    Ok(()) => Response::Ok,
                    Err(e @ MailboxError::Taken) => err(ErrorCode::Conflict, e.to_string()),
                    Err(e @ MailboxError::Full) => err(ErrorCode::Limited, e.to_string()),
                    Err(MailboxError::Store(e)) => store_err(e),
                }
            }
            Request::MailboxTake {
                mailbox,
                slot,
                wait_ms,
            } => {
                let wait = Duration::from_millis(u64::from(wait_ms.min(120_000)));
                match crate::mailbox::take(&*self.store, mailbox, slot, wait).await {
                    Ok(msg) => Response::Mailbox { msg },
                    Err(e) => store_err(e),
                }
            }
        }
    }
}
