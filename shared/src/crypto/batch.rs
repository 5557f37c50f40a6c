//! Ed25519 batch verification of many signatures by one key.
//!
//! `ed25519-dalek`'s own `verify_batch` takes a key per signature and so
//! multiplies the same key once per signature. A relay upload is one
//! device's envelopes, so here the key's terms are summed first: the
//! multiscalar multiplication shrinks from `2n + 1` points to `n + 2`
//! (BENCHMARKS.md has the time per signature beside a strict check of
//! each). The equation is dalek's and the arithmetic `curve25519-dalek`'s;
//! ours are the grouping, the weights (SHA-512 over fresh randomness and
//! every input, where dalek uses a Merlin transcript) and the refusal of a
//! small-order `R`, which dalek's batch lets through.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

use super::{CryptoError, Sig, random_bytes};
use crate::ids::DeviceId;

/// Checks many signatures of one device under one label at once, from a
/// few on in well under half the time per signature of [`super::verify`]
/// (BENCHMARKS.md).
///
/// It checks `[Σ zᵢsᵢ]B = Σ [zᵢ]Rᵢ + [Σ zᵢhᵢ]A` with 128-bit weights `zᵢ`
/// drawn from the operating system's generator and a hash of every input,
/// so signatures whose errors lie in the prime-order group cannot be made
/// to cancel out. Each `s` must be canonical and each `R` a point of more
/// than small order, as [`super::verify`] demands; a weak (small-order)
/// key is refused.
///
/// Everything [`super::verify`] accepts passes here. The converse holds
/// for every signer without the device's key; its holder alone can make
/// a signature that is wrong only by a small-order point (an `R`, or the
/// key itself, with a small-order component), and such a batch passes
/// with probability ½ to ⅛, depending on the weights. Every reader checks
/// strictly and refuses it, so the holder gains nothing it could not do by
/// signing an envelope of garbage properly.
///
/// On failure it says only that some signature is bad (`BadSignature`),
/// or that the key is not one (`BadPublicKey`): check each signature with
/// [`super::verify`] to find which.
pub fn verify_batch(
    device: &DeviceId,
    label: &str,
    msgs: &[&[u8]],
    sigs: &[Sig],
) -> Result<(), CryptoError> {
    if msgs.len() != sigs.len() {
        return Err(CryptoError::BadSignature);
    }
    let key = VerifyingKey::from_bytes(&device.0).map_err(|_| CryptoError::BadPublicKey)?;
    if key.is_weak() {
        return Err(CryptoError::BadPublicKey);
    }
    if sigs.is_empty() {
        return Ok(());
    }
    // The weights' seed: fresh randomness, then every input as it is read.
    let mut seed = Sha512::new();
    seed.update(b"casebook/v1/ed25519-batch-weights");
    seed.update(random_bytes::<32>());
    seed.update(device.0);
    let mut rs = Vec::with_capacity(sigs.len());
    let mut ss = Vec::with_capacity(sigs.len());
    let mut hs = Vec::with_capacity(sigs.len());
    for (msg, sig) in msgs.iter().zip(sigs) {
        let (r_bytes, s_bytes) = sig.0.split_at(32);
        let r_bytes: [u8; 32] = r_bytes.try_into().expect("64 bytes split at 32");
        let s_bytes: [u8; 32] = s_bytes.try_into().expect("64 bytes split at 32");
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
            .ok_or(CryptoError::BadSignature)?;
        let r = CompressedEdwardsY(r_bytes)
            .decompress()
            .ok_or(CryptoError::BadSignature)?;
        if r.is_small_order() {
            return Err(CryptoError::BadSignature);
        }
        // H(R ‖ A ‖ M), M being exactly what `sign` signed.
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(device.0);
        h.update((label.len() as u32).to_be_bytes());
        h.update(label.as_bytes());
        h.update(msg);
        let hram: [u8; 64] = h.finalize().into();
        seed.update(hram);
        seed.update(s_bytes);
        rs.push(r);
        ss.push(s);
        hs.push(Scalar::from_bytes_mod_order_wide(&hram));
    }
    let seed: [u8; 64] = seed.finalize().into();
    let mut b = Scalar::ZERO;
    let mut a = Scalar::ZERO;
    let mut zs = Vec::with_capacity(sigs.len());
    for (i, (s, h)) in ss.iter().zip(&hs).enumerate() {
        let mut w = Sha512::new();
        w.update(seed);
        w.update((i as u64).to_le_bytes());
        let w: [u8; 64] = w.finalize().into();
        let z = Scalar::from(u128::from_le_bytes(
            w[..16].try_into().expect("16 of 64 bytes"),
        ));
        b -= z * s;
        a += z * h;
        zs.push(z);
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(b).chain(zs).chain(std::iter::once(a)),
        std::iter::once(ED25519_BASEPOINT_POINT)
            .chain(rs)
            .chain(std::iter::once(key.to_edwards())),
    );
    if sum.is_identity() {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

#[cfg(test)]
mod tests;
