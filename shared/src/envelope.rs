//! The change envelope: what the relay stores and forwards.
//!
//! Layout (big-endian, fixed offsets, so the relay reads the header without a
//! parser that could be confused):
//!
//! ```text
//! version u8 | kind u8 | doc [16] | epoch u32 | account [32] | author [32]
//! | id [24] | covers u64 | ct_len u32 | ciphertext [ct_len] | signature [64]
//! ```
//!
//! The body (a batch of Automerge changes, or a saved document) is padded with
//! Padmé (at most 12% larger) and sealed with XChaCha20-Poly1305 under a key
//! derived from the document's epoch key; the nonce is the `id` (16 of its
//! bytes random, see [`EnvelopeId::fresh`]), and the associated data is the
//! whole header. The author device signs every byte
//! before the signature; readers verify those exact bytes.

use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError, DeviceSigner, SecretKey, Sig};
use crate::ids::{AccountId, DeviceId, DocId, EnvelopeId};

/// Signature label of an envelope.
pub const SIG_LABEL: &str = "casebook/v1/sig/envelope";
const KEY_LABEL: &str = "casebook/v1/doc/change-key";
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 1 + 1 + 16 + 4 + 32 + 32 + 24 + 8;
/// The largest envelope either side accepts.
pub const MAX_ENVELOPE: usize = 8 * 1024 * 1024;
/// The largest signal the relay takes. A device's signal of a document
/// holds one claim and at most 16 wants (well under 1 KiB sealed); a
/// reader, who may send nothing else there, cannot fill the owner's quota
/// with a few large ones.
pub const MAX_SIGNAL: usize = 4 * 1024;

/// Whether the body is a batch of changes, a whole saved document, or a
/// signal: what its author tells the document's other members about the
/// document's history (which of its changes the relay acknowledged, which
/// it was not served), so that a relay hiding a change from some members
/// is caught by them. The relay treats a signal as it treats a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Change = 0,
    Snapshot = 1,
    Signal = 2,
}

/// The clear, signed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub doc: DocId,
    pub epoch: u32,
    pub account: AccountId,
    pub author: DeviceId,
    pub id: EnvelopeId,
    /// For a snapshot: the highest relay sequence number it includes. 0 for changes.
    pub covers: u64,
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("envelope is truncated or its length fields disagree")]
    Truncated,
    #[error("envelope of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("unknown envelope version {0}")]
    Version(u8),
    #[error("unknown envelope kind {0}")]
    Kind(u8),
    #[error("padding is malformed")]
    Padding,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A decoded envelope that still holds the exact bytes it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub header: Header,
    bytes: Vec<u8>,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.push(crate::PROTOCOL_VERSION);
        b.push(self.kind as u8);
        b.extend_from_slice(&self.doc.0);
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&self.account.0);
        b.extend_from_slice(&self.author.0);
        b.extend_from_slice(&self.id.0);
        b.extend_from_slice(&self.covers.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Self, EnvelopeError> {
        let b: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(EnvelopeError::Truncated)?;
        if b[0] != crate::PROTOCOL_VERSION {
            return Err(EnvelopeError::Version(b[0]));
        }
        let kind = match b[1] {
            0 => Kind::Change,
            1 => Kind::Snapshot,
            2 => Kind::Signal,
            k => return Err(EnvelopeError::Kind(k)),
        };
        let arr = |from: usize, to: usize| &b[from..to];
        Ok(Header {
            kind,
            doc: DocId(arr(2, 18).try_into().expect("16-byte range")),
            epoch: u32::from_be_bytes(arr(18, 22).try_into().expect("4-byte range")),
            account: AccountId(arr(22, 54).try_into().expect("32-byte range")),
            author: DeviceId(arr(54, 86).try_into().expect("32-byte range")),
            id: EnvelopeId(arr(86, 110).try_into().expect("24-byte range")),
            covers: u64::from_be_bytes(arr(110, 118).try_into().expect("8-byte range")),
        })
    }
}

