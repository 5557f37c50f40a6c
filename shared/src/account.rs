//! The account log: an append-only chain of signed entries naming the devices
//! of one practitioner's account and the account key they share.
//!
//! Both the relay and every client replay the whole chain with
//! [`AccountState::apply`]; neither takes the other's word for who is in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, CryptoError, DeviceSigner, DhSecret, SecretKey, Wrapped};
use crate::ids::{AccountId, DeviceId, Hash};
use crate::signed::{Signed, SignedError};

/// Signature label of an account-log entry.
pub const SIG_LABEL: &str = "casebook/v1/sig/account-entry";
/// Hash label of an account-log entry (the chain link and the AccountId).
pub const HASH_LABEL: &str = "casebook/v1/hash/account-entry";
const WRAP_LABEL: &str = "casebook/v1/wrap/account-key";
const PREV_LABEL: &str = "casebook/v1/wrap/previous-account-key";

/// Whether a device is a real one or the recovery key's paper device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    Device,
    Paper,
}

/// A device's public keys, as the log lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: DeviceId,
    /// The device's X25519 public key, to which the account key is wrapped.
    pub dh: [u8; 32],
    pub kind: DeviceKind,
}

/// The public half of an account key and its generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountKeyPub {
    pub generation: u32,
    pub public: [u8; 32],
}

/// What an entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountOp {
    /// The first entry: the first device and the first account key, wrapped to it.
    Genesis {
        device: DeviceInfo,
        key: AccountKeyPub,
        wrap: Wrapped,
    },
    /// A new device, with the current account key wrapped to it.
    AddDevice { device: DeviceInfo, wrap: Wrapped },
    /// A device revoked; a new account key wrapped to every remaining device,
    /// and the previous key sealed to the new one so history stays readable.
    RevokeDevice {
        device: DeviceId,
        key: AccountKeyPub,
        wraps: Vec<(DeviceId, Wrapped)>,
        previous: Wrapped,
    },
    /// Entries `device` signed, by their hashes, in a history of this log
    /// that a relay restored from an older copy lost: there it was paired
    /// earlier than this log pairs it again, so what it signed then (a case
    /// it opened or shared, a disposal) claims a length of this log at
    /// which it is not yet a device. Each such entry verifies as though it
    /// were (see [`AccountState::vouched_for`]), and nothing else: not one
    /// claiming a length at which the device is listed, so no entry of a
    /// device dated after its revocation. Signed by an active device, for
    /// one active then.
    Vouch {
        device: DeviceId,
        entries: Vec<Hash>,
    },
}

/// The most entries one vouch names: a bound on what one account-log entry
/// may hold (a vouch for more takes several).
pub const MAX_VOUCHED: usize = 4096;

/// One entry of the chain, before signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    pub seq: u64,
    /// Hash of the previous entry; `None` only for genesis.
    pub prev: Option<Hash>,
    /// Unix seconds when the entry was made, as the signing device's clock read.
    pub at: u64,
    pub op: AccountOp,
}

/// Why an account log was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountError {
    #[error(transparent)]
    Signed(#[from] SignedError),
    #[error("the log is empty")]
    Empty,
    #[error("entry {0}: the first entry must be a genesis signed by its own device")]
    BadGenesis(u64),
    #[error("entry {0}: sequence or previous-hash does not continue the chain")]
    Broken(u64),
    #[error("entry {0}: signed by a device that is not active in the account")]
    NotActive(u64),
    #[error("entry {0}: {1}")]
    Invalid(u64, &'static str),
    #[error("the account key could not be unwrapped: {0}")]
    Key(#[from] CryptoError),
}

/// A device as the verified log leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    pub info: DeviceInfo,
    pub added_seq: u64,
    pub added_at: u64,
    pub revoked_seq: Option<u64>,
    /// The account-key generation its revocation made: the device held only
    /// older ones, so nothing sealed to this one or later can be its own.
    pub revoked_generation: Option<u32>,
}

/// The verified state after replaying a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub id: AccountId,
    /// Number of entries applied.
    pub len: u64,
    /// Hash of the last entry.
    pub head: Hash,
    pub devices: BTreeMap<DeviceId, DeviceRecord>,
    pub key: AccountKeyPub,
    /// The entries vouches name, by hash, and the device each names.
    pub vouched: BTreeMap<Hash, DeviceId>,
}

