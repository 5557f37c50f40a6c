//! The access log of a document: who may read or write it, and the document
//! key of each epoch wrapped to each member's account key.
//!
//! Genesis names the owner account. Later entries add or remove a member, or
//! rotate the key to a new epoch. Every entry is signed by an active device of
//! an owner account; relay and clients both replay the chain with
//! [`DocState::apply`] against the account logs they hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::account::AccountState;
use crate::crypto::{self, CryptoError, DhSecret, SecretKey, Wrapped};
use crate::ids::{AccountId, DocId, Hash};
use crate::signed::{Signed, SignedError};

/// Signature label of an access-log entry.
pub const SIG_LABEL: &str = "casebook/v1/sig/access-entry";
/// Hash label of an access-log entry.
pub const HASH_LABEL: &str = "casebook/v1/hash/access-entry";
const WRAP_LABEL: &str = "casebook/v1/wrap/doc-key";
const PREV_LABEL: &str = "casebook/v1/doc/previous-key";
const DETAILS_LABEL: &str = "casebook/v1/doc/member-details";

pub use crate::role::Role;

/// A document key of one epoch, sealed to one account key (HPKE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    pub recipient: AccountId,
    /// The recipient's account-key generation it is sealed to.
    pub generation: u32,
    pub wrap: Wrapped,
}

/// What an entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocOp {
    /// The first entry: the signer's account owns the document; epoch 0's key.
    Genesis { key: KeyEnvelope },
    /// A new epoch: its key for every member, and the old key sealed under it.
    Rotate {
        epoch: u32,
        keys: Vec<KeyEnvelope>,
        previous: Vec<u8>,
    },
    /// A member added with a role, an expiry (Unix seconds) and details (purpose,
    /// consent) sealed under the current epoch key so the relay cannot read them.
    AddMember {
        member: AccountId,
        role: Role,
        expires: Option<u64>,
        details: Vec<u8>,
        key: KeyEnvelope,
    },
    /// A member removed; a rotation should follow in the same upload.
    RemoveMember { member: AccountId },
    /// The document is disposed of (its retention ran out): the last entry.
    /// The relay then deletes its envelopes, snapshots and every earlier
    /// entry of this log (the key envelopes with them) and keeps this one
    /// alone, so every device that held it deletes it too, and no key that
    /// opened it is left to recover.
    Dispose,
}

/// One entry of the chain, before signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocEntry {
    pub doc: DocId,
    pub seq: u64,
    pub prev: Option<Hash>,
    pub at: u64,
    /// The signing device's account.
    pub account: AccountId,
    /// The length of that account's log when the entry was signed. The
    /// signing device must be active in that much of the log, and the value
    /// never decreases along a document's log: once an owner signs after a
    /// revocation, a revoked device cannot sign a later entry by claiming
    /// an older account log.
    pub account_len: u64,
    pub op: DocOp,
}

/// Why an access log was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessError {
    #[error(transparent)]
    Signed(#[from] SignedError),
    #[error("entry {0}: sequence, document or previous-hash does not continue the chain")]
    Broken(u64),
    #[error("entry {0}: the signer's account log is unknown")]
    UnknownAccount(u64),
    #[error("entry {0}: signed by a device that is not an active device of an owner")]
    NotOwner(u64),
    #[error("entry {0}: {1}")]
    Invalid(u64, &'static str),
    #[error("the log is empty")]
    Empty,
    #[error("no key for this account in epoch {0}")]
    NoKey(u32),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A member as the log leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    pub expires: Option<u64>,
    pub added_seq: u64,
}

/// The verified state of a document's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocState {
    pub doc: DocId,
    pub owner: AccountId,
    pub len: u64,
    pub head: Hash,
    pub epoch: u32,
    pub members: BTreeMap<AccountId, Member>,
    /// The highest `account_len` any entry so far was signed at.
    pub account_len: u64,
    /// Every membership the log has made, ended ones included: a change is
    /// judged by the role its author held in the epoch it is sealed under,
    /// so every device decides alike whenever it first sees the change.
    pub grants: Vec<Grant>,
    /// The account-key generation each epoch's key was sealed to, per
    /// account: a device revoked before that generation never held it.
    pub wraps: BTreeMap<(u32, AccountId), u32>,
    /// The log ends in a disposal: nothing may follow it.
    pub disposed: bool,
}

