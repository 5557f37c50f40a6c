//! This device's identity: its keys, its account, and the relay it uses.
//! Stored sealed in the local store; the key fields zeroize on drop.

use casebook_shared::account::DeviceKind;
use casebook_shared::crypto::{DeviceSigner, DhSecret};
use casebook_shared::ids::AccountId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The sealed record of this device.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct IdentityRecord {
    signer_seed: [u8; 32],
    dh_secret: [u8; 32],
    #[zeroize(skip)]
    pub account: AccountId,
    #[zeroize(skip)]
    pub name: String,
    #[zeroize(skip)]
    pub relay: String,
    #[zeroize(skip)]
    pub fingerprint: [u8; 32],
    /// Whether the relay has acknowledged the account's creation.
    #[zeroize(skip)]
    pub registered: bool,
}

impl std::fmt::Debug for IdentityRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityRecord({}, {:?})", self.name, self.account)
    }
}

/// This device's keys and settings, ready to use.
pub struct Identity {
    pub signer: DeviceSigner,
    pub dh: DhSecret,
    pub record: IdentityRecord,
}

impl Identity {
    /// Builds from device keys and settings.
    pub fn new(
        signer: DeviceSigner,
        dh: DhSecret,
        account: AccountId,
        name: String,
        relay: String,
        fingerprint: [u8; 32],
    ) -> Identity {
        let record = IdentityRecord {
            signer_seed: *signer.seed(),
            dh_secret: *dh.expose(),
            account,
            name,
            relay,
            fingerprint,
            registered: false,
        };
        Identity { signer, dh, record }
    }

    /// Rebuilds from the sealed record.
    pub fn from_record(record: IdentityRecord) -> Identity {
        Identity {
            signer: DeviceSigner::from_seed(&record.signer_seed),
            dh: DhSecret::from_bytes(record.dh_secret),
            record,
        }
    }

    /// The device's kind as the account log should list it.
    pub fn kind(&self) -> DeviceKind {
        DeviceKind::Device
    }
}