/// The HPKE info that binds an account-key wrap to account, device and generation.
pub fn wrap_info(account: &AccountId, device: &DeviceId, generation: u32) -> Vec<u8> {
    let mut info = WRAP_LABEL.as_bytes().to_vec();
    info.extend_from_slice(&account.0);
    info.extend_from_slice(&device.0);
    info.extend_from_slice(&generation.to_be_bytes());
    info
}

fn prev_info(account: &AccountId, generation: u32) -> Vec<u8> {
    let mut info = PREV_LABEL.as_bytes().to_vec();
    info.extend_from_slice(&account.0);
    info.extend_from_slice(&generation.to_be_bytes());
    info
}

/// The genesis wrap has no account id yet (the id is the genesis hash).
const GENESIS_ACCOUNT: AccountId = AccountId([0; 32]);

impl AccountState {
    /// Replays a whole log from genesis.
    pub fn verify_log(entries: &[Signed]) -> Result<Self, AccountError> {
        let (first, rest) = entries.split_first().ok_or(AccountError::Empty)?;
        let mut state = Self::from_genesis(first)?;
        for e in rest {
            state.apply(e)?;
        }
        Ok(state)
    }

    /// Checks a genesis entry and starts the state from it.
    pub fn from_genesis(signed: &Signed) -> Result<Self, AccountError> {
        let entry: AccountEntry = signed.open(SIG_LABEL)?;
        let AccountOp::Genesis { device, key, .. } = &entry.op else {
            return Err(AccountError::BadGenesis(entry.seq));
        };
        if entry.seq != 0
            || entry.prev.is_some()
            || signed.signer != device.id
            || device.kind != DeviceKind::Device
            || key.generation != 0
        {
            return Err(AccountError::BadGenesis(entry.seq));
        }
        let hash = signed.hash(HASH_LABEL);
        let mut devices = BTreeMap::new();
        devices.insert(
            device.id,
            DeviceRecord {
                info: device.clone(),
                added_seq: 0,
                added_at: entry.at,
                revoked_seq: None,
                revoked_generation: None,
            },
        );
        Ok(AccountState {
            id: AccountId(hash.0),
            len: 1,
            head: hash,
            devices,
            key: *key,
            vouched: BTreeMap::new(),
        })
    }

    /// Whether a device is listed and not revoked.
    pub fn is_active(&self, device: &DeviceId) -> bool {
        self.devices
            .get(device)
            .is_some_and(|d| d.revoked_seq.is_none())
    }

    /// Whether a device was active when the log was `len` entries long:
    /// listed before that length, and not revoked before it. What an
    /// entry signed at that length needs of its signer.
    pub fn active_at(&self, device: &DeviceId, len: u64) -> bool {
        len <= self.len
            && self
                .devices
                .get(device)
                .is_some_and(|d| d.added_seq < len && d.revoked_seq.is_none_or(|r| r >= len))
    }

    /// Whether a vouch in the log names the entry of this `hash` as one
    /// `signer` signed, where the entry claims a length `len` of the log
    /// at which the log does not list `signer` yet. Only there: an entry
    /// claiming a length at which the device is listed verifies or not by
    /// [`AccountState::active_at`] alone, so a device that vouches for an
    /// entry of its own dated after its revocation gains nothing (and
    /// every vouched entry stands before any revocation of its signer).
    pub fn vouched_for(&self, hash: &Hash, signer: &DeviceId, len: u64) -> bool {
        self.vouched.get(hash) == Some(signer)
            && self.devices.get(signer).is_some_and(|d| len <= d.added_seq)
    }

    /// The active devices.
    pub fn active(&self) -> impl Iterator<Item = &DeviceRecord> {
        self.devices.values().filter(|d| d.revoked_seq.is_none())
    }

