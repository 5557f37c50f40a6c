//! A relay restored from a copy older than a revocation, whose account
//! log was written to again before the device that revoked synced: the
//! revocation is made again on top of what the relay holds, to the same
//! account key, so nobody is locked out and the revoked device stays cut
//! off.

use casebook::Home;
use casebook_shared::account::{self, AccountEntry, AccountOp};
use casebook_shared::ids::DocId;
use casebook_tests::*;

/// Dr. Rivera's laptop, phone and desk computer, a case Dr. Chen reads,
/// and a note the laptop wrote after revoking the phone. The copy is from
/// before the revocation; the desk has not synced since it.
struct RevokedAfterTheCopy {
    copy: tempfile::TempDir,
    dir: tempfile::TempDir,
    laptop: Home,
    phone: Home,
    desk: Home,
    chen: Home,
    case: DocId,
    /// Dr. Chen's case, which she shares with Dr. Rivera.
    hers: DocId,
}

async fn revoked_after_the_copy() -> (TestRelay, RevokedAfterTheCopy) {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    laptop
        .add_note(&case, free_note("before the revocation"))
        .unwrap();
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    for home in [&mut phone, &mut desk, &mut chen] {
        sync(home).await;
    }
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    let hers = case_with_a_plan(&mut chen, "her client");
    befriend(&mut chen, "Dr. Rivera", &laptop.account_id());
    share_case(&mut chen, &hers, "Dr. Rivera", "read", true).await;
    sync(&mut chen).await;
    sync(&mut desk).await;
    assert_eq!(plan_of(&mut desk, &hers), "her client");
    let (relay, copy) = relay.copy().await;

    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    laptop
        .add_note(&case, free_note("after the revocation"))
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut chen).await;
    // The plan, and the two notes.
    assert_eq!(notes_of(&mut chen, &case).len(), 3);
    let t = RevokedAfterTheCopy {
        copy,
        dir,
        laptop,
        phone,
        desk,
        chen,
        case,
        hers,
    };
    (relay, t)
}

/// `home`'s sync is refused: it is revoked.
async fn assert_revoked(home: &mut Home) {
    let refused = try_sync(home).await.unwrap_err();
    assert!(
        matches!(refused, casebook::Error::Revoked),
        "{}: {refused}",
        home.name()
    );
}

/// Whether the trail of `home` says a turn was taken, with `done`.
fn trail_says(home: &Home, done: &str) -> bool {
    home.trail()
        .entries()
        .unwrap()
        .iter()
        .any(|r| r.what.contains("took another turn") && r.what.contains(done))
}

/// The desk, which never saw the revocation, pairs a watch on the restored
/// relay. Dr. Chen's device, holding the laptop's log, refuses the relay's
/// until the laptop has joined it; the laptop makes its revocation again
/// on top, to the same key, so the note it sealed after the revocation
/// reaches the desk, the watch and Dr. Chen, and the phone stays cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_the_restored_relay_lost_is_made_again_on_what_it_holds() {
    let (relay, mut t) = revoked_after_the_copy().await;
    let relay = relay.restore(t.copy.path()).await;
    let mut watch = pair(&mut t.desk, &t.dir.path().join("watch"), &relay).await;
    sync(&mut watch).await;

    let r = try_sync(&mut t.chen).await.expect("the rest of her round");
    let [refused] = &r.logs_refused[..] else {
        panic!("{r:?}")
    };
    assert!(
        refused.reason.contains("lacks devices or revocations"),
        "{refused:?}"
    );

    let joined = sync(&mut t.laptop).await;
    assert_clean(&joined);
    assert_eq!(
        joined.logs_turned,
        vec![t.laptop.account_id()],
        "{joined:?}"
    );
    assert!(trail_says(
        &t.laptop,
        "1 revocation(s) it lacked made again"
    ));
    assert_revoked(&mut t.phone).await;

    let both = notes_of(&mut t.laptop, &t.case);
    assert_eq!(both.len(), 3, "{both:?}");
    for home in [&mut t.desk, &mut watch, &mut t.chen] {
        assert_clean(&sync(home).await);
        assert_clean(&sync(home).await);
        assert_eq!(notes_of(home, &t.case), both, "{}", home.name());
    }
    let state = t.laptop.account_state().unwrap();
    assert!(!state.is_active(&t.phone.device_id()));
    for home in [&t.desk, &watch] {
        assert_eq!(home.account_state().unwrap(), state, "{}", home.name());
    }
    // A note the watch writes now reaches the laptop.
    watch
        .add_note(&t.case, free_note("from the watch"))
        .unwrap();
    sync(&mut watch).await;
    sync(&mut t.laptop).await;
    assert_eq!(notes_of(&mut t.laptop, &t.case).len(), 4);
    relay.stop().await;
}

