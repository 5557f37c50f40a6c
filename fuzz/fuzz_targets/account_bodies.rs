//! Like `signed_account`, but the fuzzer supplies entry *bodies* that are then
//! signed by one of four fixed devices, so replay gets past the signature
//! check and exercises the chain rules. Input: a codec-encoded
//! `Vec<(u8, Vec<u8>)>` of (signer index, body). Devices 0 and 1 are devices
//! A and B of `shared/tests/vectors.txt`, so the bodies of its account log
//! make a valid seed (signer indexes 128, 128, kept as fed). Otherwise a
//! body that decodes as an entry has its sequence number and previous
//! hash set to continue the chain before it is signed (and a genesis
//! names its signer), so the fuzzer reaches every operation's rules
//! (adding, revoking, vouching) without finding a hash.
#![no_main]

use casebook_shared::account::{self, AccountEntry, AccountOp, AccountState};
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
    let mut entries: Vec<Signed> = Vec::with_capacity(bodies.len());
    for (who, mut body) in bodies {
        let signer = device(who);
        // The signer index's top bit keeps a body as fed (so the chain
        // link itself, and bodies encoded other than the codec would, are
        // fuzzed too).
        let as_fed = who & 0x80 != 0;
        if let Some(mut entry) = (!as_fed)
            .then(|| codec::decode::<AccountEntry>(&body).ok())
            .flatten()
        {
            entry.seq = entries.len() as u64;
            entry.prev = entries.last().map(|e| e.hash(account::HASH_LABEL));
            if let AccountOp::Genesis { device, .. } = &mut entry.op {
                device.id = signer.device_id();
            }
            body = codec::encode(&entry);
        }
        let sig = signer.sign(account::SIG_LABEL, &body);
        entries.push(Signed {
            body,
            signer: signer.device_id(),
            sig,
        });
    }
    if let Ok(state) = AccountState::verify_log(&entries) {
        assert_eq!(state.len, entries.len() as u64);
        assert!(state.active().count() >= 1);
        assert!(state.vouched.values().all(|d| state.devices.contains_key(d)));
        for i in 0..4u8 {
            let dh = DhSecret::from_bytes([DH[usize::from(i)]; 32]);
            let _ = account::account_keys(&entries, &state.id, &device(i).device_id(), &dh);
        }
    }
});
