//! Uploads and fetches: every envelope checked before it is stored, every
//! fetched document checked against the reader's membership.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use casebook_shared::access::Role;
use casebook_shared::envelope::{Envelope, Kind, MAX_SIGNAL};
use casebook_shared::frames::{ErrorCode, MAX_UPLOAD, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId, Hash};

use super::{Change, MAX_FETCH_BYTES, MAX_PUSHED, Pushed, Relay, Session, err, store_err};
use crate::metrics;
use crate::state::Doc;
use crate::storage::{Fence, NewEnvelope, Storage, StoreError, WriteJob};

/// Uploads of at most this many envelopes have them pushed to watching
/// devices (see [`Relay::push_envelopes`]).
const PUSH_UPLOADS_UP_TO: usize = 8;

/// Why an envelope was refused: the code the device gets, and a fixed word
/// for the log and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Malformed,
    NotTheUploader,
    BadSignature,
    UnknownDocument,
    NotAMember,
    RoleForbids,
    WrongEpoch,
    /// Not sealed under the newest epoch, or sent as `UploadLatest`
    /// while a rotation is owed (see `rotation_due`).
    EpochBehind,
    SnapshotAhead,
    Conflict,
    Disposed,
    /// A signal over [`MAX_SIGNAL`].
    SignalTooLarge,
}

impl Refusal {
    fn code(self) -> ErrorCode {
        match self {
            Refusal::Malformed | Refusal::SignalTooLarge => ErrorCode::BadRequest,
            Refusal::NotTheUploader | Refusal::NotAMember | Refusal::RoleForbids => {
                ErrorCode::Forbidden
            }
            Refusal::WrongEpoch => ErrorCode::Forbidden,
            Refusal::BadSignature | Refusal::SnapshotAhead => ErrorCode::Invalid,
            Refusal::UnknownDocument | Refusal::Disposed => ErrorCode::NotFound,
            Refusal::Conflict => ErrorCode::Conflict,
            Refusal::EpochBehind => ErrorCode::AccessMoved,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::NotTheUploader => "not-the-uploader",
            Refusal::BadSignature => "bad-signature",
            Refusal::UnknownDocument => "unknown-document",
            Refusal::NotAMember => "not-a-member",
            Refusal::RoleForbids => "role-forbids",
            Refusal::WrongEpoch => "wrong-epoch",
            Refusal::EpochBehind => "epoch-behind",
            Refusal::SnapshotAhead => "snapshot-ahead",
            Refusal::Conflict => "conflicting-id",
            Refusal::Disposed => "disposed",
            Refusal::SignalTooLarge => "signal-too-large",
        }
    }
}

/// Counts and logs a refused envelope (ids and sizes, never content).
fn refused(
    r: Refusal,
    account: &AccountId,
    device: &DeviceId,
    doc: Option<&DocId>,
    size: usize,
) -> Result<u64, ErrorCode> {
    metrics::refused(r.name());
    tracing::warn!(
        account = %account.short(),
        device = %device.short(),
        doc = doc.map(|d| d.short()).unwrap_or_default(),
        bytes = size,
        reason = r.name(),
        "refused an envelope"
    );
    Err(r.code())
}

impl Refusal {
    /// Whether memory may have been behind the store when this was
    /// decided: another relay node may have made the document, changed
    /// its access, or stored the changes a snapshot covers.
    fn may_be_stale(self) -> bool {
        matches!(
            self,
            Refusal::UnknownDocument
                | Refusal::NotAMember
                | Refusal::RoleForbids
                | Refusal::WrongEpoch
                | Refusal::SnapshotAhead
        )
    }
}