/// The phone, revoked on the laptop after the copy, is a device again on
/// the restored relay, and pairs a watch there. The laptop makes the
/// revocation again and revokes the watch too; neither syncs from then on,
/// and the desk goes on with every note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_revoked_one_paired_on_the_restored_relay_is_revoked_too() {
    let (relay, mut t) = revoked_after_the_copy().await;
    let relay = relay.restore(t.copy.path()).await;
    let mut watch = pair(&mut t.phone, &t.dir.path().join("watch"), &relay).await;
    sync(&mut watch).await;
    let k1 = t.laptop.account_state().unwrap().key;

    let joined = sync(&mut t.laptop).await;
    assert_clean(&joined);
    assert_eq!(
        joined.logs_turned,
        vec![t.laptop.account_id()],
        "{joined:?}"
    );
    // The watch was active when the phone's revocation was made again: it
    // must not be wrapped the key the phone's revocation made here, which
    // what the laptop sealed since is sealed to.
    for e in t.laptop.account_log().unwrap() {
        let entry: AccountEntry = e.open(account::SIG_LABEL).unwrap();
        if let AccountOp::RevokeDevice { key, wraps, .. } = entry.op {
            assert!(
                key.public != k1.public || !wraps.iter().any(|(d, _)| *d == watch.device_id()),
                "the watch holds the key the revocation made"
            );
        }
    }
    let state = t.laptop.account_state().unwrap();
    for gone in [&mut t.phone, &mut watch] {
        assert!(!state.is_active(&gone.device_id()), "{}", gone.name());
        assert_revoked(gone).await;
    }
    assert!(trail_says(
        &t.laptop,
        "1 device(s) a revoked device added there revoked"
    ));
    t.laptop
        .add_note(&t.case, free_note("after the turn"))
        .unwrap();
    sync(&mut t.laptop).await;
    for home in [&mut t.desk, &mut t.chen] {
        assert_clean(&sync(home).await);
        assert_eq!(notes_of(home, &t.case).len(), 4, "{}", home.name());
    }
    assert_eq!(t.desk.account_state().unwrap(), state);
    relay.stop().await;
}

/// The desk, never told of the revocation, revokes the phone again on the
/// restored relay, to a key of its own, and moves the case to a key sealed
/// to it. The laptop takes the relay's log, leaving its own key of that
/// generation behind, moves its cases to keys sealed to the relay's, and
/// sends its note again: the desk and Dr. Chen read every note, and the
/// phone stays cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_again_to_another_key_joins_the_two_histories() {
    let (relay, mut t) = revoked_after_the_copy().await;
    // A case opened after the revocation: its key sealed to the laptop's
    // key of the generation the desk makes another of.
    let later = case_with_a_plan(&mut t.laptop, "sleep diary");
    sync(&mut t.laptop).await;
    let relay = relay.restore(t.copy.path()).await;
    let conn = t.desk.connect().await.unwrap();
    t.desk.revoke(&conn, &t.phone.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut t.desk).await;
    // Dr. Chen first: she sends back the access entry of her case the
    // relay lost (one only her devices can), and takes the relay's log of
    // Dr. Rivera's account, which revokes no device hers does not.
    let took = sync(&mut t.chen).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(&t.chen, "1 case(s) moved to a new key"));

    let joined = sync(&mut t.laptop).await;
    assert_eq!(
        joined.logs_turned,
        vec![t.laptop.account_id()],
        "{joined:?}"
    );
    assert!(trail_says(
        &t.laptop,
        "the account keys of the history held here are left behind"
    ));
    assert_revoked(&mut t.phone).await;
    sync(&mut t.laptop).await;
    assert_clean(&sync(&mut t.laptop).await);
    let all = notes_of(&mut t.laptop, &t.case);
    assert_eq!(all.len(), 3, "{all:?}");
    for home in [&mut t.desk, &mut t.chen] {
        assert_clean(&sync(home).await);
        assert_eq!(notes_of(home, &t.case), all, "{}", home.name());
    }
    assert_eq!(plan_of(&mut t.desk, &later), "sleep diary");
    // Dr. Chen's case, sealed to the key the laptop made and left behind,
    // moved to one sealed to the relay's: the desk reads it, changed since.
    set_plan(&mut t.chen, &t.hers, "her client, weekly");
    sync(&mut t.chen).await;
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &t.hers), "her client, weekly");
    assert_eq!(
        t.desk.account_state().unwrap(),
        t.laptop.account_state().unwrap()
    );
    relay.stop().await;
}

/// The phone, a device again on the restored relay, takes the log with the
/// watch the desk paired and shares the case with Dr. Osei there before the
/// laptop syncs. The laptop's revocation, made again, holds from where it
/// held: the share does not verify, and nothing the laptop wrote after the
/// revocation, or writes now, reaches Dr. Osei.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_revoked_device_signed_on_the_restored_relay_does_not_verify() {
    let (relay, mut t) = revoked_after_the_copy().await;
    let relay = relay.restore(t.copy.path()).await;
    let mut osei = init(&t.dir.path().join("osei"), &relay, "Dr. Osei");
    sync(&mut osei).await;
    let _watch = pair(&mut t.desk, &t.dir.path().join("watch"), &relay).await;
    sync(&mut t.phone).await;
    befriend(&mut t.phone, "Dr. Osei", &osei.account_id());
    share_case(&mut t.phone, &t.case, "Dr. Osei", "read", true).await;

    let joined = try_sync(&mut t.laptop).await.expect("the laptop syncs");
    assert_eq!(
        joined.logs_turned,
        vec![t.laptop.account_id()],
        "{joined:?}"
    );
    t.laptop
        .add_note(&t.case, free_note("after the share"))
        .unwrap();
    for _ in 0..2 {
        try_sync(&mut t.laptop).await.expect("the laptop syncs");
        let _ = try_sync(&mut osei).await;
    }
    let seen = match osei.list_notes(&t.case) {
        Ok(_) => notes_of(&mut osei, &t.case),
        Err(_) => Vec::new(),
    };
    assert!(
        !seen.iter().any(|n| n.contains("after")),
        "Dr. Osei reads what was written after the revocation: {seen:?}"
    );
    relay.stop().await;
}
