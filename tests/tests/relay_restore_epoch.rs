//! Two owner's devices that each move a case to a new key for the same
//! revocation, one of the two rotations lost in a restore: what the other
//! device sealed under the lost key must not stay on the relay for good.
//! Found by the simulation (seed 3,512,402,486, about half its runs).

use casebook_tests::*;

/// The laptop revokes the tablet, and its sync does not go out: the
/// revocation is on the relay, its rotation is not. The phone reads the
/// revocation, moves the case to a new key of its own, and writes a note
/// it does not send. The relay is restored from a copy older than both;
/// the laptop syncs first, so its rotation is the relay's. The phone's
/// next sync sends its note early, sealed under its own key of that epoch,
/// before its pull meets the other rotation and takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_sealed_under_a_rotation_the_restore_lost_is_not_left_on_the_relay() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let tablet = pair(&mut laptop, &at("tablet"), &relay).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    sync(&mut phone).await;
    let (relay, copy) = relay.copy().await;

    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut phone).await;
    phone.add_note(&case, free_note("from the phone")).unwrap();

    let relay = relay.restore(copy.path()).await;
    sync(&mut laptop).await;
    // Its early push is refused (the relay's access log ends elsewhere);
    // the round takes the laptop's rotation and sends the note under it.
    let r = sync(&mut phone).await;
    assert_eq!(r.pushed_first, 0, "{r:?}");
    let r = try_sync(&mut laptop).await.expect("the laptop syncs");
    assert!(r.refused.is_empty(), "{r:?}");
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    for home in [&mut laptop, &mut desk] {
        let r = try_sync(home).await.expect("a sync");
        assert!(r.refused.is_empty() && r.incomplete.is_empty(), "{r:?}");
        let notes = home.list_notes(&case).unwrap();
        let texts: Vec<String> = notes
            .iter()
            .map(|n| home.show_note(&case, &n.id).unwrap().fields[0].1.clone())
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("from the phone")),
            "{texts:?}"
        );
    }
    relay.stop().await;
}
