//! The grouped batch check against the strict single check it stands for.

use proptest::prelude::*;

use super::super::{DeviceSigner, verify};
use super::*;

const LABEL: &str = "casebook/v1/test";

fn signed(n: usize) -> (DeviceSigner, Vec<Vec<u8>>, Vec<Sig>) {
    let signer = DeviceSigner::generate();
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    let sigs = msgs.iter().map(|m| signer.sign(LABEL, m)).collect();
    (signer, msgs, sigs)
}

fn check(signer: &DeviceSigner, msgs: &[Vec<u8>], sigs: &[Sig]) -> Result<(), CryptoError> {
    let msgs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    verify_batch(&signer.device_id(), LABEL, &msgs, sigs)
}

/// ℓ, the order of the prime-order subgroup, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s + ℓ`: the same scalar, encoded non-canonically (a malleated signature).
fn add_ell(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = s[i] as u16 + ELL[i] as u16 + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// Up to the relay's 1,024 envelopes an upload: from about 190 points
/// `curve25519-dalek` multiplies by another method (Pippenger's).
#[test]
fn good_signatures_pass_in_every_batch_size() {
    for n in [0, 1, 2, 3, 32, 64, 200, 1024] {
        let (signer, msgs, sigs) = signed(n);
        assert_eq!(check(&signer, &msgs, &sigs), Ok(()), "{n} signatures");
    }
}

#[test]
fn one_forged_signature_fails_the_batch_wherever_it_is() {
    let (signer, msgs, sigs) = signed(16);
    for i in 0..16 {
        let mut bad = sigs.clone();
        bad[i] = signer.sign(LABEL, b"something else");
        assert_eq!(
            check(&signer, &msgs, &bad),
            Err(CryptoError::BadSignature),
            "at {i}"
        );
        let mut flipped = sigs.clone();
        flipped[i].0[40] ^= 1;
        assert_eq!(
            check(&signer, &msgs, &flipped),
            Err(CryptoError::BadSignature),
            "s at {i}"
        );
        let mut changed = msgs.clone();
        changed[i].push(0);
        assert_eq!(
            check(&signer, &changed, &sigs),
            Err(CryptoError::BadSignature),
            "msg at {i}"
        );
    }
}

#[test]
fn one_forged_signature_fails_a_batch_of_the_largest_kind() {
    let (signer, msgs, mut sigs) = signed(1024);
    sigs[700] = signer.sign(LABEL, b"something else");
    assert_eq!(check(&signer, &msgs, &sigs), Err(CryptoError::BadSignature));
}

#[test]
fn another_label_another_key_or_swapped_signatures_fail() {
    let (signer, msgs, sigs) = signed(8);
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    assert!(verify_batch(&signer.device_id(), "casebook/v1/other", &refs, &sigs).is_err());
    let other = DeviceSigner::generate();
    assert!(verify_batch(&other.device_id(), LABEL, &refs, &sigs).is_err());
    let mut swapped = sigs.clone();
    swapped.swap(2, 5);
    assert!(check(&signer, &msgs, &swapped).is_err());
    assert!(check(&signer, &msgs[..7], &sigs).is_err(), "lengths differ");
}

/// Two forgeries whose errors would cancel in an unweighted sum: the
/// weights are what refuses them.
#[test]
fn forgeries_made_to_cancel_out_fail() {
    let (signer, msgs, mut sigs) = signed(4);
    let delta = Scalar::from(12345u64);
    let s0 = Scalar::from_canonical_bytes(sigs[0].0[32..].try_into().unwrap()).unwrap();
    let s1 = Scalar::from_canonical_bytes(sigs[1].0[32..].try_into().unwrap()).unwrap();
    sigs[0].0[32..].copy_from_slice((s0 + delta).as_bytes());
    sigs[1].0[32..].copy_from_slice((s1 - delta).as_bytes());
    assert_eq!(check(&signer, &msgs, &sigs), Err(CryptoError::BadSignature));
}

#[test]
fn a_malleated_s_fails_as_it_does_strictly() {
    let (signer, msgs, sigs) = signed(4);
    let mut malleated = sigs.clone();
    let s = add_ell(&sigs[1].0[32..]);
    malleated[1].0[32..].copy_from_slice(&s);
    assert!(verify(&signer.device_id(), LABEL, &msgs[1], &malleated[1]).is_err());
    assert_eq!(
        check(&signer, &msgs, &malleated),
        Err(CryptoError::BadSignature)
    );
}

/// The key's holder can sign with `R` of order 2 so that the unweighted
/// error is that point, which an even weight cancels: half of all checks
/// would pass without the small-order test. Every one must fail.
#[test]
fn a_small_order_r_from_the_key_holder_fails_every_time() {
    let signer = DeviceSigner::generate();
    let expanded = Sha512::digest(&signer.seed()[..]);
    let mut a = [0u8; 32];
    a.copy_from_slice(&expanded[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    // The secret scalar is the key's, or this test would fail for another
    // reason and prove nothing.
    assert_eq!(
        EdwardsPoint::mul_base(&a).compress().0,
        signer.device_id().0
    );
    // (0, -1): y = p - 1, of order 2.
    let mut r = [0xffu8; 32];
    r[0] = 0xec;
    r[31] = 0x7f;
    let msg = b"m".to_vec();
    let mut h = Sha512::new();
    h.update(r);
    h.update(signer.device_id().0);
    h.update((LABEL.len() as u32).to_be_bytes());
    h.update(LABEL.as_bytes());
    h.update(&msg);
    let h: [u8; 64] = h.finalize().into();
    let s = Scalar::from_bytes_mod_order_wide(&h) * a;
    let mut sig = Sig([0u8; 64]);
    sig.0[..32].copy_from_slice(&r);
    sig.0[32..].copy_from_slice(s.as_bytes());
    assert!(verify(&signer.device_id(), LABEL, &msg, &sig).is_err());
    for _ in 0..32 {
        assert_eq!(
            check(
                &signer,
                std::slice::from_ref(&msg),
                std::slice::from_ref(&sig)
            ),
            Err(CryptoError::BadSignature)
        );
    }
}

#[test]
fn a_weak_key_is_refused() {
    // The identity point: a key every signature would verify under.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let (_, msgs, sigs) = signed(2);
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    assert_eq!(
        verify_batch(&DeviceId(weak), LABEL, &refs, &sigs),
        Err(CryptoError::BadPublicKey)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over random batches with random damage (no key's holder crafting
    /// small-order errors), the batch passes exactly when every signature
    /// passes the strict single check.
    #[test]
    fn the_batch_passes_exactly_when_each_passes_alone(
        n in 1usize..24,
        damage in proptest::collection::vec((0usize..24, 0usize..64, 1u8..=255, any::<bool>()), 0..3),
    ) {
        let (signer, mut msgs, mut sigs) = signed(n);
        for (i, byte, bit, in_sig) in damage {
            let i = i % n;
            if in_sig {
                sigs[i].0[byte] ^= bit;
            } else {
                msgs[i].push(bit);
            }
        }
        let each = msgs
            .iter()
            .zip(&sigs)
            .all(|(m, s)| verify(&signer.device_id(), LABEL, m, s).is_ok());
        prop_assert_eq!(check(&signer, &msgs, &sigs).is_ok(), each);
    }
}
