//! codec::decode::<Vec<Signed>>, then AccountState::verify_log.
#![no_main]

use casebook_shared::account::{self, AccountState};
use casebook_shared::codec;
use casebook_shared::crypto::DhSecret;
use casebook_shared::signed::Signed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = codec::decode::<Vec<Signed>>(data) else {
        return;
    };
    if let Ok(state) = AccountState::verify_log(&entries) {
        let first = &entries[0].signer;
        let _ = account::account_keys(&entries, &state.id, first, &DhSecret::from_bytes([2; 32]));
    }
});
