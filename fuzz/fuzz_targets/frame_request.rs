//! codec::unframe::<Request>; whatever decodes must round-trip as a value.
#![no_main]

use casebook_shared::codec;
use casebook_shared::frames::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = codec::unframe::<Request>(data) {
        let again = codec::frame(&req);
        assert_eq!(codec::unframe::<Request>(&again).as_ref(), Ok(&req));
    }
});