/// A role an account held from one epoch to another (inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub account: AccountId,
    pub role: Role,
    pub from_epoch: u32,
    /// The last epoch of the membership; `None` while it lasts.
    pub until_epoch: Option<u32>,
}

/// The HPKE info binding a document key to document, epoch, recipient and generation.
pub fn wrap_info(doc: &DocId, epoch: u32, recipient: &AccountId, generation: u32) -> Vec<u8> {
    let mut info = WRAP_LABEL.as_bytes().to_vec();
    info.extend_from_slice(&doc.0);
    info.extend_from_slice(&epoch.to_be_bytes());
    info.extend_from_slice(&recipient.0);
    info.extend_from_slice(&generation.to_be_bytes());
    info
}

fn epoch_ctx(doc: &DocId, epoch: u32) -> Vec<u8> {
    let mut c = doc.0.to_vec();
    c.extend_from_slice(&epoch.to_be_bytes());
    c
}

/// Seals a document key to a member's current account key.
pub fn key_envelope(
    doc: &DocId,
    epoch: u32,
    doc_key: &SecretKey,
    recipient: &AccountState,
) -> Result<KeyEnvelope, CryptoError> {
    let g = recipient.key.generation;
    Ok(KeyEnvelope {
        recipient: recipient.id,
        generation: g,
        wrap: crypto::wrap(
            &recipient.key.public,
            &wrap_info(doc, epoch, &recipient.id, g),
            doc_key.expose(),
        )?,
    })
}

/// Seals member details (purpose, consent) under the epoch key.
pub fn seal_details(doc: &DocId, epoch: u32, doc_key: &SecretKey, details: &[u8]) -> Vec<u8> {
    let k = doc_key.derive(DETAILS_LABEL, &epoch_ctx(doc, epoch));
    crypto::seal_random(&k, &doc.0, details)
}

/// Opens member details.
pub fn open_details(
    doc: &DocId,
    epoch: u32,
    doc_key: &SecretKey,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let k = doc_key.derive(DETAILS_LABEL, &epoch_ctx(doc, epoch));
    Ok(crypto::open_random(&k, &doc.0, sealed)?.to_vec())
}

/// Seals the previous epoch's key under the new one (for a rotation entry).
pub fn seal_previous(doc: &DocId, new_epoch: u32, new_key: &SecretKey, old: &SecretKey) -> Vec<u8> {
    let k = new_key.derive(PREV_LABEL, &epoch_ctx(doc, new_epoch));
    crypto::seal_random(&k, &doc.0, old.expose())
}

fn open_previous(
    doc: &DocId,
    new_epoch: u32,
    new_key: &SecretKey,
    sealed: &[u8],
) -> Result<SecretKey, CryptoError> {
    let k = new_key.derive(PREV_LABEL, &epoch_ctx(doc, new_epoch));
    let b = crypto::open_random(&k, &doc.0, sealed)?;
    let arr: [u8; 32] = b.as_slice().try_into().map_err(|_| CryptoError::Decrypt)?;
    Ok(SecretKey::from_bytes(arr))
}

