//! Edits sent as soon as they are saved (`Setup::sends_at_once`, as the
//! web page and a watching service send them): their commit does not wait
//! for the disk, the sync that sends them makes them durable while the
//! upload travels, and a power cut in that instant loses nothing the relay
//! stored: the device takes its own change back.

use casebook::Home;
use casebook::home::{DB_FILE, Setup};
use casebook::store::{CrashPoint, KdfParams};
use casebook_tests::sim::net::{FINGERPRINT, SimRelay};
use casebook_tests::sim::{RATES, rng::Rng};
use casebook_tests::*;
use std::path::Path;
use std::sync::Arc;

/// A relay in this process, and a home setup with a crash point on it.
fn in_process(dir: &Path, sends_at_once: bool) -> (Arc<SimRelay>, Setup, CrashPoint) {
    let relay = Arc::new(SimRelay::new(
        dir,
        Rng::new(1),
        RATES,
        casebook_shared::clock::Clock::system(),
    ));
    let crash = CrashPoint::default();
    let setup = Setup {
        kdf: KdfParams::FOR_SIMULATION,
        local: Some(relay.clone()),
        crash: Some(crash.clone()),
        sends_at_once,
        ..Setup::default()
    };
    (relay, setup, crash)
}

/// Rivera's laptop with a synced case, its round fresh enough to send an
/// edit before catching up.
async fn laptop(dir: &Path, setup: &Setup) -> (Home, casebook_shared::ids::DocId) {
    let (mut home, _) = Home::init_with(
        &dir.join("laptop"),
        PASSPHRASE,
        "Dr. Rivera",
        "in-process",
        FINGERPRINT,
        setup,
    )
    .expect("a home");
    let case = case_with_a_plan(&mut home, "walk daily");
    sync(&mut home).await;
    (home, case)
}

/// Envelopes of `doc` the in-process relay stores.
fn stored_at_relay(dir: &Path, doc: &casebook_shared::ids::DocId) -> i64 {
    let db = rusqlite::Connection::open(dir.join("relay.db")).expect("relay.db");
    db.query_row(
        "SELECT count(*) FROM envelopes WHERE doc = ?1",
        [&doc.0[..]],
        |r| r.get(0),
    )
    .expect("a count")
}

/// The machine loses power: the store goes back to its last commit that
/// waited for the disk, and the home opens again.
fn power_cut(home: Home, dir: &Path, setup: &Setup, crash: &CrashPoint) -> Home {
    drop(home);
    let home_dir = dir.join("laptop");
    assert!(
        crash
            .power_cut(&home_dir.join(DB_FILE))
            .expect("files put back")
    );
    Home::open_with(&home_dir, PASSPHRASE, setup).expect("it opens again")
}

#[tokio::test(flavor = "current_thread")]
async fn an_edit_lost_to_a_power_cut_after_the_relay_stored_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, setup, crash) = in_process(dir.path(), true);
    let (mut home, case) = laptop(dir.path(), &setup).await;

    set_plan(&mut home, &case, "walk daily and keep a sleep diary");
    // The upload reaches the relay (in this process, it is stored before
    // the send returns); the power fails as the commit that makes the edit
    // durable waits for the disk.
    let before = stored_at_relay(dir.path(), &case);
    crash.arm(0);
    assert!(try_sync(&mut home).await.is_err(), "the write was stopped");
    assert!(crash.disarm(), "the durable commit was the one stopped");
    assert_eq!(
        stored_at_relay(dir.path(), &case),
        before + 1,
        "the relay stored the edit"
    );
    let mut home = power_cut(home, dir.path(), &setup, &crash);
    assert_eq!(
        plan_of(&mut home, &case),
        "walk daily",
        "the edit was not yet durable here"
    );
    assert_eq!(home.pending().unwrap(), 0, "nor its queued envelope");

    let r = sync(&mut home).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert_eq!(
        plan_of(&mut home, &case),
        "walk daily and keep a sleep diary",
        "its own change, taken back from the relay"
    );
    let trail = home.trail().entries().unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.case == Some(case) && e.what.contains("came back from the relay")),
        "recorded: {:?}",
        trail.iter().map(|e| &e.what).collect::<Vec<_>>()
    );
    // Its echo, held now, is skipped: nothing more comes back.
    let again = sync(&mut home).await;
    assert_eq!(again.received, 0, "{again:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_edit_survives_a_power_cut_once_its_sync_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, setup, crash) = in_process(dir.path(), true);
    let (mut home, case) = laptop(dir.path(), &setup).await;
    set_plan(&mut home, &case, "walk after lunch");
    let r = sync(&mut home).await;
    assert_eq!(r.pushed, 1, "{r:?}");
    let mut home = power_cut(home, dir.path(), &setup, &crash);
    assert_eq!(plan_of(&mut home, &case), "walk after lunch");
}

/// A command that saves and exits keeps its edit through a power cut
/// without syncing: only a front end that sends at once defers the wait.
#[tokio::test(flavor = "current_thread")]
async fn an_edit_saved_by_a_command_waits_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, setup, crash) = in_process(dir.path(), false);
    let (mut home, case) = laptop(dir.path(), &setup).await;
    set_plan(&mut home, &case, "walk after lunch");
    let mut home = power_cut(home, dir.path(), &setup, &crash);
    assert_eq!(plan_of(&mut home, &case), "walk after lunch");
}
