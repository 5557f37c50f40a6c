//! What a device does with the opened body of a fetched envelope, which a
//! member device may have filled with anything: as a batch of changes
//! (who wrote it, whether it is held, applied to a case, what it waits
//! for), and as a snapshot body (decoded, loaded, merged, and compared
//! with the case for changes of this device's own it lacks).
//!
//! Automerge's decoder panics on some malformed input (found here: a
//! 33-byte change chunk, in `hexane`'s RLE decoder); the client catches
//! that where it decodes and answers an error. So a panic caught inside
//! the client is no finding here, and one that escapes it is: the hook
//! libFuzzer installs (abort on any panic) is replaced by one that stays
//! quiet, and the body aborts on a panic that reaches it.
#![no_main]

use casebook::docs::SnapshotBody;
use casebook::notes::{CaseDoc, written_by};
use casebook_shared::codec;
use casebook_shared::ids::DocId;
use libfuzzer_sys::fuzz_target;

const DEVICE: [u8; 32] = [7; 32];

thread_local! {
    static CASE: CaseDoc = {
        let actor = [&DEVICE[..], b"-fuzz"].concat();
        CaseDoc::new("Jordan Avery", "2026-11-20", DocId([2; 16]), &actor).expect("a new case")
    };
}

/// A new case, as a device that made it holds it.
fn case() -> CaseDoc {
    CASE.with(CaseDoc::copy)
}

fuzz_target!(
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        if std::panic::catch_unwind(|| run(data)).is_err() {
            std::process::abort();
        }
    }
);

fn run(data: &[u8]) {
    let _ = written_by(data, &DEVICE);
    let mut held = case();
    let _ = held.holds(data);
    let _ = held.own_changes_not_in(Some(data), &DEVICE, data);
    if let Ok((mut applied, _)) = held.apply_or_drop(data) {
        let _ = applied.missing_deps();
        let _ = applied.save();
    }
    if let Ok(snap) = codec::decode::<SnapshotBody>(data) {
        let _ = serde_json::from_slice::<serde_json::Value>(&snap.summary);
        let _ = CaseDoc::load(&snap.doc, b"fuzz");
        if let Ok((mut merged, _)) = case().apply_or_drop(&snap.doc) {
            let _ = merged.missing_deps();
        }
    }
}
