//! A relay restored from an older copy, after which another device of the
//! account signed access entries where the lost ones had been: the relay's
//! access log is as long as the one the losing device holds, but not the
//! same. The listing carries each log's last entry hash, so that device
//! sees it; it takes the relay's log, signs again on top of it what its lost
//! entries did, and sends its changes again. A share it ended stays ended.

use casebook_shared::ids::{AccountId, DocId};
use casebook_tests::*;

fn notes(home: &mut casebook::Home, case: &DocId) -> usize {
    home.list_notes(case).unwrap().len()
}

/// Dr. Rivera's laptop and phone, a case shared with Dr. Chen, Dr. Okafor
/// a contact not shared with yet; everyone synced.
struct Clinic {
    relay: TestRelay,
    laptop: casebook::Home,
    phone: casebook::Home,
    chen: casebook::Home,
    okafor: casebook::Home,
    case: DocId,
    _dirs: Vec<tempfile::TempDir>,
}

async fn clinic() -> Clinic {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, dirs[1].path(), &relay).await;
    let mut chen = init(dirs[2].path(), &relay, "Dr. Chen");
    let mut okafor = init(dirs[3].path(), &relay, "Dr. Okafor");
    sync(&mut chen).await;
    sync(&mut okafor).await;
    for home in [&mut laptop, &mut phone] {
        befriend(home, "Dr. Chen", &chen.account_id());
        befriend(home, "Dr. Okafor", &okafor.account_id());
    }
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    sync(&mut phone).await;
    assert_eq!(notes(&mut chen, &case), 1);
    Clinic {
        relay,
        laptop,
        phone,
        chen,
        okafor,
        case,
        _dirs: dirs,
    }
}

fn members(home: &casebook::Home, case: &DocId) -> Vec<AccountId> {
    let mut m: Vec<AccountId> = home
        .shares(case)
        .unwrap()
        .into_iter()
        .map(|r| r.member)
        .collect();
    m.sort();
    m
}

/// The phone's sync after the restore: the relay's log taken, the phone's
/// own entries signed again on top of it, its note sent again, and the
/// trail says so.
async fn phone_heals(phone: &mut casebook::Home) {
    let healed = sync(phone).await;
    assert_clean(&healed);
    assert!(healed.resent > 0, "its note goes again: {healed:?}");
    let trail = phone.trail().entries().unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.what.contains("differs from the one held here from entry")),
        "the trail says so"
    );
}

/// Once the phone healed: the laptop takes its entries, Okafor reads its
/// note, and Chen, whose share it ended, does not.
async fn okafor_in_chen_out(
    laptop: &mut casebook::Home,
    okafor: &mut casebook::Home,
    chen: &mut casebook::Home,
    case: &DocId,
) {
    assert_clean(&sync(laptop).await);
    assert_eq!(members(laptop, case), vec![okafor.account_id()]);
    assert_eq!(notes(laptop, case), 2, "the phone's note, sent again");
    assert_clean(&sync(okafor).await);
    assert_eq!(notes(okafor, case), 2);
    sync(chen).await;
    assert_eq!(notes(chen, case), 1, "not sealed to Chen");
}

/// After the copy, the phone ends Dr. Chen's share (a removal and a new
/// key) and writes under the new key. The restore loses both; the laptop,
/// which never saw them, then shares the case with Dr. Okafor, and its
/// entry lands where the phone's removal was: the relay's log is shorter
/// than the phone's, and differs. The phone's next sync takes the laptop's
/// entry and ends Chen's share again on top of it: Okafor reads the
/// phone's note, Chen does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_ended_and_lost_in_a_restore_is_ended_again_on_the_relays_log() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        mut chen,
        mut okafor,
        case,
        _dirs,
    } = clinic().await;
    let (relay, copy) = relay.copy().await;
    phone.unshare(&case, "Dr. Chen").unwrap();
    phone
        .add_note(&case, free_note("written after Chen left"))
        .unwrap();
    assert_clean(&sync(&mut phone).await);

    let relay = relay.restore(copy.path()).await;
    share_case(&mut laptop, &case, "Dr. Okafor", "read", true).await;

    phone_heals(&mut phone).await;
    assert_eq!(
        members(&phone, &case),
        vec![okafor.account_id()],
        "Chen's share ended again"
    );
    okafor_in_chen_out(&mut laptop, &mut okafor, &mut chen, &case).await;
    relay.stop().await;
}

