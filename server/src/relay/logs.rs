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

pub(super) const MOVED_ON: &str = "the log moved on; fetch it and retry";

/// Whose entries a connection may append.
#[derive(Clone, Copy)]
enum Signers {
    ThisDevice,
    AnyOfTheAccount,
}

/// Why a log sent whole was refused: the relay's begins otherwise.
const ACCOUNT_DIFFERS: &str =
    "this account exists here with a log that is not the start of the one sent";

impl<S: Storage> Relay<S> {
    /// `answer`, once the log it was refused for having moved on (another
    /// relay node appended first) is held as stored, so the device's retry
    /// is checked against it.
    pub(super) async fn caught_up_after(&self, answer: Response) -> Response {
        if moved_on(&answer)
            && let Err(e) = self.catch_up().await
        {
            return store_err(e);
        }
        answer
    }

    /// The account appending `entries` to a log: authenticated, within its
    /// write rate (new documents count too), and the signer of every entry
    /// through its devices. An account log's entries must be this
    /// connection's device's (a log lacking its end goes back whole, see
    /// `restore_account`). An access log's may be any of the account's
    /// devices', as the account log lists them: a device sends back the
    /// entries its account's other devices signed that a relay restored
    /// from an older copy lacks, and each entry is checked against the
    /// account log at the length it was signed at, as any other.
    async fn log_writer(
        &self,
        session: &Session,
        entries: &[Signed],
        signers: Signers,
    ) -> Result<AccountId, Response> {
        if entries.is_empty() {
            return Err(err(ErrorCode::BadRequest, "an append needs entries"));
        }
        let (account, device) = self.identity(session).await?;
        self.limiter.upload(&account)?;
        // The account signed in just now, so it is held; were it not, the
        // narrower rule applies.
        let listed = match signers {
            Signers::ThisDevice => None,
            Signers::AnyOfTheAccount => match self.account(&account).await {
                Ok(a) => a,
                Err(e) => return Err(store_err(e)),
            },
        };
        let signed_by = |e: &Signed| match &listed {
            None => e.signer == device,
            Some(a) => a.state.devices.contains_key(&e.signer),
        };
        if !entries.iter().all(signed_by) {
            return Err(err(
                ErrorCode::Forbidden,
                match signers {
                    Signers::ThisDevice => "entries must be signed by this connection's device",
                    Signers::AnyOfTheAccount => {
                        "entries must be signed by a device of this connection's account"
                    }
                },
            ));
        }
        Ok(account)
    }

    pub(super) async fn create_account(
        &self,
        session: &mut Session,
        entries: Vec<casebook_shared::signed::Signed>,
    ) -> Response {
        // Every request counts, but a log sent back that the relay took
        // (see `restore_account`): a device sends back its own account's
        // log and those of everyone it shares with in one round, while a
        // log that does not verify, or that the relay holds already, costs
        // its checking and adds nothing.
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
        let answer = {
            let _guard = self.log_lock.lock().await;
            let state = match State::check_account(None, &entries) {
                Ok(s) => s,
                Err(e) => return err(ErrorCode::Invalid, e.to_string()),
            };
            match self.account(&state.id).await {
                Ok(Some(held)) => {
                    let (answer, took) = self.restore_account(&held, state, entries).await;
                    if took {
                        session.creates -= 1;
                    }
                    answer
                }
                // A device another account lists is refused by the store.
                Ok(None) => self.store_account(None, state, entries).await,
                Err(e) => return store_err(e),
            }
        };
        self.caught_up_after(answer).await
    }

    /// A whole log, verified from its first entry, for an account this
    /// relay holds: the relay takes the entries it lacks when what it holds
    /// is where that log begins. A relay restored from an older copy lacks
    /// entries its account's devices (and those they share with) hold; any
    /// of them sends the log back this way, before authenticating, since
    /// the relay may no longer know the device that asks. Each entry is
    /// signed by a device the log itself made active, so whoever sends it
    /// only puts back what the account wrote. A log the relay already
    /// holds whole (another device sent it back first) is Ok; one that
    /// begins otherwise (two histories) is refused. Returns the answer,
    /// and whether the relay took entries.
    async fn restore_account(
        &self,
        held: &Account,
        state: casebook_shared::account::AccountState,
        mut entries: Vec<Signed>,
    ) -> (Response, bool) {
        let known = held.log.len();
        if entries.len() <= known {
            return match held.log[..entries.len()] == entries[..] {
                true => (Response::Ok, false),
                false => (err(ErrorCode::Conflict, ACCOUNT_DIFFERS), false),
            };
        }
        if entries[..known] != held.log[..] {
            return (err(ErrorCode::Conflict, ACCOUNT_DIFFERS), false);
        }
        let lacked = entries.split_off(known);
        tracing::warn!(
            account = %state.id.short(),
            entries = lacked.len(),
            "an account log the relay lacked the end of was sent back"
        );
        let answer = self.store_account(Some(held), state, lacked).await;
        let took = matches!(answer, Response::Ok);
        (answer, took)
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
        let account = match self
            .log_writer(session, &entries, Signers::ThisDevice)
            .await
        {
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
        self.caught_up_after(answer).await
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
        let account = match self
            .log_writer(session, &entries, Signers::AnyOfTheAccount)
            .await
        {
            Ok(a) => a,
            Err(r) => return r,
        };
        let answer = self.append_access_locked(account, doc, entries).await;
        self.caught_up_after(answer).await
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
                alone: false,
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
