//! The passphrase's key: Argon2id at a cost chosen when the store is made.

use casebook_shared::crypto::SecretKey;
use zeroize::Zeroizing;

use super::StoreError;

/// The cost of deriving the key that seals the master key from a
/// passphrase (Argon2id). Chosen when a store is made and kept beside the
/// salt, so a store opens with the cost it was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, three passes, one lane: ~200 ms on a 2-core VM.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest Argon2 allows: for simulations that make hundreds of
    /// homes. It does nothing to slow a guess at a real passphrase.
    pub const FOR_SIMULATION: KdfParams = KdfParams {
        m_kib: 8,
        t: 1,
        p: 1,
    };

    pub(crate) fn encode(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.m_kib.to_be_bytes());
        out[4..8].copy_from_slice(&self.t.to_be_bytes());
        out[8..].copy_from_slice(&self.p.to_be_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let n = |i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
        (b.len() == 12).then_some(())?;
        let k = KdfParams {
            m_kib: n(0)?,
            t: n(4)?,
            p: n(8)?,
        };
        // Read from disk: a cost no store of ours was made with (a gigabyte
        // or more) is damage, not a reason to exhaust memory.
        (k.m_kib < 1 << 20 && (1..=16).contains(&k.t) && (1..=8).contains(&k.p)).then_some(k)
    }
}
pub(crate) fn kek(passphrase: &[u8], salt: &[u8], kdf: KdfParams) -> Result<SecretKey, StoreError> {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    Ok(SecretKey::from_bytes(*out))
}