    /// Checks one more entry against the chain and applies it.
    pub fn apply(&mut self, signed: &Signed) -> Result<(), AccountError> {
        let entry: AccountEntry = signed.open(SIG_LABEL)?;
        let seq = entry.seq;
        if seq != self.len || entry.prev != Some(self.head) {
            return Err(AccountError::Broken(seq));
        }
        if !self.is_active(&signed.signer) {
            return Err(AccountError::NotActive(seq));
        }
        match &entry.op {
            AccountOp::Genesis { .. } => return Err(AccountError::Invalid(seq, "second genesis")),
            AccountOp::AddDevice { device, .. } => {
                if self.devices.contains_key(&device.id) {
                    return Err(AccountError::Invalid(seq, "device is already listed"));
                }
                self.devices.insert(
                    device.id,
                    DeviceRecord {
                        info: device.clone(),
                        added_seq: seq,
                        added_at: entry.at,
                        revoked_seq: None,
                        revoked_generation: None,
                    },
                );
            }
            AccountOp::RevokeDevice {
                device, key, wraps, ..
            } => {
                if !self.is_active(device) {
                    return Err(AccountError::Invalid(seq, "device is not active"));
                }
                if key.generation != self.key.generation + 1 {
                    return Err(AccountError::Invalid(
                        seq,
                        "key generation must step by one",
                    ));
                }
                let mut remaining: Vec<DeviceId> = self
                    .active()
                    .map(|d| d.info.id)
                    .filter(|d| d != device)
                    .collect();
                if remaining.is_empty() {
                    return Err(AccountError::Invalid(seq, "cannot revoke the last device"));
                }
                let mut wrapped: Vec<DeviceId> = wraps.iter().map(|(d, _)| *d).collect();
                remaining.sort();
                wrapped.sort();
                if remaining != wrapped {
                    return Err(AccountError::Invalid(
                        seq,
                        "new key must be wrapped to exactly the remaining devices",
                    ));
                }
                if let Some(d) = self.devices.get_mut(device) {
                    d.revoked_seq = Some(seq);
                    d.revoked_generation = Some(key.generation);
                }
                self.key = *key;
            }
            AccountOp::Vouch { device, entries } => {
                if !self.is_active(device) {
                    return Err(AccountError::Invalid(seq, "device is not active"));
                }
                if entries.is_empty() || entries.len() > MAX_VOUCHED {
                    return Err(AccountError::Invalid(
                        seq,
                        "a vouch names 1 to 4096 entries",
                    ));
                }
                let mut named = BTreeMap::new();
                for hash in entries {
                    if self.vouched.contains_key(hash) || named.insert(*hash, *device).is_some() {
                        return Err(AccountError::Invalid(seq, "entry vouched for already"));
                    }
                }
                self.vouched.append(&mut named);
            }
        }
        self.len += 1;
        self.head = signed.hash(HASH_LABEL);
        Ok(())
    }
}

/// Makes a genesis entry for a new account; returns it with the account key.
pub fn genesis(signer: &DeviceSigner, dh: &DhSecret, at: u64) -> (Signed, DhSecret) {
    let account_key = DhSecret::generate();
    let device = DeviceInfo {
        id: signer.device_id(),
        dh: dh.public(),
        kind: DeviceKind::Device,
    };
    let wrap = crypto::wrap(
        &device.dh,
        &wrap_info(&GENESIS_ACCOUNT, &device.id, 0),
        account_key.expose(),
    )
    .expect("our own freshly made X25519 key is a valid public key");
    let entry = AccountEntry {
        seq: 0,
        prev: None,
        at,
        op: AccountOp::Genesis {
            device,
            key: AccountKeyPub {
                generation: 0,
                public: account_key.public(),
            },
            wrap,
        },
    };
    (Signed::sign(signer, SIG_LABEL, &entry), account_key)
}

/// Makes an entry that adds `device`, wrapping the current account key to it.
pub fn add_device(
    state: &AccountState,
    signer: &DeviceSigner,
    account_key: &DhSecret,
    device: DeviceInfo,
    at: u64,
) -> Result<Signed, CryptoError> {
    let wrap = crypto::wrap(
        &device.dh,
        &wrap_info(&state.id, &device.id, state.key.generation),
        account_key.expose(),
    )?;
    let entry = AccountEntry {
        seq: state.len,
        prev: Some(state.head),
        at,
        op: AccountOp::AddDevice { device, wrap },
    };
    Ok(Signed::sign(signer, SIG_LABEL, &entry))
}

/// Makes an entry that revokes `device` and rotates the account key.
pub fn revoke_device(
    state: &AccountState,
    signer: &DeviceSigner,
    current_key: &DhSecret,
    device: DeviceId,
    at: u64,
) -> Result<(Signed, DhSecret), CryptoError> {
    let new_key = DhSecret::generate();
    let entry = revoke_device_to(state, signer, current_key, device, &new_key, at)?;
    Ok((entry, new_key))
}

