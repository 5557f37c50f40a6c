//! A document's access log on this device: the entries held, the state
//! they verify to (owner, members, roles, epochs), kept sealed beside them,
//! and the document keys this account can open.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, DocState, Grant, Role};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::crypto::SecretKey;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use casebook_shared::clock::Clock;
use casebook_shared::crypto::{DeviceSigner, DhSecret};

use crate::error::{Error, Result};
use crate::store::{OutKind, Store};

/// What this device knows of a document's access log, without replaying it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocMeta {
    pub owner: AccountId,
    pub epoch: u32,
    pub members: Vec<(AccountId, Role, Option<u64>)>,
    /// Every membership, ended ones too (see [`DocState::grants`]).
    pub grants: Vec<Grant>,
    /// What each epoch's key was sealed to (see [`DocState::wraps`]).
    pub wraps: BTreeMap<(u32, AccountId), u32>,
    /// The log ends in a disposal (kept last, so a meta saved before
    /// disposals existed fails to decode and is worked out again).
    pub disposed: bool,
}

impl DocMeta {
    fn from_state(st: &DocState) -> DocMeta {
        DocMeta {
            owner: st.owner,
            epoch: st.epoch,
            members: st
                .members
                .iter()
                .map(|(a, m)| (*a, m.role, m.expires))
                .collect(),
            grants: st.grants.clone(),
            wraps: st.wraps.clone(),
            disposed: st.disposed,
        }
    }

    /// The role an account held while `epoch` was current, for a change
    /// taken after envelopes up to epoch `fence`; expiry is not consulted
    /// (see [`access::role_in_epoch`]).
    pub fn role_in_epoch(&self, account: &AccountId, epoch: u32, fence: u32) -> Option<Role> {
        access::role_in_epoch(&self.grants, account, epoch, fence)
    }

    /// The account-key generation `epoch`'s key was sealed to for `account`.
    pub fn wrap_generation(&self, epoch: u32, account: &AccountId) -> Option<u32> {
        self.wraps.get(&(epoch, *account)).copied()
    }

    /// The role of an account now.
    pub fn role_of(&self, account: &AccountId, at: u64) -> Option<Role> {
        self.members
            .iter()
            .find(|(a, _, exp)| a == account && exp.is_none_or(|e| at < e))
            .map(|(_, r, _)| *r)
    }
}

pub(crate) fn meta_name(doc: &DocId) -> String {
    format!("doc/{}", doc.to_hex())
}

pub(crate) fn keys_name(doc: &DocId) -> String {
    format!("dockeys/{}", doc.to_hex())
}

fn encode_doc_keys(keys: &BTreeMap<u32, SecretKey>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(keys.len() * 36));
    for (e, k) in keys {
        out.extend_from_slice(&e.to_be_bytes());
        out.extend_from_slice(k.expose());
    }
    out
}

fn decode_doc_keys(bytes: &[u8]) -> BTreeMap<u32, SecretKey> {
    bytes
        .chunks_exact(36)
        .map(|c| {
            let (e, k) = c.split_at(4);
            (
                u32::from_be_bytes(e.try_into().expect("4-byte split")),
                SecretKey::from_bytes(k.try_into().expect("32-byte rest")),
            )
        })
        .collect()
}

/// The part of a [`crate::Home`] that holds its documents' access logs:
/// it verifies and stores entries, keeps the state they verify to and the
/// keys this account can open, and signs the entries of documents this
/// account owns.
pub struct Access<'h> {
    pub(crate) store: &'h Store,
    pub(crate) me: AccountId,
    /// The account keys this device can reach, by generation.
    pub(crate) account_keys: &'h [DhSecret],
    pub(crate) signer: &'h DeviceSigner,
    pub(crate) clock: &'h Clock,
}

/// A log as stored: an account's (by its id) or a document's.
pub(crate) fn stored_log(store: &Store, owner: &[u8]) -> Result<Vec<Signed>> {
    store
        .log(owner)?
        .iter()
        .map(|b| codec::decode(b).map_err(Error::from))
        .collect()
}

/// Whether a signed access entry is a disposal.
pub(crate) fn is_disposal(entry: &Signed) -> bool {
    entry
        .open::<DocEntry>(access::SIG_LABEL)
        .is_ok_and(|e| matches!(e.op, DocOp::Dispose))
}

