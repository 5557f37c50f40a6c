//! The simulation, as CI runs it: a few hundred seeds of a small practice
//! under a hostile network, each checked once the network heals.
//!
//! `SIM_SEED=N` replays one seed; `SIM_SEEDS=N` changes how many run;
//! `cargo run --release -p casebook-tests --bin simulate` runs 10,000.

use casebook_tests::sim;

/// Steps per seed: enough for shares, role changes, a late pairing, a
/// revocation and a recovery to meet edits and faults.
const STEPS: usize = 80;

#[test]
fn seeds_hold_every_invariant() {
    let (first, count) = match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => (seed, 1),
        None => (
            0xcafe_0000u64,
            std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200),
        ),
    };
    let mut failures = Vec::new();
    for seed in first..first + count {
        if let Err(f) = sim::run(seed, STEPS) {
            eprintln!("{f}");
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed: {failures:?}",
        failures.len()
    );
}

/// Seeds of the 10,000-seed run that once failed, kept as regressions:
/// each stopped a newly paired device between storing its account log (a
/// revocation's new account key) and the keys it reaches, after which it
/// could open no rotated case again. 3,405,645,540 later caught a second
/// bug: an edit sealed when it was made, under an epoch number that a
/// rebase of the device's own access entries then gave a new key, was
/// sent as it was and opened by no other device.
const FOUND: [u64; 11] = [
    3_405_644_440,
    3_405_645_479,
    3_405_645_540,
    3_405_648_646,
    3_405_648_855,
    3_405_650_516,
    3_405_650_629,
    3_405_651_036,
    3_405_652_292,
    3_405_653_164,
    3_405_653_697,
];

/// Runs each of `seeds`, with or without the later choices (`extra`),
/// and fails naming those that fail again.
fn hold(seeds: &[u64], extra: bool) {
    let failed: Vec<u64> = seeds
        .iter()
        .copied()
        .filter(|&seed| match sim::run_with(seed, STEPS, extra) {
            Ok(_) => false,
            Err(f) => {
                eprintln!("{f}");
                true
            }
        })
        .collect();
    assert!(failed.is_empty(), "failed again: {failed:?}");
}

#[test]
fn seeds_that_once_failed_hold() {
    hold(&FOUND, false);
}

/// Seeds found with the power cuts and watchers on (`sim::run`), kept as
/// regressions. Both fail when a device skips its own echo unopened: the
/// power failed as a round made an edit durable after its early upload
/// had reached the relay (`Setup::sends_at_once`), and the device never
/// took the edit back (in 910,033 a colleague's comment built on it then
/// waited on the laptop for good).
const FOUND_WITH_POWER_CUTS: [u64; 2] = [910_026, 910_033];

#[test]
fn seeds_found_with_power_cuts_hold() {
    hold(&FOUND_WITH_POWER_CUTS, true);
}

/// Seeds found with the relay restored from an older copy (`sim::run`),
/// kept as regressions. In 3,405,644,914 a colleague's edit that only the
/// owner's phone fetched before the restore, built on by nothing, was gone
/// from the laptop for good: the phone, served a snapshot that covered
/// past the edit and lacked it, now sends it on the colleague's behalf.
/// In 3,405,644,827 a comment of the rogue colleague's (who sends nothing
/// again) that only the owner's phone fetched before the restore, where no
/// such snapshot came: the phone, sending back log entries the restore
/// lost, fetches every case whole and sends the comment back.
const FOUND_WITH_RESTORES: [u64; 2] = [3_405_644_914, 3_405_644_827];

#[test]
fn seeds_found_with_restores_hold() {
    hold(&FOUND_WITH_RESTORES, true);
}

/// Seeds in which the owner disposes of cases now and then, among the
/// relay's restores from older copies, its lies and its disk's damage
/// (`sim::run_disposing`): at the end no device holds a case disposed of.
/// Apart from the seeds above, so that those replay as they were found.
/// 3,512,401,975 once failed: the laptop disposed of a case whose
/// disposal had not gone out when the relay was restored from a copy older
/// than the case, and then refused every listing, which lacked an owned
/// case; now it gives the disposal back alone.
#[test]
fn seeds_with_disposals_hold() {
    let first = 0xd15b_0000u64;
    let count = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let failed: Vec<u64> = (first..first + count)
        .chain([3_512_401_975])
        .filter(|&seed| match sim::run_disposing(seed, STEPS) {
            Ok(_) => false,
            Err(f) => {
                eprintln!("{f}");
                true
            }
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {count} failed: {failed:?}",
        failed.len()
    );
}
