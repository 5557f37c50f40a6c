//! A relay restored from a copy older than a revocation, whose account
//! log was written to again before the device that revoked synced. The
//! revocation cannot safely be made again on top of what the relay holds
//! (what the revoked device signed there meanwhile would stand): the
//! laptop refuses, naming why, and nothing it wrote after the revocation
//! reaches anyone the revoked device let in. A revocation the relay's own
//! turn made is taken.

use casebook::Home;
use casebook_shared::ids::DocId;
use casebook_tests::*;

/// Dr. Rivera's laptop, phone and desk computer, all synced, and a case.
async fn laptop_phone_desk() -> (TestRelay, tempfile::TempDir, [Home; 3], DocId) {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    for home in [&mut phone, &mut desk] {
        sync(home).await;
    }
    (relay, dir, [laptop, phone, desk], case)
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

/// The phone, revoked on the laptop after the copy, is a device again on
/// the restored relay; the desk, never told, pairs a watch there, and the
/// phone shares the case with Dr. Osei. The laptop refuses the relay's log,
/// naming why, and keeps its own; Dr. Osei never reads what the laptop
/// wrote after the revocation, nor what it writes now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_the_restored_relay_lost_is_not_made_again_under_what_the_device_signed() {
    let (relay, dir, [mut laptop, mut phone, mut desk], case) = laptop_phone_desk().await;
    let at = |name: &str| dir.path().join(name);
    laptop
        .add_note(&case, free_note("before the revocation"))
        .unwrap();
    sync(&mut laptop).await;
    let (relay, copy) = relay.copy().await;
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    laptop
        .add_note(&case, free_note("after the revocation"))
        .unwrap();
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    let mut osei = init(&at("osei"), &relay, "Dr. Osei");
    sync(&mut osei).await;
    let _watch = pair(&mut desk, &at("watch"), &relay).await;
    sync(&mut phone).await;
    befriend(&mut phone, "Dr. Osei", &osei.account_id());
    share_case(&mut phone, &case, "Dr. Osei", "read", true).await;

    laptop
        .add_note(&case, free_note("after the share"))
        .unwrap();
    for _ in 0..2 {
        let refused = try_sync(&mut laptop).await.unwrap_err().to_string();
        assert!(
            refused.contains("took another turn") && refused.contains("revokes a device"),
            "{refused}"
        );
        let _ = try_sync(&mut osei).await;
    }
    let state = laptop.account_state().unwrap();
    assert!(!state.is_active(&phone.device_id()), "the log held is kept");
    assert_eq!(notes_of(&mut laptop, &case).len(), 4);
    let seen = match osei.list_notes(&case) {
        Ok(_) => notes_of(&mut osei, &case),
        Err(_) => Vec::new(),
    };
    assert!(
        !seen.iter().any(|n| n.contains("after")),
        "Dr. Osei reads what was written after the revocation: {seen:?}"
    );
    relay.stop().await;
}

/// The laptop pairs a tablet after the copy. Restored, the relay shows the
/// phone active; the desk, never told of the tablet, revokes the phone
/// there. The laptop's turn only adds the tablet: it takes the relay's log,
/// signing the tablet in again to the key the desk's revocation made, and
/// the tablet and the desk go on with every note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_in_the_relays_turn_is_taken_with_the_devices_it_lacks() {
    let (relay, dir, [mut laptop, mut phone, mut desk], case) = laptop_phone_desk().await;
    let at = |name: &str| dir.path().join(name);
    let (relay, copy) = relay.copy().await;
    let mut tablet = pair(&mut laptop, &at("tablet"), &relay).await;
    sync(&mut tablet).await;
    tablet
        .add_note(&case, free_note("from the tablet"))
        .unwrap();
    sync(&mut tablet).await;
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    let conn = desk.connect().await.unwrap();
    desk.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut desk).await;

    let joined = sync(&mut laptop).await;
    assert_clean(&joined);
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    let took = sync(&mut tablet).await;
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    assert_revoked(&mut phone).await;
    for home in [&mut laptop, &mut tablet, &mut desk] {
        assert_clean(&sync(home).await);
    }
    let all = notes_of(&mut laptop, &case);
    assert!(all.iter().any(|n| n == "from the tablet"), "{all:?}");
    for home in [&mut tablet, &mut desk] {
        assert_eq!(notes_of(home, &case), all, "{}", home.name());
        assert_eq!(
            home.account_state().unwrap(),
            laptop.account_state().unwrap()
        );
    }
    // A note the tablet writes now, under the key the desk's revocation
    // made, reaches the desk.
    tablet.add_note(&case, free_note("after the turn")).unwrap();
    sync(&mut tablet).await;
    sync(&mut desk).await;
    assert!(
        notes_of(&mut desk, &case)
            .iter()
            .any(|n| n == "after the turn")
    );
    relay.stop().await;
}
