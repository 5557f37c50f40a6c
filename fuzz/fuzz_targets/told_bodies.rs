//! What a device's audit envelopes and a shared case's signals carry
//! (audit entries, claims, wants), decoded from a body another device, or
//! another member, sealed with anything in it: no panic, and a signal that
//! decodes encodes back to what decodes to the same.
#![no_main]

use casebook::audit_sync::AuditBody;
use casebook::sync::SignalBody;
use casebook_shared::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = AuditBody::decode(data) {
        let _ = codec::encode(&body);
    }
    if let Ok(signal) = codec::decode::<SignalBody>(data) {
        let again = codec::encode(&signal);
        assert_eq!(codec::decode::<SignalBody>(&again).ok(), Some(signal));
    }
});
