//! codec::decode::<Vec<Signed>>, then DocState::verify_log with no account known.
#![no_main]

use casebook_shared::access::DocState;
use casebook_shared::codec;
use casebook_shared::signed::Signed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = codec::decode::<Vec<Signed>>(data) else {
        return;
    };
    // No account log is known, so nothing may verify.
    assert!(DocState::verify_log(&entries, |_| None).is_err());
});