impl<S: Storage> Relay<S> {
    /// Checks each envelope (signature, author, membership, role) and stores
    /// the good ones in one group-committed job.
    ///
    /// Where other relay nodes share the store, memory may be behind it:
    /// an envelope the store finds stale (its fence moved), or one memory
    /// would refuse for want of what another node wrote, is checked once
    /// more against its document and account as stored.
    ///
    /// With `latest`, each envelope must be sealed under its document's
    /// newest epoch, after the access-log entry `latest` names for its
    /// document, which must be the relay's last ([`Request::UploadLatest`]).
    ///
    /// [`Request::UploadLatest`]: casebook_shared::frames::Request::UploadLatest
    pub(super) async fn upload(
        &self,
        session: &Session,
        envelopes: Vec<Vec<u8>>,
        latest: Option<&HashMap<DocId, Hash>>,
    ) -> Response {
        let (account, device) = match self.identity(session).await {
            Ok(i) => i,
            Err(r) => return r,
        };
        if envelopes.len() > MAX_UPLOAD {
            return err(
                ErrorCode::BadRequest,
                format!("at most {MAX_UPLOAD} envelopes per upload"),
            );
        }
        if let Err(r) = self.limiter.upload(&account) {
            return r;
        }
        let mut results: Vec<Result<u64, ErrorCode>> =
            vec![Err(ErrorCode::Internal); envelopes.len()];
        let mut pending: Vec<(usize, Vec<u8>)> = envelopes.into_iter().enumerate().collect();
        for last in [false, true] {
            let again = match self
                .store_checked(&account, &device, pending, &mut results, last, latest)
                .await
            {
                Ok(again) => again,
                Err(r) => return r,
            };
            if again.is_empty() {
                break;
            }
            let mut docs: Vec<DocId> = again.iter().filter_map(|(_, d, _)| *d).collect();
            docs.sort();
            docs.dedup();
            if let Err(e) = self.refresh(docs).await {
                return store_err(e);
            }
            // The account's log as stored may revoke this device.
            if let Err(r) = self.identity(session).await {
                return r;
            }
            pending = again.into_iter().map(|(i, _, b)| (i, b)).collect();
        }
        Response::Uploaded { results }
    }