impl DocState {
    /// Replays a whole log; `accounts` gives the verified account log of a signer.
    pub fn verify_log<'a>(
        entries: &[Signed],
        accounts: impl Fn(&AccountId) -> Option<&'a AccountState>,
    ) -> Result<Self, AccessError> {
        let (first, rest) = entries.split_first().ok_or(AccessError::Empty)?;
        let mut st = Self::from_genesis(first, &accounts)?;
        for e in rest {
            st.apply(e, &accounts)?;
        }
        Ok(st)
    }

    /// The signer must have been an active device of the entry's account
    /// in the first `account_len` entries of that account's log (or a
    /// vouch there names the entry), a length the log has reached and no
    /// shorter than any earlier entry claimed.
    fn check_signer<'a>(
        signed: &Signed,
        entry: &DocEntry,
        accounts: &impl Fn(&AccountId) -> Option<&'a AccountState>,
        floor: u64,
    ) -> Result<(), AccessError> {
        let acct = accounts(&entry.account).ok_or(AccessError::UnknownAccount(entry.seq))?;
        let len = entry.account_len;
        if len > acct.len || len < floor {
            return Err(AccessError::Invalid(
                entry.seq,
                "signed at an account log length out of order",
            ));
        }
        // Or a vouch in the log names it: signed by a device in a history
        // of that log a restored relay lost, and paired again since.
        let active = acct.active_at(&signed.signer, len)
            || acct.vouched_for(&signed.hash(HASH_LABEL), &signed.signer, len);
        if !active {
            return Err(AccessError::NotOwner(entry.seq));
        }
        Ok(())
    }

    /// Checks a disposal entry on its own, as it is kept once the log
    /// before it is gone: a `Dispose` of `doc`, signed by a device of its
    /// owner's account that was active when it signed. Returns its position.
    pub fn verify_disposal(
        signed: &Signed,
        doc: &DocId,
        owner: &AccountState,
    ) -> Result<u64, AccessError> {
        let entry: DocEntry = signed.open(SIG_LABEL)?;
        if !matches!(entry.op, DocOp::Dispose) || entry.doc != *doc || entry.seq == 0 {
            return Err(AccessError::Invalid(
                entry.seq,
                "not a disposal of this document",
            ));
        }
        if entry.account != owner.id {
            return Err(AccessError::NotOwner(entry.seq));
        }
        Self::check_signer(
            signed,
            &entry,
            &|a: &AccountId| (*a == owner.id).then_some(owner),
            0,
        )?;
        Ok(entry.seq)
    }

    /// The state of a disposed document whose log is its disposal alone
    /// (checked by [`Self::verify_disposal`]), read by `readers` until their
    /// devices have deleted it.
    pub fn tombstone(
        signed: &Signed,
        doc: &DocId,
        owner: &AccountState,
        readers: &[AccountId],
    ) -> Result<Self, AccessError> {
        let seq = Self::verify_disposal(signed, doc, owner)?;
        let entry: DocEntry = signed.open(SIG_LABEL)?;
        let members = readers
            .iter()
            .chain(std::iter::once(&owner.id))
            .map(|a| {
                let role = if *a == owner.id {
                    Role::Owner
                } else {
                    Role::Read
                };
                (
                    *a,
                    Member {
                        role,
                        expires: None,
                        added_seq: 0,
                    },
                )
            })
            .collect();
        Ok(DocState {
            doc: *doc,
            owner: owner.id,
            len: seq + 1,
            head: signed.hash(HASH_LABEL),
            epoch: 0,
            members,
            account_len: entry.account_len,
            grants: Vec::new(),
            wraps: BTreeMap::new(),
            disposed: true,
        })
    }

    /// Checks a genesis entry.
    pub fn from_genesis<'a>(
        signed: &Signed,
        accounts: &impl Fn(&AccountId) -> Option<&'a AccountState>,
    ) -> Result<Self, AccessError> {
        let entry: DocEntry = signed.open(SIG_LABEL)?;
        let DocOp::Genesis { key } = &entry.op else {
            return Err(AccessError::Invalid(
                entry.seq,
                "first entry must be genesis",
            ));
        };
        if entry.seq != 0 || entry.prev.is_some() || key.recipient != entry.account {
            return Err(AccessError::Broken(entry.seq));
        }
        Self::check_signer(signed, &entry, accounts, 0)?;
        let mut members = BTreeMap::new();
        members.insert(
            entry.account,
            Member {
                role: Role::Owner,
                expires: None,
                added_seq: 0,
            },
        );
        Ok(DocState {
            doc: entry.doc,
            owner: entry.account,
            len: 1,
            head: signed.hash(HASH_LABEL),
            epoch: 0,
            members,
            account_len: entry.account_len,
            grants: vec![Grant {
                account: entry.account,
                role: Role::Owner,
                from_epoch: 0,
                until_epoch: None,
            }],
            wraps: BTreeMap::from([((0, entry.account), key.generation)]),
            disposed: false,
        })
    }

    /// Checks one more entry and applies it.
    pub fn apply<'a>(
        &mut self,
        signed: &Signed,
        accounts: &impl Fn(&AccountId) -> Option<&'a AccountState>,
    ) -> Result<(), AccessError> {
        let entry: DocEntry = signed.open(SIG_LABEL)?;
        let seq = entry.seq;
        if seq != self.len || entry.prev != Some(self.head) || entry.doc != self.doc {
            return Err(AccessError::Broken(seq));
        }
        if self.disposed {
            return Err(AccessError::Invalid(seq, "the document was disposed of"));
        }
        if self.members.get(&entry.account).map(|m| m.role) != Some(Role::Owner) {
            return Err(AccessError::NotOwner(seq));
        }
        Self::check_signer(signed, &entry, accounts, self.account_len)?;
        match &entry.op {
            DocOp::Genesis { .. } => return Err(AccessError::Invalid(seq, "second genesis")),
            DocOp::Rotate { epoch, keys, .. } => {
                if *epoch != self.epoch + 1 {
                    return Err(AccessError::Invalid(seq, "epoch must step by one"));
                }
                let mut got: Vec<_> = keys.iter().map(|k| k.recipient).collect();
                let mut want: Vec<_> = self.members.keys().copied().collect();
                got.sort();
                want.sort();
                if got != want {
                    return Err(AccessError::Invalid(
                        seq,
                        "rotation must seal to every member",
                    ));
                }
                self.epoch = *epoch;
                for k in keys {
                    self.wraps.insert((*epoch, k.recipient), k.generation);
                }
            }
            DocOp::AddMember {
                member,
                role,
                expires,
                key,
                ..
            } => {
                if key.recipient != *member || *role == Role::Owner {
                    return Err(AccessError::Invalid(seq, "bad member entry"));
                }
                // Changing a member's terms is a removal and a new addition;
                // an addition never overwrites (nor demotes the owner).
                if self.members.contains_key(member) {
                    return Err(AccessError::Invalid(seq, "already a member"));
                }
                // Added again only under a new epoch: a removed member keeps
                // the keys of theirs, and a change under one of them is
                // judged by the role held then.
                if self
                    .grants
                    .iter()
                    .any(|g| g.account == *member && g.until_epoch == Some(self.epoch))
                {
                    return Err(AccessError::Invalid(
                        seq,
                        "a removed member is added again only after a rotation",
                    ));
                }
                self.members.insert(
                    *member,
                    Member {
                        role: *role,
                        expires: *expires,
                        added_seq: seq,
                    },
                );
                self.grants.push(Grant {
                    account: *member,
                    role: *role,
                    from_epoch: self.epoch,
                    until_epoch: None,
                });
                self.wraps.insert((self.epoch, *member), key.generation);
            }
            DocOp::Dispose => self.disposed = true,
            DocOp::RemoveMember { member } => {
                if *member == self.owner || self.members.remove(member).is_none() {
                    return Err(AccessError::Invalid(seq, "not a removable member"));
                }
                let epoch = self.epoch;
                for g in &mut self.grants {
                    if g.account == *member && g.until_epoch.is_none() {
                        g.until_epoch = Some(epoch);
                    }
                }
            }
        }
        self.len += 1;
        self.head = signed.hash(HASH_LABEL);
        self.account_len = entry.account_len;
        Ok(())
    }

    /// The role an account held while `epoch` was current, the highest if
    /// it held several, for a change taken after envelopes up to epoch
    /// `fence` (see [`role_in_epoch`]). Expiry is not consulted: the moment
    /// a change was written is not known here, so an expired share ends at
    /// the relay (which stops taking its uploads at once) and at the
    /// owner's next sync (which removes the member and moves to a new epoch).
    pub fn role_in_epoch(&self, account: &AccountId, epoch: u32, fence: u32) -> Option<Role> {
        role_in_epoch(&self.grants, account, epoch, fence)
    }

    /// The first epoch of an account's current membership.
    pub fn current_grant_from(&self, account: &AccountId) -> Option<u32> {
        self.grants
            .iter()
            .filter(|g| g.account == *account && g.until_epoch.is_none())
            .map(|g| g.from_epoch)
            .min()
    }

    /// The role an account has at time `now` (expired members have none).
    pub fn role_of(&self, account: &AccountId, now: u64) -> Option<Role> {
        self.members
            .get(account)
            .filter(|m| m.expires.is_none_or(|e| now < e))
            .map(|m| m.role)
    }
}

