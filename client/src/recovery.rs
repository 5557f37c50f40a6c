//! The recovery key: 12 words (BIP-39 English, 128 bits) shown once at `init`.
//!
//! The words deterministically derive a "paper device" (an Ed25519 and an
//! X25519 key) that the account log lists like any device. With the words, a
//! person who lost every device signs in as the paper device and adds a new one.

use casebook_shared::account::{DeviceInfo, DeviceKind};
use casebook_shared::crypto::{self, DeviceSigner, DhSecret};
use zeroize::Zeroizing;

/// Why the recovery words did not restore the account, or could not seal
/// or open a backup.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// Not a BIP-39 phrase (a word misspelt, one missing, a wrong checksum).
    #[error("recovery: these are not valid recovery words: {0}")]
    BadWords(bip39::Error),
    /// A valid phrase, but of another length than the 12 words casebook shows.
    #[error("recovery: these are not valid recovery words: expected 12 words")]
    NotTwelveWords,
    /// Signing in as the paper device failed: the words were replaced, or
    /// belong to no account on this relay.
    #[error("recovery: the relay does not know these words as an active recovery key")]
    UnknownToRelay(#[source] crate::net::NetError),
    #[error("recovery: unexpected answer {0:?}")]
    UnexpectedAnswer(Box<casebook_shared::frames::Response>),
    #[error("recovery: the account log does not list this recovery key")]
    NotListed,
    /// The account key moved on without being sealed to the paper device.
    #[error("recovery: the recovery key does not hold the current account key")]
    NotCurrent,
}

/// The paper device's keys.
pub struct PaperDevice {
    pub signer: DeviceSigner,
    pub dh: DhSecret,
}

impl PaperDevice {
    /// Derives the paper device from 16 bytes of entropy.
    pub fn from_entropy(entropy: &[u8; 16]) -> PaperDevice {
        let sign = crypto::derive(entropy, "casebook/v1/recovery/signing-key", b"");
        let dh = crypto::derive(entropy, "casebook/v1/recovery/dh-key", b"");
        PaperDevice {
            signer: DeviceSigner::from_seed(sign.expose()),
            dh: DhSecret::from_bytes(*dh.expose()),
        }
    }

    /// As the account log lists it.
    pub fn info(&self) -> DeviceInfo {
        DeviceInfo {
            id: self.signer.device_id(),
            dh: self.dh.public(),
            kind: DeviceKind::Paper,
        }
    }
}

/// Fresh recovery words and their paper device.
pub fn generate() -> (Zeroizing<String>, PaperDevice) {
    let entropy: Zeroizing<[u8; 16]> = Zeroizing::new(crypto::random_bytes());
    let words = bip39::Mnemonic::from_entropy(&entropy[..])
        .expect("16 bytes is a valid BIP-39 entropy length")
        .to_string();
    (Zeroizing::new(words), PaperDevice::from_entropy(&entropy))
}

/// The paper device of typed words (case, spacing and line breaks do not matter).
pub fn from_words(words: &str) -> Result<PaperDevice, RecoveryError> {
    let normalized = words
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    let m = bip39::Mnemonic::parse_normalized(&normalized).map_err(RecoveryError::BadWords)?;
    let entropy = Zeroizing::new(m.to_entropy());
    let arr: [u8; 16] = entropy
        .as_slice()
        .try_into()
        .map_err(|_| RecoveryError::NotTwelveWords)?;
    Ok(PaperDevice::from_entropy(&arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let (words, paper) = generate();
        assert_eq!(words.split(' ').count(), 12);
        let again = from_words(&words.to_uppercase()).unwrap();
        assert_eq!(again.signer.device_id(), paper.signer.device_id());
        assert!(from_words("not valid words at all").is_err());
    }
}
