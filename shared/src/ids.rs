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
    /// The id an author gives each envelope ([`EnvelopeId::fresh`]); the
    /// relay dedups on it, and it is the envelope's nonce.
    EnvelopeId, 24, "envelope id"
);

impl EnvelopeId {
    /// A new id: a number this process counts up from a random start, then
    /// 16 random bytes.
    ///
    /// The id is the envelope's XChaCha20 nonce: the 16 random bytes alone
    /// keep any two ids apart, across devices and runs. The number makes
    /// the ids one device hands out rise, so the relay's index of
    /// (document, id), which it checks every upload against for a repeat,
    /// grows at one place per device instead of at random ones: a batch of
    /// one device's changes writes one page of that index, not one page per
    /// change (a fifth to a quarter less written per envelope, and up to a
    /// third less of the relay writer's time, measured on SQLite; see
    /// BENCHMARKS.md). The start is random,
    /// so the number tells the relay nothing about how many envelopes came
    /// before; that ids of one run rise together it knows already from the
    /// author's device id.
    pub fn fresh() -> Self {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: OnceLock<AtomicU64> = OnceLock::new();
        // Below 2^63, so it does not wrap and the ids keep rising.
        let next = NEXT
            .get_or_init(|| AtomicU64::new(u64::from_be_bytes(crate::crypto::random_bytes()) >> 1));
        let n = next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 24];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id[8..].copy_from_slice(&crate::crypto::random_bytes::<16>());
        Self(id)
    }
}

impl DocId {
    /// A fresh random document id.
    pub fn random() -> Self {
        Self(crate::crypto::random_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::EnvelopeId;

    #[test]
    fn fresh_envelope_ids_rise_and_keep_random_bytes() {
        let ids: Vec<EnvelopeId> = (0..100).map(|_| EnvelopeId::fresh()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{:?} then {:?}", pair[0], pair[1]);
            assert_ne!(pair[0].0[8..], pair[1].0[8..]);
        }
    }
}
