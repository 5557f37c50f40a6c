//! Envelope::decode, then verify and open with a fixed document key.
#![no_main]

use casebook_shared::crypto::SecretKey;
use casebook_shared::envelope::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data.to_vec()) else {
        return;
    };
    // The envelope keeps the exact bytes it came in.
    assert_eq!(env.as_bytes(), data);
    let _ = env.verify();
    // Opening must be safe even on an unverified envelope.
    let _ = env.open(&SecretKey::from_bytes([3; 32]));
});
