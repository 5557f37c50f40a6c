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
    /// Not twelve words (one left out, or a phrase of another kind).
    #[error("recovery: there are {0} words; recovery words are 12")]
    WordCount(usize),
    /// A word that is not on the list the words are drawn from (the word
    /// itself is not repeated: it is part of a secret).
    #[error(
        "recovery: word {position} is not one of the words recovery words are made of: check its spelling"
    )]
    UnknownWord { position: usize },
    /// Every word is on the list, but together they do not check out: the
    /// last word carries a checksum of the others.
    #[error(
        "recovery: the 12 words do not check out: one was read as another word of the list, or two \
         are swapped; compare them with the paper, word by word"
    )]
    WordsDoNotCheck,
    /// Not a phrase for another reason.
    #[error("recovery: these are not valid recovery words: {0}")]
    BadWords(bip39::Error),
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
    let normalized = Zeroizing::new(
        words
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let count = normalized.split(' ').filter(|w| !w.is_empty()).count();
    if count != 12 {
        return Err(RecoveryError::WordCount(count));
    }
    let m = bip39::Mnemonic::parse_normalized(&normalized).map_err(|e| match e {
        bip39::Error::UnknownWord(i) => RecoveryError::UnknownWord { position: i + 1 },
        bip39::Error::InvalidChecksum => RecoveryError::WordsDoNotCheck,
        e => RecoveryError::BadWords(e),
    })?;
    let entropy = Zeroizing::new(m.to_entropy());
    let arr: [u8; 16] = entropy
        .as_slice()
        .try_into()
        .map_err(|_| RecoveryError::WordCount(count))?;
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

    #[test]
    fn mistyped_words_are_told_apart_without_repeating_them() {
        let (words, _) = generate();
        let list: Vec<&str> = words.split(' ').collect();
        assert!(matches!(
            from_words(&list[..11].join(" ")),
            Err(RecoveryError::WordCount(11))
        ));
        let mut typo = list.clone();
        let bad = format!("{}q", list[4]);
        typo[4] = &bad;
        let err = from_words(&typo.join(" ")).err().unwrap();
        assert!(matches!(err, RecoveryError::UnknownWord { position: 5 }));
        assert!(!err.to_string().contains(&bad), "{err}");
        // Two different words swapped: every word is on the list, and
        // the checksum tells (all but rarely).
        let mut swapped = list.clone();
        let (i, j) = (0..12)
            .flat_map(|i| (0..12).map(move |j| (i, j)))
            .find(|&(i, j)| list[i] != list[j] && i < j)
            .unwrap();
        swapped.swap(i, j);
        match from_words(&swapped.join(" ")) {
            Err(RecoveryError::WordsDoNotCheck) | Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
        let abandon = ["abandon"; 12].join(" ");
        assert!(matches!(
            from_words(&abandon),
            Err(RecoveryError::WordsDoNotCheck)
        ));
    }
}