/// After the copy, the phone shares the case with Dr. Okafor and writes.
/// The restore loses both; the laptop then shares it with Dr. Patel, one
/// entry where the phone's was: the relay's log is as long as the phone's,
/// and only the last entry's hash in the listing tells them apart. The
/// phone shares with Okafor again on top of it, and Okafor reads its note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_lost_in_a_restore_where_another_took_its_place_is_made_again() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        chen,
        mut okafor,
        case,
        _dirs,
    } = clinic().await;
    let (relay, copy) = relay.copy().await;
    share_case(&mut phone, &case, "Dr. Okafor", "read", false).await;
    phone
        .add_note(&case, free_note("written for Okafor"))
        .unwrap();
    assert_clean(&sync(&mut phone).await);

    let relay = relay.restore(copy.path()).await;
    let patel_dir = tempfile::tempdir().unwrap();
    let mut patel = init(patel_dir.path(), &relay, "Dr. Patel");
    sync(&mut patel).await;
    befriend(&mut laptop, "Dr. Patel", &patel.account_id());
    share_case(&mut laptop, &case, "Dr. Patel", "read", true).await;

    phone_heals(&mut phone).await;
    let all = {
        let mut b = vec![chen.account_id(), okafor.account_id(), patel.account_id()];
        b.sort();
        b
    };
    assert_eq!(members(&phone, &case), all);
    assert_clean(&sync(&mut laptop).await);
    assert_eq!(members(&laptop, &case), all);
    assert_eq!(notes(&mut laptop, &case), 2, "the phone's note, sent again");
    assert_clean(&sync(&mut okafor).await);
    assert_eq!(
        notes(&mut okafor, &case),
        2,
        "shared again, and the note with it"
    );
    assert_clean(&sync(&mut patel).await);
    assert_eq!(notes(&mut patel, &case), 2);
    relay.stop().await;
}

/// After the copy, the phone shares the case with Dr. Okafor. The restore
/// loses it; the laptop then ends Dr. Chen's share (a removal and a new
/// key): the relay's log is longer than the phone's, and its first entry
/// past the phone's end does not follow the phone's last. The phone fetches
/// the whole log, takes it, and shares with Okafor again under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_log_that_turned_before_the_end_held_is_taken_whole() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        mut chen,
        mut okafor,
        case,
        _dirs,
    } = clinic().await;
    let (relay, copy) = relay.copy().await;
    share_case(&mut phone, &case, "Dr. Okafor", "read", false).await;
    phone
        .add_note(&case, free_note("written for Okafor"))
        .unwrap();
    assert_clean(&sync(&mut phone).await);

    let relay = relay.restore(copy.path()).await;
    laptop.unshare(&case, "Dr. Chen").unwrap();
    assert_clean(&sync(&mut laptop).await);

    phone_heals(&mut phone).await;
    assert_eq!(members(&phone, &case), vec![okafor.account_id()]);
    okafor_in_chen_out(&mut laptop, &mut okafor, &mut chen, &case).await;
    relay.stop().await;
}

/// After the copy, the phone writes and syncs its trail; the restore loses
/// those entries. The laptop writes to the audit document first, so the
/// relay's numbers went on past the phone's; the phone sees instead that
/// the relay no longer holds its last audit envelope, and sends its whole
/// trail again in the same round: the laptop's copy of it has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_audit_entries_a_restore_lost_sends_its_trail_again() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        case,
        _dirs,
        ..
    } = clinic().await;
    let (relay, copy) = relay.copy().await;
    phone
        .add_note(&case, free_note("lost with the restore"))
        .unwrap();
    assert_clean(&sync(&mut phone).await);

    let relay = relay.restore(copy.path()).await;
    set_plan(&mut laptop, &case, "walk daily, sleep diary");
    assert_clean(&sync(&mut laptop).await);
    phone
        .add_note(&case, free_note("after the restore"))
        .unwrap();
    sync(&mut phone).await;
    assert!(
        phone.trail().entries().unwrap().iter().any(|r| r
            .what
            .contains("no longer holds this device's last audit entries")),
        "the phone's trail says why it went again"
    );
    sync(&mut laptop).await;
    laptop.trail().verify().expect("the phone's trail, whole");
    // The lost note, which the later one builds on, the laptop asks for.
    sync(&mut phone).await;
    sync(&mut laptop).await;
    assert_eq!(notes(&mut laptop, &case), 3, "both of the phone's notes");
    relay.stop().await;
}