/// The highest role `account` held in `epoch` among `grants`, counting a
/// membership that has ended only while `fence` (the highest epoch of any
/// envelope already taken for the document, in relay order) has not passed
/// its last epoch. An honest relay serves every change a member made before
/// any envelope of the epoch that followed their removal, so what comes
/// after that is not theirs to have made, even under a key they kept.
pub fn role_in_epoch(
    grants: &[Grant],
    account: &AccountId,
    epoch: u32,
    fence: u32,
) -> Option<Role> {
    grants
        .iter()
        .filter(|g| {
            g.account == *account
                && g.from_epoch <= epoch
                && g.until_epoch.is_none_or(|u| epoch <= u && fence <= u)
        })
        .map(|g| g.role)
        .max()
}

/// Every epoch key an account can reach in a verified log, indexed by epoch:
/// the newest sealed to it, then older ones through each rotation's `previous`.
/// `account_keys[g]` is the account's key of generation `g`.
pub fn doc_keys(
    entries: &[Signed],
    account: &AccountId,
    account_keys: &[DhSecret],
) -> Result<BTreeMap<u32, SecretKey>, AccessError> {
    let mut parsed = Vec::with_capacity(entries.len());
    for e in entries {
        parsed.push(e.open::<DocEntry>(SIG_LABEL)?);
    }
    let doc = parsed.first().ok_or(AccessError::Empty)?.doc;
    let mut epoch = 0u32;
    let mut newest: Option<(u32, SecretKey)> = None;
    let mut previous: BTreeMap<u32, &Vec<u8>> = BTreeMap::new();
    for e in &parsed {
        let found = match &e.op {
            DocOp::Genesis { key } => Some(key),
            DocOp::AddMember { key, .. } => Some(key),
            DocOp::Rotate {
                epoch: ep,
                keys,
                previous: p,
            } => {
                epoch = *ep;
                previous.insert(*ep, p);
                keys.iter().find(|k| k.recipient == *account)
            }
            DocOp::RemoveMember { .. } | DocOp::Dispose => None,
        };
        // One that does not open (damaged, or sealed to a key this account
        // does not hold) is passed over, not fatal: the newest one that
        // does open, and its `previous` chain, still reach the epochs it
        // reaches, where failing here left the caller no key at all.
        if let Some(k) = found.filter(|k| k.recipient == *account)
            && let Some(ak) = account_keys.get(k.generation as usize)
            && let Ok(key) =
                crypto::unwrap_key(ak, &wrap_info(&doc, epoch, account, k.generation), &k.wrap)
        {
            newest = Some((epoch, key));
        }
    }
    let (top, key) = newest.ok_or(AccessError::NoKey(epoch))?;
    let mut out = BTreeMap::new();
    let mut cur = key;
    for ep in (1..=top).rev() {
        let sealed = previous
            .get(&ep)
            .ok_or(AccessError::Invalid(0, "missing rotation"))?;
        let older = open_previous(&doc, ep, &cur, sealed)?;
        out.insert(ep, cur);
        cur = older;
    }
    out.insert(0, cur);
    Ok(out)
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