impl Access<'_> {
    /// Records that a document shared with this account is no longer
    /// listed by the relay: the share ended (removed, or expired), and a
    /// relay serves nothing of a document to a former member, its access
    /// log included, so the device marks the end itself. What arrived while
    /// the share lasted stays readable; the document no longer counts as
    /// shared here, and edits to it are held. A later share arrives as new
    /// access entries and rebuilds this from the log. Returns whether this
    /// device thought itself a member until now.
    pub(crate) fn share_ended(&self, doc: &DocId) -> Result<bool> {
        let Some(mut meta) = self.doc_meta(doc)? else {
            return Ok(false);
        };
        let me = self.me;
        if meta.owner == me || !meta.members.iter().any(|(a, _, _)| *a == me) {
            return Ok(false);
        }
        meta.members.retain(|(a, _, _)| *a != me);
        self.store
            .put_secret(&meta_name(doc), &codec::encode(&meta))?;
        Ok(true)
    }

    /// The relay lists again a document this device had marked as no longer
    /// shared (a listing can leave one out for a while): the membership is
    /// worked out again from the signed access log held, not taken from
    /// the listing. Returns whether this account is a member again.
    pub(crate) fn share_listed(&self, doc: &DocId) -> Result<bool> {
        let me = self.me;
        let Some(meta) = self.doc_meta(doc)? else {
            return Ok(false);
        };
        // None held (dropped whole, see `truncate_access`): the fetch that
        // follows takes it again from the first entry.
        if self.access_log(doc)?.is_empty() {
            return Ok(false);
        }
        if meta.owner == me || meta.members.iter().any(|(a, _, _)| *a == me) {
            return Ok(false);
        }
        let meta = self.rebuild_meta(doc)?;
        Ok(meta.members.iter().any(|(a, _, _)| *a == me))
    }

    /// The access metadata of a document, if this device holds its log.
    pub fn doc_meta(&self, doc: &DocId) -> Result<Option<DocMeta>> {
        let Some(bytes) = self.store.get_secret(&meta_name(doc))? else {
            return Ok(None);
        };
        match codec::decode(&bytes) {
            Ok(meta) => Ok(Some(meta)),
            // Saved by an older version in another shape: worked out again
            // from the stored access log and saved in this one.
            Err(_) => self.rebuild_meta(doc).map(Some),
        }
    }

    pub(crate) fn rebuild_meta(&self, doc: &DocId) -> Result<DocMeta> {
        let log = self.access_log(doc)?;
        let mut accounts = BTreeMap::new();
        for e in &log {
            let entry: DocEntry = e
                .open(access::SIG_LABEL)
                .map_err(access::AccessError::from)?;
            if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(entry.account)
            {
                slot.insert(AccountState::verify_log(&stored_log(
                    self.store,
                    &entry.account.0,
                )?)?);
            }
        }
        let state = DocState::verify_log(&log, |a| accounts.get(a))?;
        let meta = DocMeta::from_state(&state);
        self.store
            .put_secret(&meta_name(doc), &codec::encode(&meta))?;
        Ok(meta)
    }

    /// The document keys this device can reach, by epoch.
    pub(crate) fn doc_keys(&self, doc: &DocId) -> Result<BTreeMap<u32, SecretKey>> {
        Ok(self
            .store
            .get_secret(&keys_name(doc))?
            .map(|b| decode_doc_keys(&b))
            .unwrap_or_default())
    }

    /// Keeps `keys` beside those held of a document, for each epoch that
    /// has none (the log taken again no longer opens to them here, but
    /// they are the same keys: see `sync::resign`).
    pub(crate) fn keep_doc_keys(&self, doc: &DocId, keys: BTreeMap<u32, SecretKey>) -> Result<()> {
        let mut held = self.doc_keys(doc)?;
        for (epoch, key) in keys {
            held.entry(epoch).or_insert(key);
        }
        Ok(self
            .store
            .put_secret(&keys_name(doc), &encode_doc_keys(&held))?)
    }

    /// Cuts a document's access log held here to its first `len` entries
    /// (another account's device dropping what an owner's device signs
    /// again: see `sync::resign`); its keys and what arrived stay. Cut
    /// whole, the document is shared no more here, until a fetch takes
    /// its log again from the first entry.
    pub(crate) fn truncate_access(&self, doc: &DocId, len: usize) -> Result<()> {
        self.store.truncate_log(&doc.0, len as u64)?;
        match (len, self.doc_meta(doc)?) {
            // As when a share ends: what arrived stays readable.
            (0, Some(mut meta)) => {
                meta.members.retain(|(a, _, _)| *a != self.me);
                let meta = codec::encode(&meta);
                self.store.put_secret(&meta_name(doc), &meta)?;
            }
            (0, None) => {}
            _ => drop(self.rebuild_meta(doc)?),
        }
        let mut sync = self.store.doc_sync(doc)?.unwrap_or_default();
        sync.access_len = len as u64;
        Ok(self.store.set_doc_sync(doc, sync)?)
    }

    /// The key epochs of a document this device can open.
    pub fn doc_epochs(&self, doc: &DocId) -> Result<Vec<u32>> {
        Ok(self.doc_keys(doc)?.into_keys().collect())
    }

    /// A document's stored access log.
    pub(crate) fn access_log(&self, doc: &DocId) -> Result<Vec<Signed>> {
        stored_log(self.store, &doc.0)
    }

    /// Verifies a document's access log with `new` entries appended, and
    /// stores the entries, the state and the keys this account can reach.
    pub(crate) fn accept_access_entries(
        &self,
        doc: &DocId,
        new: &[Signed],
        accounts: &BTreeMap<AccountId, AccountState>,
    ) -> Result<DocState> {
        let mut log = self.access_log(doc)?;
        let first = log.len() as u64;
        log.extend_from_slice(new);
        let state = DocState::verify_log(&log, |a| accounts.get(a))?;
        if state.doc != *doc {
            // Another document's log served under this id.
            return Err(Error::Access(access::AccessError::Broken(0)));
        }
        // The keys held of the epochs the part of the log kept reaches stay
        // (one the log no longer reaches, as when an envelope of it does
        // not open, was this account's: its envelopes stay readable here),
        // and those the log reaches beyond are added. Those of epochs past
        // the part kept (a history of the access log left behind, see
        // `sync::fork`) go: another key of that epoch may be the log's now.
        let kept_epoch = log[..first as usize]
            .iter()
            .filter_map(|e| match e.open::<access::DocEntry>(access::SIG_LABEL) {
                Ok(access::DocEntry {
                    op: access::DocOp::Rotate { epoch, .. },
                    ..
                }) => Some(epoch),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut keys = match first {
            0 => BTreeMap::new(),
            _ => self.doc_keys(doc)?,
        };
        keys.retain(|epoch, _| *epoch <= kept_epoch);
        for (epoch, key) in access::doc_keys(&log, &self.me, self.account_keys).unwrap_or_default()
        {
            keys.entry(epoch).or_insert(key);
        }
        let encoded: Vec<Vec<u8>> = new.iter().map(codec::encode).collect();
        self.store.append_log(&doc.0, first, &encoded)?;
        self.store.put_secret(
            &meta_name(doc),
            &codec::encode(&DocMeta::from_state(&state)),
        )?;
        self.store
            .put_secret(&keys_name(doc), &encode_doc_keys(&keys))?;
        let mut sync = self.store.doc_sync(doc)?.unwrap_or_default();
        sync.access_len = log.len() as u64;
        self.store.set_doc_sync(doc, sync)?;
        Ok(state)
    }

    /// Takes `new` entries fetched for `doc` whole or not at all: the
    /// reason, if they do not verify on top of the log held.
    pub(crate) fn accept_whole(
        &self,
        doc: &DocId,
        new: &[Signed],
        accounts: &BTreeMap<AccountId, AccountState>,
    ) -> Result<Option<String>> {
        match self.accept_access_entries(doc, new, accounts) {
            Ok(_) => Ok(None),
            Err(Error::Access(e)) => Ok(Some(format!(
                "the relay's entries do not verify ({e}); none taken"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Takes access-log entries fetched from the relay. When some do not
    /// verify, the ones before the first bad entry are still the owner's and
    /// are kept; the rest are refused and their reason returned. Nothing is
    /// written for a log whose held part no longer verifies.
    pub(crate) fn accept_fetched_access(
        &self,
        doc: &DocId,
        new: &[Signed],
        accounts: &BTreeMap<AccountId, AccountState>,
    ) -> Result<Option<String>> {
        let err = match self.accept_access_entries(doc, new, accounts) {
            Ok(_) => return Ok(None),
            Err(Error::Access(e)) => e,
            Err(e) => return Err(e),
        };
        let held = self.access_log(doc)?;
        let lookup = |a: &AccountId| accounts.get(a);
        let mut state = if held.is_empty() {
            None
        } else {
            Some(DocState::verify_log(&held, lookup)?)
        };
        let mut good = 0;
        for e in new {
            let step = match state.as_mut() {
                Some(st) => st.apply(e, &lookup),
                None => DocState::from_genesis(e, &lookup).map(|st| state = Some(st)),
            };
            if step.is_err() || state.as_ref().is_some_and(|st| st.doc != *doc) {
                break;
            }
            good += 1;
        }
        if good > 0 {
            self.accept_access_entries(doc, &new[..good], accounts)?;
        }
        Ok(Some(format!(
            "entry {} and after refused: {err}",
            held.len() + good
        )))
    }

    /// Signs a new access-log entry for a document this account owns, stores
    /// it and queues it for the relay.
    pub(crate) fn append_access_entry(&self, doc: &DocId, op: DocOp) -> Result<DocState> {
        let log = self.access_log(doc)?;
        let me = AccountState::verify_log(&stored_log(self.store, &self.me.0)?)?;
        let accounts = BTreeMap::from([(me.id, me.clone())]);
        let prev = if log.is_empty() {
            None
        } else {
            Some(DocState::verify_log(&log, |a| accounts.get(a))?.head)
        };
        let entry = DocEntry {
            doc: *doc,
            seq: log.len() as u64,
            prev,
            at: self.clock.now(),
            account: me.id,
            account_len: me.len,
            op,
        };
        let signed = Signed::sign(self.signer, access::SIG_LABEL, &entry);
        let state = self.accept_access_entries(doc, std::slice::from_ref(&signed), &accounts)?;
        self.store
            .push_outbox(doc, OutKind::Access, &codec::encode(&vec![signed]))?;
        Ok(state)
    }

    /// Starts the access log of a new document this account owns, under
    /// a fresh key.
    pub(crate) fn new_doc(&self, doc: &DocId) -> Result<()> {
        let me = AccountState::verify_log(&stored_log(self.store, &self.me.0)?)?;
        let key = SecretKey::random();
        let envelope = access::key_envelope(doc, 0, &key, &me)?;
        self.append_access_entry(doc, DocOp::Genesis { key: envelope })?;
        Ok(())
    }
}