/// The Padmé padded length of `len` bytes: leaks only O(log log len) bits of size.
pub fn padded_len(len: usize) -> usize {
    if len < 2 {
        return len.max(1);
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// The key that seals a document's changes in one epoch.
pub fn change_key(doc_key: &SecretKey, doc: &DocId, epoch: u32) -> SecretKey {
    let mut ctx = doc.0.to_vec();
    ctx.extend_from_slice(&epoch.to_be_bytes());
    doc_key.derive(KEY_LABEL, &ctx)
}

impl Envelope {
    /// Pads, seals and signs a body.
    pub fn seal(
        header: Header,
        doc_key: &SecretKey,
        signer: &DeviceSigner,
        body: &[u8],
    ) -> Envelope {
        let head = header.encode();
        let inner = 4 + body.len();
        let mut plain = Zeroizing::new(Vec::with_capacity(padded_len(inner)));
        plain.extend_from_slice(&(body.len() as u32).to_be_bytes());
        plain.extend_from_slice(body);
        plain.resize(padded_len(inner), 0);
        let key = change_key(doc_key, &header.doc, header.epoch);
        let ct = crypto::seal(&key, &header.id.0, &head, &plain);
        let mut bytes = head;
        bytes.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&ct);
        let sig = signer.sign(SIG_LABEL, &bytes);
        bytes.extend_from_slice(&sig.0);
        Envelope { header, bytes }
    }

    /// Parses the layout without checking the signature (see [`Envelope::verify`]).
    pub fn decode(bytes: Vec<u8>) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let header = Header::decode(&bytes)?;
        let len_bytes: [u8; 4] = bytes
            .get(HEADER_LEN..HEADER_LEN + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or(EnvelopeError::Truncated)?;
        let ct_len = u32::from_be_bytes(len_bytes) as usize;
        if HEADER_LEN + 4 + ct_len + 64 != bytes.len() {
            return Err(EnvelopeError::Truncated);
        }
        Ok(Envelope { header, bytes })
    }

    /// Checks the author's signature over the exact bytes received.
    pub fn verify(&self) -> Result<(), EnvelopeError> {
        let (signed, sig) = self.signed_part();
        crypto::verify(&self.header.author, SIG_LABEL, signed, &sig)?;
        Ok(())
    }

    /// Checks the signatures of many envelopes, in one batch per author
    /// (see [`crypto::verify_batch`]): which of them verify, in order.
    /// Where a batch fails, its envelopes are checked one by one, so a bad
    /// one never takes good ones down with it.
    pub fn verify_all(envs: &[&Envelope]) -> Vec<bool> {
        let mut ok = vec![false; envs.len()];
        let mut authors: Vec<&DeviceId> = envs.iter().map(|e| &e.header.author).collect();
        authors.sort();
        authors.dedup();
        for author in authors {
            let mine: Vec<usize> = (0..envs.len())
                .filter(|&i| envs[i].header.author == *author)
                .collect();
            let parts: Vec<(&[u8], Sig)> = mine.iter().map(|&i| envs[i].signed_part()).collect();
            let msgs: Vec<&[u8]> = parts.iter().map(|(m, _)| *m).collect();
            let sigs: Vec<Sig> = parts.iter().map(|(_, s)| *s).collect();
            let all =
                mine.len() > 1 && crypto::verify_batch(author, SIG_LABEL, &msgs, &sigs).is_ok();
            for (&i, (msg, sig)) in mine.iter().zip(&parts) {
                ok[i] = all || crypto::verify(author, SIG_LABEL, msg, sig).is_ok();
            }
        }
        ok
    }

    /// The signed bytes and the signature after them.
    fn signed_part(&self) -> (&[u8], Sig) {
        let (signed, sig) = self.bytes.split_at(self.bytes.len() - 64);
        (signed, Sig(sig.try_into().expect("split leaves 64 bytes")))
    }

    /// Decrypts the body with the epoch's document key and strips the padding.
    pub fn open(&self, doc_key: &SecretKey) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let ct = &self.bytes[HEADER_LEN + 4..self.bytes.len() - 64];
        let key = change_key(doc_key, &self.header.doc, self.header.epoch);
        let plain = crypto::open(&key, &self.header.id.0, &self.bytes[..HEADER_LEN], ct)?;
        let len_bytes: [u8; 4] = plain
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(EnvelopeError::Padding)?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let body = plain.get(4..4 + len).ok_or(EnvelopeError::Padding)?;
        if plain[4 + len..].iter().any(|&b| b != 0) {
            return Err(EnvelopeError::Padding);
        }
        Ok(Zeroizing::new(body.to_vec()))
    }

    /// The exact bytes, to send or store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the envelope into its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(kind: Kind) -> Header {
        Header {
            kind,
            doc: DocId([1; 16]),
            epoch: 3,
            account: AccountId([2; 32]),
            author: DeviceId([0; 32]),
            id: EnvelopeId([4; 24]),
            covers: 0,
        }
    }

    #[test]
    fn seal_verify_open() {
        let signer = DeviceSigner::generate();
        let key = SecretKey::random();
        let mut h = header(Kind::Change);
        h.author = signer.device_id();
        let env = Envelope::seal(h.clone(), &key, &signer, b"changes");
        let back = Envelope::decode(env.as_bytes().to_vec()).unwrap();
        assert_eq!(back.header, h);
        back.verify().unwrap();
        assert_eq!(&back.open(&key).unwrap()[..], b"changes");
    }

    #[test]
    fn each_kind_keeps_its_byte_and_an_unknown_one_is_refused() {
        let signer = DeviceSigner::generate();
        let key = SecretKey::random();
        for (kind, byte) in [(Kind::Change, 0), (Kind::Snapshot, 1), (Kind::Signal, 2)] {
            let mut h = header(kind);
            h.author = signer.device_id();
            let env = Envelope::seal(h, &key, &signer, b"body");
            assert_eq!(env.as_bytes()[1], byte);
            assert_eq!(
                Envelope::decode(env.as_bytes().to_vec())
                    .unwrap()
                    .header
                    .kind,
                kind
            );
            let mut unknown = env.as_bytes().to_vec();
            unknown[1] = 3;
            assert_eq!(Envelope::decode(unknown), Err(EnvelopeError::Kind(3)));
        }
    }

    #[test]
    fn a_batch_names_each_bad_signature() {
        let (a, b) = (DeviceSigner::generate(), DeviceSigner::generate());
        let key = SecretKey::random();
        let seal = |s: &DeviceSigner, n: u8| {
            let mut h = header(Kind::Change);
            h.author = s.device_id();
            h.id = EnvelopeId([n; 24]);
            Envelope::seal(h, &key, s, &[n; 40])
        };
        let mut envs: Vec<Envelope> = (0..6)
            .map(|n| seal(if n % 2 == 0 { &a } else { &b }, n))
            .collect();
        assert_eq!(
            Envelope::verify_all(&envs.iter().collect::<Vec<_>>()),
            vec![true; 6]
        );
        // A signature byte of one, and the signed body of another.
        let last = envs[2].bytes.len() - 1;
        envs[2].bytes[last] ^= 1;
        envs[5].bytes[HEADER_LEN + 8] ^= 1;
        let ok = Envelope::verify_all(&envs.iter().collect::<Vec<_>>());
        assert_eq!(ok, vec![true, true, false, true, true, false]);
        // One alone takes the single path.
        assert_eq!(Envelope::verify_all(&[&envs[2]]), vec![false]);
        assert_eq!(Envelope::verify_all(&[]), Vec::<bool>::new());
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let signer = DeviceSigner::generate();
        let key = SecretKey::random();
        let mut h = header(Kind::Change);
        h.author = signer.device_id();
        let env = Envelope::seal(h, &key, &signer, b"a note about the session");
        for i in 0..env.as_bytes().len() {
            let mut b = env.as_bytes().to_vec();
            b[i] ^= 0x01;
            let ok = Envelope::decode(b)
                .and_then(|e| e.verify().map(|_| e))
                .and_then(|e| e.open(&key));
            assert!(ok.is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn padding_is_bounded() {
        for len in [1usize, 2, 100, 1000, 1024, 5000, 65_537, 1_000_000] {
            let p = padded_len(len);
            assert!(p >= len);
            assert!(p as f64 <= len as f64 * 1.125 + 1.0, "{len} -> {p}");
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(e) = Envelope::decode(bytes) {
                let _ = e.verify();
                let _ = e.open(&SecretKey::from_bytes([0; 32]));
            }
        }
    }
}
