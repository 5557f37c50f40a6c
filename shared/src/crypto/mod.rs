//! The crypto steps, one small function each, after the standards they follow:
//! Ed25519 (RFC 8032, strict verification), X25519 (RFC 7748), HKDF-SHA256
//! (RFC 5869), XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) and HPKE base mode
//! with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305 (RFC 9180).
//!
//! Every signature and every derived key carries its own `casebook/v1/...`
//! label, so no key or signature can be replayed in another role.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ids::{DeviceId, Hash};

mod batch;
pub use batch::verify_batch;

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

/// A crypto step failed: a forged, damaged or misdirected input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("signature does not verify")]
    BadSignature,
    #[error("not a valid public key")]
    BadPublicKey,
    #[error("decryption failed: wrong key, or the data was changed")]
    Decrypt,
}

/// Fills an array from the operating system's generator.
///
/// Panics only if the OS has no entropy source, where no key could be made at all.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system's random generator failed");
    out
}

/// SHA-256 of `label || data`, so hashes of different structures never collide.
pub fn hash(label: &str, data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update((label.len() as u32).to_be_bytes());
    h.update(label.as_bytes());
    h.update(data);
    Hash(h.finalize().into())
}

/// A 32-byte symmetric secret that zeroizes on drop and never prints.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// Wraps existing key bytes (read from a sealed store, unwrapped from an envelope).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key, for sealing it to someone else.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// HKDF-SHA256 of this key with a label and a context: one derived key per purpose.
    pub fn derive(&self, label: &str, context: &[u8]) -> SecretKey {
        derive(&self.0, label, context)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// HKDF-SHA256 (RFC 5869): `label` is the salt-free info prefix, `context` binds ids.
pub fn derive(ikm: &[u8], label: &str, context: &[u8]) -> SecretKey {
    let hk = hkdf::Hkdf::<Sha256>::new(None, ikm);
    let mut info = Vec::with_capacity(label.len() + context.len() + 1);
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    info.extend_from_slice(context);
    let mut out = [0u8; 32];
    hk.expand(&info, &mut out)
        .expect("32 bytes is far below HKDF-SHA256's output limit");
    SecretKey(out)
}

/// XChaCha20-Poly1305 seal with a 24-byte nonce; `aad` is authenticated, not hidden.
pub fn seal(key: &SecretKey, nonce: &[u8; 24], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(&key.0.into());
    cipher
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any message below 256 GiB")
}

/// XChaCha20-Poly1305 open; any change to key, nonce, aad or ciphertext fails.
pub fn open(
    key: &SecretKey,
    nonce: &[u8; 24],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(&key.0.into());
    cipher
        .decrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// Seals with a fresh random nonce, returned in front of the ciphertext.
pub fn seal_random(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; 24] = random_bytes();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&seal(key, &nonce, aad, plaintext));
    out
}

/// Opens what [`seal_random`] made.
pub fn open_random(
    key: &SecretKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < 24 {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = sealed.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
    open(key, &nonce, aad, ct)
}

/// An Ed25519 signature, carried as exactly 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub [u8; 64]);

impl std::fmt::Debug for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sig({}..)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Sig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: serde_bytes_vec::Bytes = Deserialize::deserialize(d)?;
        let arr: [u8; 64] =
            v.0.try_into()
                .map_err(|_| serde::de::Error::custom("a signature is 64 bytes"))?;
        Ok(Sig(arr))
    }
}

/// A minimal byte-vector visitor so `Sig` decodes from a serde byte string.
mod serde_bytes_vec {
    pub struct Bytes(pub Vec<u8>);
    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

/// The message an Ed25519 signature covers: a length-prefixed label, then the bytes.
fn signed_message(label: &str, msg: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + msg.len() + 4);
    m.extend_from_slice(&(label.len() as u32).to_be_bytes());
    m.extend_from_slice(label.as_bytes());
    m.extend_from_slice(msg);
    m
}

/// A device's Ed25519 signing key. Zeroizes on drop (dalek's own `Drop`); never prints.
pub struct DeviceSigner(SigningKey);

impl DeviceSigner {
    /// A fresh random device key.
    pub fn generate() -> Self {
        Self::from_seed(&Zeroizing::new(random_bytes()))
    }