/// [`revoke_device`] to an account key made before: a revocation a relay
/// restored from an older copy lost, made again on top of the log written
/// to there since, keeps its generation's key, so what was sealed to that
/// key (the rotations that followed it) stays readable.
pub fn revoke_device_to(
    state: &AccountState,
    signer: &DeviceSigner,
    current_key: &DhSecret,
    device: DeviceId,
    new_key: &DhSecret,
    at: u64,
) -> Result<Signed, CryptoError> {
    let generation = state.key.generation + 1;
    let mut wraps = Vec::new();
    for d in state.active().filter(|d| d.info.id != device) {
        let w = crypto::wrap(
            &d.info.dh,
            &wrap_info(&state.id, &d.info.id, generation),
            new_key.expose(),
        )?;
        wraps.push((d.info.id, w));
    }
    let previous = crypto::wrap(
        &new_key.public(),
        &prev_info(&state.id, generation),
        current_key.expose(),
    )?;
    let entry = AccountEntry {
        seq: state.len,
        prev: Some(state.head),
        at,
        op: AccountOp::RevokeDevice {
            device,
            key: AccountKeyPub {
                generation,
                public: new_key.public(),
            },
            wraps,
            previous,
        },
    };
    Ok(Signed::sign(signer, SIG_LABEL, &entry))
}

/// Makes an entry that vouches for `entries` (hashes of entries `device`
/// signed), at most [`MAX_VOUCHED`] of them.
pub fn vouch(
    state: &AccountState,
    signer: &DeviceSigner,
    device: DeviceId,
    entries: Vec<Hash>,
    at: u64,
) -> Signed {
    let entry = AccountEntry {
        seq: state.len,
        prev: Some(state.head),
        at,
        op: AccountOp::Vouch { device, entries },
    };
    Signed::sign(signer, SIG_LABEL, &entry)
}

/// Recovers every account-key generation a device can reach from a verified log:
/// the newest wrapped to it, then each older one through the `previous` seals.
/// Returns keys indexed by generation.
pub fn account_keys(
    entries: &[Signed],
    account: &AccountId,
    device: &DeviceId,
    device_dh: &DhSecret,
) -> Result<Vec<DhSecret>, AccountError> {
    let mut ops = Vec::with_capacity(entries.len());
    for e in entries {
        let entry: AccountEntry = e.open(SIG_LABEL)?;
        ops.push(entry.op);
    }
    // Find the newest generation wrapped to this device.
    let mut newest: Option<(u32, DhSecret)> = None;
    let mut generation = 0u32;
    for op in &ops {
        match op {
            AccountOp::Genesis {
                device: d, wrap, ..
            } if d.id == *device => {
                let k =
                    crypto::unwrap_key(device_dh, &wrap_info(&GENESIS_ACCOUNT, device, 0), wrap)?;
                newest = Some((0, DhSecret::from_bytes(*k.expose())));
            }
            AccountOp::AddDevice { device: d, wrap } if d.id == *device => {
                let k =
                    crypto::unwrap_key(device_dh, &wrap_info(account, device, generation), wrap)?;
                newest = Some((generation, DhSecret::from_bytes(*k.expose())));
            }
            AccountOp::RevokeDevice { key, wraps, .. } => {
                generation = key.generation;
                if let Some((_, w)) = wraps.iter().find(|(d, _)| d == device) {
                    let k =
                        crypto::unwrap_key(device_dh, &wrap_info(account, device, generation), w)?;
                    newest = Some((generation, DhSecret::from_bytes(*k.expose())));
                }
            }
            _ => {}
        }
    }
    let (top, key) = newest.ok_or(AccountError::Invalid(
        0,
        "no account key is wrapped to this device",
    ))?;
    // Walk back through the chain of previous keys.
    let mut keys = vec![key];
    for g in (1..=top).rev() {
        let previous = ops
            .iter()
            .find_map(|op| match op {
                AccountOp::RevokeDevice { key, previous, .. } if key.generation == g => {
                    Some(previous)
                }
                _ => None,
            })
            .ok_or(AccountError::Invalid(0, "missing rotation entry"))?;
        let newer = keys.last().expect("keys starts non-empty");
        let k: SecretKey = crypto::unwrap_key(newer, &prev_info(account, g), previous)?;
        keys.push(DhSecret::from_bytes(*k.expose()));
    }
    keys.reverse();
    // Each key the one the log names for its generation: a wrap or a
    // previous-key seal an active device made up (a stolen one) would
    // otherwise hand this device a key no other device holds.
    for op in &ops {
        let named = match op {
            AccountOp::Genesis { key, .. } | AccountOp::RevokeDevice { key, .. } => key,
            _ => continue,
        };
        if let Some(k) = keys.get(named.generation as usize)
            && k.public() != named.public
        {
            return Err(AccountError::Invalid(
                0,
                "an account key does not match the public key the log names",
            ));
        }
    }
    Ok(keys)
}

#[cfg(test)]
#[path = "account_tests.rs"]
mod tests;
