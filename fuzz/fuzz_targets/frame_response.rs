//! codec::decode::<Response>; whatever decodes must round-trip as a value.
#![no_main]

use casebook_shared::codec;
use casebook_shared::frames::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = codec::decode::<Response>(data) {
        let again = codec::encode(&resp);
        assert_eq!(codec::decode::<Response>(&again).as_ref(), Ok(&resp));
    }
});
