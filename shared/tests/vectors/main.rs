//! Checked-in test vectors for the protocol crate.
//!
//! HPKE is randomized, so the account entries and the key envelope are
//! *verification* vectors: fixed device seeds and secrets, and the exact bytes
//! one run of the generator produced. The tests check that today's code still
//! decodes, verifies and opens those bytes to the expected values. The change
//! envelope, signatures and the pinned values below are deterministic, so the
//! tests also recompute them and compare byte for byte.
//!
//! The vectors live in `tests/vectors.txt`: `name = value` lines, where a value
//! is hex (continued on indented lines), a decimal number, or a "quoted string".
//!
//! To regenerate (only after a deliberate format change; every HPKE-bearing
//! vector and the pinned account id will change):
//!
//! ```text
//! CASEBOOK_WRITE_VECTORS=1 cargo test -p casebook-shared --test vectors -- --ignored generate
//! ```
//!
//! Without the variable the generator prints the file instead of writing it.
//! It keeps the HPKE-bearing vectors of the existing file while they still
//! verify, so a change to a deterministic value (a frame, a pin) rewrites only
//! what changed. `CASEBOOK_FRESH_VECTORS=1` makes new ones; then update
//! [`ACCOUNT_ID`] to the `account.id` it printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use casebook_shared::access::{self, KeyEnvelope};
use casebook_shared::account::{
    self, AccountEntry, AccountOp, AccountState, DeviceInfo, DeviceKind,
};
use casebook_shared::codec;
use casebook_shared::crypto::{self, DeviceSigner, DhSecret, SecretKey, Sig};
use casebook_shared::envelope::{self, Envelope, Header, Kind};
use casebook_shared::frames::{self, Request};
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId, Hash};
use casebook_shared::signed::Signed;

mod checks;
mod file;
mod fixtures;
mod generate;

use checks::*;
use file::*;
use fixtures::*;

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn file_parses_and_pins_the_account_id() {
    let v = Vectors::load();
    assert_eq!(v.raw("account.id"), ACCOUNT_ID);
    // Every hex vector is hex.
    for (name, value) in &v.values {
        if !value.starts_with('"') && value.parse::<u64>().is_err() {
            hex::decode(value).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn account_log_verifies() {
    check_account(&Vectors::load(), Some(ACCOUNT_ID));
}

#[test]
fn vouch_is_pinned_and_verifies() {
    check_vouch(&Vectors::load());
}

#[test]
fn key_envelope_unwraps() {
    check_key_envelope(&Vectors::load());
}

#[test]
fn envelopes_verify_and_open() {
    check_envelopes(&Vectors::load());
}

#[test]
fn deterministic_pins() {
    check_pins(&Vectors::load());
}

#[test]
fn frame_snapshot_matches_the_frames_unit_test() {
    // frames.rs pins this one too; both must agree.
    assert_eq!(Vectors::load().raw("frame.list_docs"), "0000000307ac02");
}

/// Every single-bit flip at every byte position, for each vector.
fn flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len()).flat_map(move |i| {
        [0x01u8, 0x80].into_iter().map(move |bit| {
            let mut b = bytes.to_vec();
            b[i] ^= bit;
            (i, b)
        })
    })
}

#[test]
fn flipped_account_entries_fail() {
    let v = Vectors::load();
    let genesis = v.hex("account.genesis");
    let add = v.hex("account.add_device");
    let good = account_log(&v);
    for (i, b) in flips(&genesis) {
        let ok = codec::decode::<Signed>(&b)
            .map_err(|e| e.to_string())
            .and_then(|s| AccountState::verify_log(&[s]).map_err(|e| e.to_string()));
        assert!(ok.is_err(), "genesis: flip at byte {i} went unnoticed");
    }
    for (i, b) in flips(&add) {
        let ok = codec::decode::<Signed>(&b)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                AccountState::verify_log(&[good[0].clone(), s]).map_err(|e| e.to_string())
            });
        assert!(ok.is_err(), "add_device: flip at byte {i} went unnoticed");
    }
    for (i, b) in flips(&v.hex("account.vouch")) {
        let ok = codec::decode::<Signed>(&b)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                let log = [good[0].clone(), good[1].clone(), s];
                AccountState::verify_log(&log).map_err(|e| e.to_string())
            });
        assert!(ok.is_err(), "vouch: flip at byte {i} went unnoticed");
    }
}

#[test]
fn flipped_key_envelope_fails() {
    let v = Vectors::load();
    let bytes = v.hex("access.key_envelope");
    for (i, b) in flips(&bytes) {
        assert!(
            unwrap_key_envelope(&v, &b).is_err(),
            "key envelope: flip at byte {i} went unnoticed"
        );
    }
}

#[test]
fn flipped_envelopes_fail() {
    let v = Vectors::load();
    for name in ["envelope.change", "envelope.snapshot"] {
        let bytes = v.hex(name);
        for (i, b) in flips(&bytes) {
            assert!(
                open_envelope(&b).is_err(),
                "{name}: flip at byte {i} went unnoticed"
            );
            // The signature alone catches it, even without the key.
            let verified = Envelope::decode(b).and_then(|e| e.verify());
            assert!(verified.is_err(), "{name}: flip at byte {i} verified");
        }
    }
}

#[test]
fn a_signature_by_another_device_fails() {
    let v = Vectors::load();
    let (b, _) = device_b();
    let mut log = account_log(&v);
    // Device B re-signs the genesis body: the signer no longer matches the
    // genesis device, and with only the signer swapped the signature fails.
    let mut forged = log[0].clone();
    forged.sig = b.sign(account::SIG_LABEL, &forged.body);
    assert!(AccountState::verify_log(&[forged.clone()]).is_err());
    forged.signer = b.device_id();
    assert!(AccountState::verify_log(&[forged]).is_err());
    // An envelope claimed by device B but signed by A.
    let mut env = v.hex("envelope.change");
    env[54..86].copy_from_slice(&b.device_id().0);
    assert!(Envelope::decode(env).unwrap().verify().is_err());
    // Device B is active, but the add entry says A signed it.
    log[1].signer = b.device_id();
    assert!(AccountState::verify_log(&log).is_err());
}

#[test]
fn device_ids_are_not_swappable() {
    // The DeviceId is the Ed25519 public key of the seed: pinned by the file.
    let v = Vectors::load();
    assert_eq!(
        DeviceId(v.arr("device_a.id")),
        DeviceSigner::from_seed(&v.arr("device_a.seed")).device_id()
    );
    assert_eq!(
        DeviceId(v.arr("device_b.id")),
        DeviceSigner::from_seed(&v.arr("device_b.seed")).device_id()
    );
    assert_eq!(
        v.arr::<32>("device_a.dh_public"),
        DhSecret::from_bytes(v.arr("device_a.dh_secret")).public()
    );
}
