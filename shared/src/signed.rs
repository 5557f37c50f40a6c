//! A signed record: the exact body bytes, who signed them, and the signature.
//!
//! The body stays as the bytes that were signed; a reader verifies those bytes
//! and only then decodes them, never re-encoding anything to check it.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::codec::{self, CodecError};
use crate::crypto::{self, CryptoError, DeviceSigner, Sig};
use crate::ids::{DeviceId, Hash};

/// A body signed by one device under a purpose label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    pub signer: DeviceId,
    pub sig: Sig,
}

/// Why a signed record was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignedError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl Signed {
    /// Encodes `value` and signs the bytes.
    pub fn sign<T: Serialize>(signer: &DeviceSigner, label: &str, value: &T) -> Self {
        let body = codec::encode(value);
        let sig = signer.sign(label, &body);
        Signed {
            body,
            signer: signer.device_id(),
            sig,
        }
    }

    /// Verifies the signature over the exact body bytes, then decodes them.
    pub fn open<T: DeserializeOwned>(&self, label: &str) -> Result<T, SignedError> {
        crypto::verify(&self.signer, label, &self.body, &self.sig)?;
        Ok(codec::decode(&self.body)?)
    }

    /// The chain hash of this record: over body, signer and signature.
    pub fn hash(&self, label: &str) -> Hash {
        let mut data = Vec::with_capacity(self.body.len() + 100);
        data.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        data.extend_from_slice(&self.body);
        data.extend_from_slice(&self.signer.0);
        data.extend_from_slice(&self.sig.0);
        crypto::hash(label, &data)
    }
}