    /// One pass of [`Relay::upload`] over `pending` (each with its place in
    /// `results`). Returns what should be checked again after a refresh
    /// (with its document, where known), unless this is the `last` pass:
    /// then what the store found stale is answered `Internal`, which the
    /// device retries.
    async fn store_checked(
        &self,
        account: &AccountId,
        device: &DeviceId,
        pending: Vec<(usize, Vec<u8>)>,
        results: &mut [Result<u64, ErrorCode>],
        last: bool,
        latest: Option<&HashMap<DocId, Hash>>,
    ) -> Result<Vec<(usize, Option<DocId>, Vec<u8>)>, Response> {
        let mut again = Vec::new();
        // Decoded and their signatures checked (in one batch) before the
        // order lock, so that costly part never holds up an access change.
        let checked = decode_and_verify(pending, account, device);
        let order = self.order.read().await;
        // What the checks need, read under the order lock: no access
        // change lands between reading it and queueing what it allowed.
        let mut ids: Vec<DocId> = checked
            .iter()
            .filter_map(|(_, _, e)| e.as_ref().ok().map(|e| e.header.doc))
            .collect();
        ids.sort();
        ids.dedup();
        let docs: HashMap<DocId, Arc<Doc>> = self
            .docs(&ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .collect();
        let account_len = self
            .account(account)
            .await
            .map_err(store_err)?
            .map_or(0, |a| a.log.len() as u64);
        let mut good = Vec::with_capacity(checked.len());
        // Where in `results` each good envelope's answer goes.
        let mut slots = Vec::with_capacity(checked.len());
        let now = self.now();
        let due = match latest {
            Some(_) => self.rotation_due(&docs, now).await.map_err(store_err)?,
            None => HashSet::new(),
        };
        for (i, size, env) in checked {
            let refusal = match env {
                Ok(env) => {
                    let id = env.header.doc;
                    let doc = docs.get(&id);
                    // Owed a rotation, or sealed after another end of the
                    // access log than the relay's (a key of that epoch
                    // the relay does not hold: see the request).
                    let latest = latest.map(|heads| {
                        due.contains(&id) || heads.get(&id) != doc.map(|d| &d.state.head)
                    });
                    match check_member(&env, doc, account, account_len, now, latest) {
                        Ok(fence) => {
                            slots.push(i);
                            good.push(new_envelope(env, fence));
                            continue;
                        }
                        // Kept only where it may be checked again.
                        Err(r) if !last && self.shared && r.may_be_stale() => {
                            again.push((i, Some(env.header.doc), env.into_bytes()));
                            continue;
                        }
                        Err(r) => (r, Some(env.header.doc)),
                    }
                }
                Err(r) => r,
            };
            let (r, doc) = refusal;
            results[i] = refused(r, account, device, doc.as_ref(), size);
        }
        if good.is_empty() {
            return Ok(again);
        }
        self.ask_prev(&mut good, &docs);
        let reserved = self.reserve_quota(&good, &docs).await?;
        let envs: std::sync::Arc<[NewEnvelope]> = good.into();
        let queued = self.store.submit(WriteJob::Envelopes(envs.clone()));
        drop(order);
        let stored = queued.await;
        {
            let mut st = self.write();
            for (owner, n) in &reserved {
                st.reserve(owner, -(*n as i64));
            }
        }
        let Ok(stored) = stored else {
            return Err(store_err(StoreError::Stopped));
        };
        let mut changed: Vec<(Change, Arc<Doc>)> = Vec::new();
        let mut added = Vec::new();
        for ((i, e), r) in slots.into_iter().zip(envs.iter()).zip(stored) {
            let (doc, size) = (e.doc, e.bytes.len());
            results[i] = match r {
                Ok(w) => {
                    if let Some(d) = docs.get(&doc) {
                        if e.snapshot_covers.is_none() {
                            let mut change = Change::told(doc, w.seq);
                            // Pushed with its envelope where a watching
                            // device was to be told and the store said
                            // what precedes it.
                            change.pushed = w.prev.map(|prev| {
                                Arc::new(Pushed {
                                    envelope: e.bytes.clone(),
                                    prev,
                                })
                            });
                            changed.push((change, d.clone()));
                        }
                        added.push((d.clone(), w.added));
                    }
                    Ok(w.seq)
                }
                Err(StoreError::Conflict) => {
                    refused(Refusal::Conflict, account, device, Some(&doc), size)
                }
                // Checked before a disposal, stored after it: refused, and
                // nothing of it kept.
                Err(StoreError::Disposed) => {
                    refused(Refusal::Disposed, account, device, Some(&doc), size)
                }
                Err(StoreError::Stale) if !last => {
                    again.push((i, Some(doc), e.bytes.clone()));
                    Err(ErrorCode::Internal)
                }
                Err(e) => {
                    // Counted where the commit failed.
                    tracing::error!(error = %e, doc = %doc.short(), bytes = size, "storing an envelope");
                    Err(ErrorCode::Internal)
                }
            };
        }
        metrics::accepted(added.len());
        {
            let mut st = self.write();
            for (c, d) in &mut changed {
                st.advance(Some(d), c.seq);
                // Its readers as held now: an access change may have
                // landed since the check.
                if let Some(now) = st.doc(&c.doc) {
                    *d = now;
                }
            }
            for (d, n) in &added {
                st.add_bytes(d, *n);
            }
            metrics::stored_bytes(st.stored);
        }
        self.announce(&changed);
        Ok(again)
    }

    /// Asks the store to say what precedes each change of a small upload
    /// that a device of its document's readers is watching, with an
    /// envelope short enough to push: that device need not fetch it (see
    /// [`crate::storage::Written::prev`]). A larger upload is a device catching up, not a
    /// person typing: its watchers fetch what they lack, a page at a time.
    fn ask_prev(&self, good: &mut [NewEnvelope], docs: &HashMap<DocId, Arc<Doc>>) {
        if good.len() > PUSH_UPLOADS_UP_TO {
            return;
        }
        let now = self.now();
        for e in good.iter_mut() {
            e.wants_prev = e.snapshot_covers.is_none()
                && e.bytes.len() <= MAX_PUSHED
                && docs
                    .get(&e.doc)
                    .is_some_and(|d| self.hub.watched(d.readers(now)));
        }
    }

    /// Documents whose owner's devices owe a rotation: a member's share
    /// has expired, or a member's account key is newer than the one its
    /// newest epoch's key was sealed to (a device of theirs was revoked).
    /// Until the rotation lands, what is sealed under that epoch could be
    /// read by the expired member or the revoked device; an upload that
    /// asks for the newest epoch only ([`Relay::upload`] with `latest`) is
    /// refused, and the device catches up and rotates first.
    async fn rotation_due(
        &self,
        docs: &HashMap<DocId, Arc<Doc>>,
        now: u64,
    ) -> Result<HashSet<DocId>, StoreError> {
        let mut due = HashSet::new();
        for (id, doc) in docs {
            let st = &doc.state;
            for (member, terms) in &st.members {
                let expired = terms.expires.is_some_and(|e| e <= now);
                let replaced = match self.account(member).await? {
                    Some(a) => st
                        .wraps
                        .get(&(st.epoch, *member))
                        .is_none_or(|g| *g < a.state.key.generation),
                    None => false,
                };
                if expired || replaced {
                    due.insert(*id);
                    break;
                }
            }
        }
        Ok(due)
    }

    /// Refuses an upload that would take a document's owner past the
    /// storage quota, and otherwise reserves what it brings until it is
    /// stored, so concurrent uploads cannot all pass. A snapshot is charged
    /// only what it is larger than everything the document stores now (it
    /// replaces most of that), so compacting is free and a snapshot of a
    /// new document is not.
    async fn reserve_quota(
        &self,
        good: &[NewEnvelope],
        docs: &HashMap<DocId, Arc<Doc>>,
    ) -> Result<Vec<(AccountId, u64)>, Response> {
        let mut more: HashMap<AccountId, u64> = HashMap::new();
        for e in good {
            if let Some(d) = docs.get(&e.doc) {
                let size = e.bytes.len() as u64;
                let charge = match e.snapshot_covers {
                    Some(_) => size.saturating_sub(d.bytes()),
                    None => size,
                };
                *more.entry(d.state.owner).or_default() += charge;
            }
        }
        // Each owner's stored figure, read from the store when not held.
        let mut stored = HashMap::with_capacity(more.len());
        for owner in more.keys() {
            stored.insert(*owner, self.usage(owner).await.map_err(store_err)?);
        }
        // Checked and reserved under one lock, so concurrent uploads cannot
        // all pass.
        let mut st = self.write();
        for (owner, more) in &more {
            let now = st.usage(owner).unwrap_or(stored[owner]);
            self.limiter.quota(owner, now, *more)?;
        }
        let more: Vec<_> = more.into_iter().collect();
        for (owner, n) in &more {
            st.reserve(owner, *n as i64);
        }
        Ok(more)
    }

    pub(super) async fn fetch(
        &self,
        session: &Session,
        docs: Vec<(DocId, u64)>,
        max_bytes: u32,
    ) -> Response {
        // A device revoked, or a share ended, through another node reads
        // nothing more here either.
        if let Err(e) = self.catch_up().await {
            return store_err(e);
        }
        let (account, _) = match self.identity(session).await {
            Ok(i) => i,
            Err(r) => return r,
        };
        if docs.len() > 10_000 {
            return err(ErrorCode::BadRequest, "at most 10000 documents per fetch");
        }
        for (doc, _) in &docs {
            let may = match self.may_read(doc, &account).await {
                Ok(may) => may,
                Err(e) => return store_err(e),
            };
            if !may {
                return err(
                    ErrorCode::Forbidden,
                    format!("not a member of document {}", doc.short()),
                );
            }
        }
        let max = (max_bytes as usize).clamp(1, MAX_FETCH_BYTES);
        match self.store.fetch(docs, max).await {
            Ok((items, more)) => {
                metrics::fetched(items.len(), items.iter().map(|i| i.envelope.len()).sum());
                Response::Changes { items, more }
            }
            Err(e) => store_err(e),
        }
    }
}

/// A decoded envelope, or why it was refused (with its document where known).
type Decoded = Result<Envelope, (Refusal, Option<DocId>)>;

/// Decodes each upload and checks that the uploading device wrote it and
/// signed it, the signatures in one batch: `(place, size, envelope)`.
fn decode_and_verify(
    pending: Vec<(usize, Vec<u8>)>,
    account: &AccountId,
    device: &DeviceId,
) -> Vec<(usize, usize, Decoded)> {
    let mut out: Vec<(usize, usize, Decoded)> = pending
        .into_iter()
        .map(|(i, bytes)| {
            let size = bytes.len();
            let env = Envelope::decode(bytes)
                .map_err(|_| (Refusal::Malformed, None))
                .and_then(|env| {
                    let h = &env.header;
                    if h.author != *device || h.account != *account {
                        return Err((Refusal::NotTheUploader, Some(h.doc)));
                    }
                    Ok(env)
                });
            (i, size, env)
        })
        .collect();
    let decoded: Vec<&Envelope> = out.iter().filter_map(|(_, _, e)| e.as_ref().ok()).collect();
    let verified = Envelope::verify_all(&decoded);
    let mut verified = verified.into_iter();
    for (_, _, env) in &mut out {
        if let Ok(e) = env
            && !verified.next().unwrap_or(false)
        {
            *env = Err((Refusal::BadSignature, Some(e.header.doc)));
        }
    }
    out
}

/// What the store is handed for a checked envelope.
fn new_envelope(env: Envelope, fence: Fence) -> NewEnvelope {
    let h = &env.header;
    let snapshot_covers = (h.kind == Kind::Snapshot).then_some(h.covers);
    let (doc, id) = (h.doc, h.id);
    NewEnvelope {
        doc,
        id,
        snapshot_covers,
        bytes: env.into_bytes(),
        fence,
        wants_prev: false,
    }
}

/// Checks a well-signed envelope of the uploader against its document's
/// access log as held (`doc`, none if the store has no such document):
/// membership, role, epoch, and a snapshot's reach. Returns the fence its
/// store must still match (`account_len`: the uploader's account log as
/// the check saw it). Only the newest epoch will do, and the fence keeps
/// a new epoch from landing between this check and the envelope's commit.
/// With `latest` (`Some`, holding whether the document owes a rotation or
/// the device sealed after another access-log end), none will do then.
fn check_member(
    env: &Envelope,
    doc: Option<&Arc<Doc>>,
    account: &AccountId,
    account_len: u64,
    now: u64,
    latest: Option<bool>,
) -> Result<Fence, Refusal> {
    let h = &env.header;
    let doc = doc.ok_or(Refusal::UnknownDocument)?;
    if doc.state.disposed {
        return Err(Refusal::Disposed);
    }
    let role = doc.state.role_of(account, now).ok_or(Refusal::NotAMember)?;
    let allowed = match h.kind {
        Kind::Change => role.can_upload(),
        // What a member tells the others of the document's history (a
        // reader too: what it was not served).
        Kind::Signal => true,
        // A snapshot's changes cannot be checked for who wrote them, so
        // clients take one only from the owner.
        Kind::Snapshot => role == Role::Owner,
    };
    if !allowed {
        return Err(Refusal::RoleForbids);
    }
    if h.kind == Kind::Signal && env.as_bytes().len() > MAX_SIGNAL {
        return Err(Refusal::SignalTooLarge);
    }
    // Sealed under an epoch of the current membership: a member whose
    // terms changed (removed, added again as a commenter) holds the old
    // epochs' keys, and clients judge a change by the role of its epoch.
    let since = doc
        .state
        .current_grant_from(account)
        .ok_or(Refusal::NotAMember)?;
    if h.epoch > doc.state.epoch || h.epoch < since {
        return Err(Refusal::WrongEpoch);
    }
    // Only under the newest epoch: a member removed since the epoch it was
    // sealed under holds that key. A device that sealed it before it
    // learnt of the rotation (another device's, landing between its pull
    // and its push) is told so, catches up, and seals it again.
    if h.epoch < doc.state.epoch || latest == Some(true) {
        return Err(Refusal::EpochBehind);
    }
    // A snapshot may only cover changes the relay already holds: covering
    // more would hide changes that land later.
    if h.kind == Kind::Snapshot && h.covers > doc.head() {
        return Err(Refusal::SnapshotAhead);
    }
    Ok(Fence {
        access_len: doc.access_len(),
        account: *account,
        account_len,
    })
}
