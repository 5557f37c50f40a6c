//! Like `signed_account`, but the fuzzer supplies entry *bodies* that are then
//! signed by one of four fixed devices, so replay gets past the signature
//! check and exercises the chain rules. Input: a codec-encoded
//! `Vec<(u8, Vec<u8>)>` of (signer index, body). Devices 0 and 1 are devices
//! A and B of `shared/tests/vectors.txt`, so the bodies of its account log
//! make a valid seed (signer indexes 0, 0).
#![no_main]

use casebook_shared::account::{self, AccountState};
use casebook_shared::codec;
use casebook_shared::crypto::{DeviceSigner, DhSecret};
use casebook_shared::signed::Signed;
use libfuzzer_sys::fuzz_target;

const SEEDS: [u8; 4] = [1, 4, 10, 11];
const DH: [u8; 4] = [2, 5, 20, 21];

fn device(i: u8) -> DeviceSigner {
    DeviceSigner::from_seed(&[SEEDS[usize::from(i % 4)]; 32])
}

fuzz_target!(|data: &[u8]| {
    let Ok(bodies) = codec::decode::<Vec<(u8, Vec<u8>)>>(data) else {
        return;
    };
    let entries: Vec<Signed> = bodies
        .into_iter()
        .map(|(who, body)| {
            let signer = device(who);
            let sig = signer.sign(account::SIG_LABEL, &body);
            Signed {
                body,
                signer: signer.device_id(),
                sig,
            }
        })
        .collect();
    if let Ok(state) = AccountState::verify_log(&entries) {
        assert_eq!(state.len, entries.len() as u64);
        assert!(state.active().count() >= 1);
        for i in 0..4u8 {
            let dh = DhSecret::from_bytes([DH[usize::from(i)]; 32]);
            let _ = account::account_keys(&entries, &state.id, &device(i).device_id(), &dh);
        }
    }
});
