//! Bugs the simulation found, each kept as a test of its own.

use casebook::Home;
use casebook::home::Setup;
use casebook::notes::{NoteFormat, NoteInput};
use casebook::store::KdfParams;
use casebook_shared::access::Role;
use casebook_shared::frames::Request;
use casebook_tests::sim::net::{FINGERPRINT, SimRelay};
use casebook_tests::sim::{RATES, rng::Rng};
use casebook_tests::*;
use std::sync::Arc;

/// A new case's access-log genesis landed, but the answer was lost: the
/// next round found the relay's log starting with entries this device
/// still counted as unsent, and refused to sync ever again.
#[tokio::test(flavor = "current_thread")]
async fn a_lost_answer_to_a_new_cases_first_entries_does_not_wedge_sync() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Arc::new(SimRelay::new(
        dir.path(),
        Rng::new(1),
        RATES,
        casebook_shared::clock::Clock::system(),
    ));
    let setup = Setup {
        kdf: KdfParams::FOR_SIMULATION,
        local: Some(relay.clone()),
        ..Setup::default()
    };
    let (mut home, _) = Home::init_with(
        &dir.path().join("laptop"),
        PASSPHRASE,
        "Dr. Rivera",
        "in-process",
        FINGERPRINT,
        &setup,
    )
    .unwrap();
    try_sync(&mut home).await.unwrap();
    let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
    relay.faults().lose_answer_to = Some(|r| matches!(r, Request::AppendAccess { .. }));
    assert!(try_sync(&mut home).await.is_err(), "the answer was lost");
    let r = try_sync(&mut home).await.expect("the next round syncs");
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert_eq!(home.pending().unwrap(), 0, "everything landed once");
    assert_eq!(home.docs().cases().unwrap()[0].0, case);
}

fn note() -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![("plan".into(), "Sleep diary.".into())];
    n
}

/// The tablet shares a case with Dr. Chen; the laptop, not yet synced,
/// ends Dr. Okafor's share of it. Replaying the removal on top of the
/// tablet's entries moves the case to a new key sealed to Dr. Chen too,
/// whose account log the laptop had never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_removal_seals_to_a_member_another_device_added() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    let mut okafor = init(dirs[2].path(), &relay, "Dr. Okafor");
    sync(&mut chen).await;
    sync(&mut okafor).await;
    let (chen_id, okafor_id) = (chen.account_id(), okafor.account_id());
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop.add_note(&case, note()).unwrap();
    befriend(&mut laptop, "Dr. Okafor", &okafor_id);
    share_case(&mut laptop, &case, "Dr. Okafor", "read", true).await;
    let mut tablet = pair(&mut laptop, dirs[3].path(), &relay).await;
    sync(&mut tablet).await;
    befriend(&mut tablet, "Dr. Chen", &chen_id);
    share_case(&mut tablet, &case, "Dr. Chen", "comment", true).await;

    laptop.unshare(&case, "Dr. Okafor").unwrap();
    let r = try_sync(&mut laptop).await.expect("the replay syncs");
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut tablet).await;
    for home in [&mut laptop, &mut tablet] {
        let members: Vec<_> = home
            .shares(&case)
            .unwrap()
            .iter()
            .map(|s| s.member)
            .collect();
        assert_eq!(members, [chen_id], "Dr. Chen stays, Dr. Okafor is gone");
    }
    let r = sync(&mut chen).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert!(chen.docs().read_case(&case, |c| c.notes().len()).unwrap() == 1);
}

/// A colleague's device that was removed from a case learns it at its
/// next sync, though the relay serves a former member nothing of the case:
/// it no longer lists the case as shared, and keeps what it received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_colleagues_device_learns_the_share_ended() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut rivera = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    rivera.add_note(&case, note()).unwrap();
    let chen_id = chen.account_id();
    befriend(&mut rivera, "Dr. Chen", &chen_id);
    share_case(&mut rivera, &case, "Dr. Chen", "write", true).await;
    sync(&mut chen).await;
    assert_eq!(chen.shared_with_me().unwrap().len(), 1);

    rivera.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut rivera).await;
    sync(&mut chen).await;
    assert!(
        chen.shared_with_me().unwrap().is_empty(),
        "no longer shared"
    );
    let me = chen.account_id();
    let role = chen
        .access()
        .doc_meta(&case)
        .unwrap()
        .and_then(|m| m.role_of(&me, casebook_shared::clock::Clock::system().now()));
    assert_eq!(role, None::<Role>);
    assert!(
        chen.edit_note(&case, "", &[]).is_err(),
        "no edit is taken for a case no longer shared"
    );
    assert_eq!(
        chen.docs().read_case(&case, |c| c.notes().len()).unwrap(),
        1,
        "kept"
    );
    assert!(
        chen.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.what.starts_with("share ended") && a.case == Some(case))
    );
}