/// The colleague syncs between the copy and the restore, and so holds the
/// phone's removal of Dr. Okafor that the restore loses. With the laptop's
/// share to Dr. Patel in its place, the relay's log is shorter than the
/// colleague's: refused. Once the phone has removed Okafor again on top of
/// it, the colleague takes the relay's log (Okafor is no member there) and
/// reads the phone's note, sent again under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_takes_the_relays_log_once_it_removes_whom_its_own_removed() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        mut chen,
        case,
        _dirs,
        ..
    } = clinic().await;
    share_case(&mut laptop, &case, "Dr. Okafor", "read", true).await;
    sync(&mut phone).await;
    let (relay, copy) = relay.copy().await;
    phone.unshare(&case, "Dr. Okafor").unwrap();
    phone
        .add_note(&case, free_note("written after Okafor left"))
        .unwrap();
    assert_clean(&sync(&mut phone).await);
    assert_clean(&sync(&mut chen).await);
    assert_eq!(notes(&mut chen, &case), 2);

    let relay = relay.restore(copy.path()).await;
    let patel_dir = tempfile::tempdir().unwrap();
    let mut patel = init(patel_dir.path(), &relay, "Dr. Patel");
    sync(&mut patel).await;
    befriend(&mut laptop, "Dr. Patel", &patel.account_id());
    share_case(&mut laptop, &case, "Dr. Patel", "read", true).await;
    let r = try_sync(&mut chen)
        .await
        .expect("the rest of her round goes on");
    assert!(
        r.refused
            .iter()
            .any(|x| x.doc == case && x.reason.contains("the case waits")),
        "shorter than the colleague's, and the owner's removal lost: refused, {r:?}"
    );

    phone_heals(&mut phone).await;
    let healed = sync(&mut chen).await;
    assert_clean(&healed);
    assert!(
        chen.trail().entries().unwrap().iter().any(|r| r
            .what
            .contains("it removes no one the log held here removed")),
        "the colleague's trail says so"
    );
    let me_and_patel = {
        let mut b = vec![chen.account_id(), patel.account_id()];
        b.sort();
        b
    };
    assert_eq!(members(&phone, &case), me_and_patel);
    assert_clean(&sync(&mut patel).await);
    assert_eq!(notes(&mut patel, &case), 2, "the phone's note, sent again");
    assert_clean(&sync(&mut laptop).await);
    assert_eq!(members(&laptop, &case), me_and_patel);
    relay.stop().await;
}

/// The phone is stolen. The laptop revokes it, which moves the case to a
/// new key signed at the revocation's account log; the restore loses both,
/// and the stolen phone, which the restored relay still counts as active,
/// shares the case with Dr. Okafor where the laptop's new key was. The
/// laptop sends its account log back, meets the phone's entry in place of
/// its own and refuses it: taking it would give Okafor the case's next key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_a_revoked_device_signed_is_refused() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        okafor,
        case,
        _dirs,
        ..
    } = clinic().await;
    let (relay, copy) = relay.copy().await;
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    assert_clean(&sync(&mut laptop).await);

    let relay = relay.restore(copy.path()).await;
    share_case(&mut phone, &case, "Dr. Okafor", "read", true).await;

    let refused = sync(&mut laptop).await;
    assert!(
        refused
            .refused
            .iter()
            .any(|r| r.doc == case && r.reason.contains("revoked since")),
        "{refused:?}"
    );
    assert!(!members(&laptop, &case).contains(&okafor.account_id()));
    relay.stop().await;
}

/// The newest audit envelope of `doc` on the relay, read while it runs.
fn newest_envelope(relay: &TestRelay, doc: &DocId) -> i64 {
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).unwrap();
    db.query_row(
        "SELECT MAX(seq) FROM envelopes WHERE doc = ?1",
        [&doc.0[..]],
        |r| r.get(0),
    )
    .unwrap()
}

/// The relay loses one of the tablet's audit envelopes from the middle
/// (someone with its disk deletes the row) after the laptop fetched it but
/// before the phone did; the tablet, whose last envelope is still there,
/// cannot tell. The phone holds the tablet's trail with a gap and asks for
/// it; the tablet is revoked before it could answer, and the laptop
/// forwards the entries it holds, which the phone keeps because they chain
/// into the tablet's entries on both sides of the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_a_revoked_devices_trail_is_filled_by_a_device_that_holds_it() {
    let Clinic {
        relay,
        mut laptop,
        mut phone,
        case,
        _dirs,
        ..
    } = clinic().await;
    let addr = relay.handle.addr;
    let tablet_dir = tempfile::tempdir().unwrap();
    let mut tablet = pair(&mut laptop, tablet_dir.path(), &relay).await;
    sync(&mut tablet).await;
    sync(&mut phone).await;
    let audit = casebook::audit_sync::audit_doc(&laptop.account_id());
    tablet
        .add_note(&case, free_note("its entries lost"))
        .unwrap();
    assert_clean(&sync(&mut tablet).await);
    let lost = newest_envelope(&relay, &audit);
    sync(&mut laptop).await;
    tablet
        .add_note(&case, free_note("its entries kept"))
        .unwrap();
    assert_clean(&sync(&mut tablet).await);

    let data = relay.stop().await;
    let db = rusqlite::Connection::open(data.path().join("relay.db")).unwrap();
    assert_eq!(
        db.execute("DELETE FROM envelopes WHERE seq = ?1", [lost])
            .unwrap(),
        1
    );
    drop(db);
    let relay = TestRelay::restart(data, addr).await;
    sync(&mut phone).await;
    assert!(
        phone.trail().verify().is_err(),
        "the tablet's trail arrived with a gap"
    );
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet.device_id()).await.unwrap();
    conn.close().await;

    sync(&mut laptop).await;
    sync(&mut phone).await;
    phone.trail().verify().expect("the tablet's trail, whole");
    relay.stop().await;
}
