//! Identifiers: fixed-size byte strings that print as lowercase hex.
//!
//! Ids are random or derived from public keys and hashes, so they are safe to
//! show to the relay and to print; they never carry a secret.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Error for an id that is not valid hex of the right length.
#[derive(Debug, thiserror::Error)]
#[error("not a valid {kind}: expected {len} hex characters")]
pub struct ParseIdError {
    kind: &'static str,
    len: usize,
}

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The id's bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Full lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses full lowercase or uppercase hex.
            pub fn from_hex(s: &str) -> Result<Self, ParseIdError> {
                let err = || ParseIdError { kind: $kind, len: $len * 2 };
                let bytes = hex::decode(s.trim()).map_err(|_| err())?;
                Ok(Self(bytes.try_into().map_err(|_| err())?))
            }

            /// The first 8 hex characters, for people to read.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

byte_id!(
    /// SHA-256 of an account's genesis entry.
    AccountId, 32, "account id"
);
byte_id!(
    /// A device's Ed25519 public key: the id is the key, so it cannot be swapped.
    DeviceId, 32, "device id"
);
byte_id!(
    /// A random document id.
    DocId, 16, "document id"
);
byte_id!(
    /// A SHA-256 over an entry of a signed log: the chain link.
    Hash, 32, "hash"
);
byte_id!(
    /// A random id an author gives each envelope; the relay dedups on it.
    EnvelopeId, 24, "envelope id"
);

impl DocId {
    /// A fresh random document id.
    pub fn random() -> Self {
        Self(crate::crypto::random_bytes())
    }
}