    /// The key from its 32-byte seed (a sealed store, or the recovery derivation).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The seed, to seal into the local store.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The device id is the public key.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` under a purpose label.
    pub fn sign(&self, label: &str, msg: &[u8]) -> Sig {
        Sig(self.0.sign(&signed_message(label, msg)).to_bytes())
    }
}

impl std::fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceSigner({})", self.device_id().short())
    }
}

/// Checks a signature with `verify_strict` (no malleable or small-order keys).
pub fn verify(device: &DeviceId, label: &str, msg: &[u8], sig: &Sig) -> Result<(), CryptoError> {
    let key = VerifyingKey::from_bytes(&device.0).map_err(|_| CryptoError::BadPublicKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    key.verify_strict(&signed_message(label, msg), &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// An X25519 secret: a device's key-agreement key or an account key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DhSecret([u8; 32]);

impl DhSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// From stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw secret, to seal into the local store or to another device.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key.
    pub fn public(&self) -> [u8; 32] {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        x25519_dalek::PublicKey::from(&secret).to_bytes()
    }
}

impl std::fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DhSecret(..)")
    }
}

/// An HPKE (RFC 9180, base mode) ciphertext: the encapsulated key and the sealed payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrapped {
    pub enc: Vec<u8>,
    pub ct: Vec<u8>,
}

impl std::fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wrapped({} bytes)", self.ct.len())
    }
}

/// Seals `secret` to an X25519 public key; `info` binds who, what and which epoch.
pub fn wrap(recipient: &[u8; 32], info: &[u8], secret: &[u8]) -> Result<Wrapped, CryptoError> {
    let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| CryptoError::BadPublicKey)?;
    let (enc, ct) = hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem>(
        &OpModeS::Base,
        &pk,
        info,
        secret,
        b"",
    )
    .map_err(|_| CryptoError::BadPublicKey)?;
    Ok(Wrapped {
        enc: enc.to_bytes().to_vec(),
        ct,
    })
}

/// Opens a [`Wrapped`] with the recipient's secret and the same `info`.
pub fn unwrap(
    recipient: &DhSecret,
    info: &[u8],
    wrapped: &Wrapped,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let sk = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(&recipient.0)
        .map_err(|_| CryptoError::Decrypt)?;
    let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&wrapped.enc)
        .map_err(|_| CryptoError::Decrypt)?;
    hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        &wrapped.ct,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Decrypt)
}

/// Unwraps a 32-byte key.
pub fn unwrap_key(
    recipient: &DhSecret,
    info: &[u8],
    wrapped: &Wrapped,
) -> Result<SecretKey, CryptoError> {
    let bytes = unwrap(recipient, info, wrapped)?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(SecretKey(arr))
}

// Keep the trait import used even when the KEM's keygen is not called here.
#[allow(dead_code)]
fn _kem_in_scope() {
    let _ = HpkeKem::gen_keypair;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_aad_and_key() {
        let k = SecretKey::random();
        let ct = seal_random(&k, b"ctx", b"hello");
        assert_eq!(&open_random(&k, b"ctx", &ct).unwrap()[..], b"hello");
        assert_eq!(open_random(&k, b"other", &ct), Err(CryptoError::Decrypt));
        assert_eq!(
            open_random(&SecretKey::random(), b"ctx", &ct),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn signatures_bind_label() {
        let s = DeviceSigner::generate();
        let sig = s.sign("a", b"m");
        assert!(verify(&s.device_id(), "a", b"m", &sig).is_ok());
        assert!(verify(&s.device_id(), "b", b"m", &sig).is_err());
        assert!(verify(&s.device_id(), "a", b"n", &sig).is_err());
    }

    #[test]
    fn hpke_wrap_binds_info() {
        let sk = DhSecret::generate();
        let w = wrap(&sk.public(), b"info", &[7u8; 32]).unwrap();
        assert_eq!(unwrap_key(&sk, b"info", &w).unwrap().expose(), &[7u8; 32]);
        assert!(unwrap_key(&sk, b"other", &w).is_err());
        assert!(unwrap_key(&DhSecret::generate(), b"info", &w).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", SecretKey::random()), "SecretKey(..)");
        assert_eq!(format!("{:?}", DhSecret::generate()), "DhSecret(..)");
    }
}
