//! A relay restored from an older copy, whose account log took another
//! turn there, under which an access entry held here no longer verifies
//! and cannot be vouched for (its signer revoked there, or not listed): a
//! device of the owner's signs it again on top of the log taken, and the
//! others take what it signed.

use casebook::Home;
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::DocId;
use casebook_tests::hostile_relay::HostileRelay;
use casebook_tests::restore_turn::*;
use casebook_tests::*;

/// The phone, told of the tablet, opens a case after the copy, and the
/// laptop and the tablet fetch it. On the restored relay the desk, never
/// told of either, revokes the phone. Under the relay's log the phone's
/// entry, signed at a length past where that log revokes it, would no
/// longer verify, and the phone is no device there to be vouched for: the
/// laptop signs the case's access log again on top of the log taken and
/// moves the case on; the tablet takes what the laptop signed; the desk
/// reads the case, and what the tablet writes to it next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_of_a_device_revoked_there_is_signed_again() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = phone_opens_a_case(&mut t).await;
    assert_eq!(plan_of(&mut t.tablet, &case), "sleep diary");
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(trail_says(
        &t.laptop,
        "signed again from entry 0 on by this device"
    ));
    assert_clean(&sync(&mut t.laptop).await);
    // Moved on past what the phone held, to the account's newest key.
    let rivera = t.laptop.account_state().unwrap();
    let meta = t.laptop.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.epoch, 1);
    assert_eq!(
        meta.wrap_generation(1, &rivera.id),
        Some(rivera.key.generation)
    );
    let took = sync(&mut t.tablet).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(
        &t.tablet,
        "took the relay's, which another device"
    ));
    assert_clean(&sync(&mut t.tablet).await);
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &case), "sleep diary");
    t.tablet
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.tablet).await);
    for home in [&mut t.desk, &mut t.laptop] {
        assert_clean(&sync(home).await);
        let notes = notes_of(home, &case);
        assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    }
    relay.stop().await;
}

/// After the copy the phone, told of the tablet, shares the case with Dr.
/// Chen, and her device and the laptop take the share. On the restored
/// relay the desk revokes the phone, moving the case on there. The laptop
/// takes the desk's entry and does again on top of it what the phone's
/// did, but the share: the phone may have been a thief's by then, and no
/// key of the desk's epoch is sealed to her. Dr. Chen's device, which the
/// relay no longer serves the case, drops the phone's entry, keeping what
/// it holds of the case, and takes the account log; shared again, she
/// reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_a_device_revoked_there_granted_is_ended_and_granted_again() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = t.case;
    phone_shares_with_chen(&mut t, &case).await;
    assert_eq!(plan_of(&mut t.chen, &t.case), "walk daily");
    sync(&mut t.laptop).await;
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;
    assert_clean(&sync(&mut t.desk).await);

    colleague_refuses_the_turn(&mut t.chen, &t.case, "lacks devices").await;
    laptop_joins(&mut t).await;
    assert!(trail_says(&t.laptop, "goes another way from entry 1"));
    assert!(trail_says(&t.laptop, "not granted again: device"));
    assert!(t.laptop.shares(&t.case).unwrap().is_empty());
    // No key past the phone's share is sealed to her: the chain of
    // previous keys leads back only.
    let meta = t.laptop.access().doc_meta(&t.case).unwrap().unwrap();
    assert!(meta.epoch >= 1, "{meta:?}");
    let chen = t.chen.account_id();
    let sealed = |e: &u32| meta.wrap_generation(*e, &chen).is_some();
    assert!(!(1..=meta.epoch).any(|e| sealed(&e)), "{meta:?}");
    assert_clean(&sync(&mut t.laptop).await);

    let took = sync(&mut t.chen).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(&t.chen, "dropped from entry 1 on"));
    assert_eq!(plan_of(&mut t.chen, &t.case), "walk daily");
    let case = t.case;
    shared_again_she_reads_on(&mut t, &case).await;
    for home in [&mut t.desk, &mut t.tablet] {
        assert_clean(&sync(home).await);
        let notes = notes_of(home, &t.case);
        assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    }
    relay.stop().await;
}

/// As above, but the laptop never fetched the share, which the restored
/// relay lacks, and the desk does not sync: no device of Dr. Rivera's
/// holds it to sign again, and the relay serves her nothing of the case.
/// Dr. Chen's device drops the phone's entry, keeping what it holds of
/// the case, and takes the account log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_drops_a_share_no_device_of_the_owner_holds() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = t.case;
    phone_shares_with_chen(&mut t, &case).await;
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(!trail_says(&t.laptop, "signed again"));
    let took = sync(&mut t.chen).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(&t.chen, "dropped from entry 1 on"));
    assert_clean(&sync(&mut t.chen).await);
    assert_eq!(plan_of(&mut t.chen, &t.case), "walk daily");
    relay.stop().await;
}

/// After the copy the phone, told of the tablet, opens a case and shares
/// it with Dr. Chen; the laptop fetches both. On the restored relay the
/// desk revokes the phone. The laptop signs the case's log again and ends
/// the share. Dr. Chen's device, whose whole log of the case no longer
/// verifies and which the relay no longer serves her, drops it, keeping
/// what arrived, and takes the account log; shared again, she reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_drops_a_case_a_device_revoked_there_opened_until_shared_again() {
    let (relay, mut t) = paired_after_the_copy().await;
    sync(&mut t.phone).await;
    let case = case_with_a_plan(&mut t.phone, "sleep diary");
    phone_shares_with_chen(&mut t, &case).await;
    assert_eq!(plan_of(&mut t.chen, &case), "sleep diary");
    sync(&mut t.laptop).await;
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(t.laptop.shares(&case).unwrap().is_empty());
    assert_clean(&sync(&mut t.laptop).await);
    let took = sync(&mut t.chen).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(&t.chen, "dropped from entry 0 on"));
    assert_clean(&sync(&mut t.chen).await);
    assert_eq!(plan_of(&mut t.chen, &case), "sleep diary");
    shared_again_she_reads_on(&mut t, &case).await;
    relay.stop().await;
}

/// As above, but the phone opened the case, and the laptop then shared it
/// with Dr. Okafor and ended that share, moving the case to a new key;
/// Dr. Chen's device holds all of it. The laptop signs the case's log
/// again and ends her share. Dropping the phone's entries would drop the
/// laptop's removal and new key with them (they chain on): her device
/// waits, refused and named, and takes the log once the laptop has shared
/// the case with her again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_waits_rather_than_drop_a_removal_the_owner_made_after() {
    let (relay, mut t) = paired_after_the_copy().await;
    let dir = t.dir.path().join("okafor");
    let mut okafor = init(&dir, &relay, "Dr. Okafor");
    sync(&mut okafor).await;
    sync(&mut t.phone).await;
    let case = case_with_a_plan(&mut t.phone, "sleep diary");
    phone_shares_with_chen(&mut t, &case).await;
    sync(&mut t.laptop).await;
    befriend(&mut t.laptop, "Dr. Okafor", &okafor.account_id());
    share_case(&mut t.laptop, &case, "Dr. Okafor", "read", true).await;
    t.laptop.unshare(&case, "Dr. Okafor").unwrap();
    sync(&mut t.laptop).await;
    sync(&mut t.chen).await;
    assert_eq!(plan_of(&mut t.chen, &case), "sleep diary");
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(t.laptop.shares(&case).unwrap().is_empty());
    assert_clean(&sync(&mut t.laptop).await);
    colleague_refuses_the_turn(&mut t.chen, &case, "signs them again").await;
    assert_eq!(plan_of(&mut t.chen, &case), "sleep diary");

    shared_again_she_reads_on(&mut t, &case).await;
    assert!(trail_says(&t.chen, "took another turn"));
    relay.stop().await;
}

/// Dr. Rivera shares a case with Dr. Ana and Dr. Okafor before the copy.
/// After it the laptop pairs a tablet, the phone shares the case with Dr.
/// Patel, and the laptop ends Dr. Okafor's share (a removal and a new key
/// on top of the phone's entry); Dr. Ana's device takes it all. On the
/// restored relay the desk revokes the phone, moving the case on, still
/// to Dr. Okafor; the laptop takes that and ends his share again on top.
/// A relay then serving Dr. Ana the case's log without its last entry (the
/// new key after the removal) would have her drop the laptop's removal and
/// write to a key Dr. Okafor holds: she waits, and takes the log whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_served_a_log_cut_before_the_new_key_waits() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    let mut ana = init(&at("ana"), &hostile, "Dr. Ana");
    let mut okafor = init(&at("okafor"), &relay, "Dr. Okafor");
    let mut patel = init(&at("patel"), &relay, "Dr. Patel");
    for home in [&mut ana, &mut okafor, &mut patel, &mut phone, &mut desk] {
        sync(home).await;
    }
    let case = case_with_a_plan(&mut laptop, "walk daily");
    for (name, who) in [
        ("Dr. Ana", ana.account_id()),
        ("Dr. Okafor", okafor.account_id()),
    ] {
        befriend(&mut laptop, name, &who);
        share_case(&mut laptop, &case, name, "read", true).await;
    }
    for home in [&mut ana, &mut phone, &mut desk] {
        sync(home).await;
    }
    let (relay, copy) = relay.copy().await;
    let _tablet = pair(&mut laptop, &at("tablet"), &relay).await;
    sync(&mut phone).await;
    befriend(&mut phone, "Dr. Patel", &patel.account_id());
    share_case(&mut phone, &case, "Dr. Patel", "read", true).await;
    sync(&mut laptop).await;
    laptop.unshare(&case, "Dr. Okafor").unwrap();
    sync(&mut laptop).await;
    sync(&mut ana).await;
    let relay = relay.restore(copy.path()).await;
    let conn = desk.connect().await.unwrap();
    desk.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    assert_clean(&sync(&mut desk).await);
    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    assert!(trail_says(&laptop, "goes another way"));

    hostile.set(move |req, resp| match (req, resp) {
        (Request::GetAccess { doc, from: 0 }, Response::Log { mut entries }) if *doc == case => {
            entries.pop();
            Response::Log { entries }
        }
        (_, resp) => resp,
    });
    colleague_refuses_the_turn(&mut ana, &case, "signs them again").await;
    hostile.clear();
    let took = sync(&mut ana).await;
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    assert!(trail_says(&ana, "dropped from entry"));
    assert_clean(&sync(&mut ana).await);
    assert_eq!(plan_of(&mut ana, &case), "walk daily");
    // The relay's log taken whole: Dr. Okafor is out, and the case on a
    // key made after that.
    let meta = ana.access().doc_meta(&case).unwrap().unwrap();
    let theirs = laptop.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.epoch, theirs.epoch);
    assert!(
        !meta
            .members
            .iter()
            .any(|(a, _, _)| *a == okafor.account_id())
    );
    relay.stop().await;
}

/// After the copy the laptop revokes the tablet it paired: Dr. Rivera's
/// account key moves to one of generation 1, and the phone opens a case
/// sealed to it. On the restored relay the desk revokes the phone: another
/// key of generation 1. Signed again, the case's first entry is sealed to a
/// key no device of the log taken holds: the laptop keeps the case's key,
/// and the new epoch it moves the case to, sealed to the log's newest key,
/// leads the desk back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_sealed_to_a_key_of_the_other_history_is_signed_again_and_moved_on() {
    let (relay, mut t) = paired_after_the_copy().await;
    let conn = t.laptop.connect().await.unwrap();
    t.laptop.revoke(&conn, &t.tablet.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut t.laptop).await;
    sync(&mut t.phone).await;
    let case = case_with_a_plan(&mut t.phone, "sleep diary");
    sync(&mut t.phone).await;
    sync(&mut t.laptop).await;
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(trail_says(
        &t.laptop,
        "signed again from entry 0 on by this device"
    ));
    assert_clean(&sync(&mut t.laptop).await);
    assert_eq!(plan_of(&mut t.laptop, &case), "sleep diary");
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &case), "sleep diary");
    t.laptop
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.laptop).await);
    assert_clean(&sync(&mut t.desk).await);
    let notes = notes_of(&mut t.desk, &case);
    assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    relay.stop().await;
}

/// After the copy the phone, told of the tablet, disposes of the case, and
/// the laptop carries the disposal out. On the restored relay, which holds
/// the case, the desk revokes the phone. The phone's disposal no longer
/// verifies, and a disposal is a person's act: the laptop gives it back no
/// more, saying so, rather than being locked out, and the desk keeps the
/// case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_a_device_revoked_there_signed_is_given_back_no_more() {
    let (relay, mut t) = paired_after_the_copy().await;
    sync(&mut t.phone).await;
    t.phone.dispose_case(&t.case, true).unwrap();
    sync(&mut t.phone).await;
    sync(&mut t.laptop).await;
    let cases = t.laptop.list_cases(true).unwrap();
    assert!(cases.iter().all(|c| c.id != t.case), "{cases:?}");
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(trail_says(&t.laptop, "it is no longer given back"));
    assert_clean(&sync(&mut t.laptop).await);
    let cases = t.laptop.list_cases(true).unwrap();
    assert!(cases.iter().all(|c| c.id != t.case), "{cases:?}");
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &t.case), "walk daily");
    relay.stop().await;
}

/// After the copy the phone, told of the tablet, opens a case; the laptop
/// fetches it, and the tablet fetches it and shares it with Dr. Chen. On
/// the restored relay the desk revokes the phone. The laptop signs the
/// phone's entry again and moves the case on; the tablet takes the entry
/// the laptop signed, and does again on top what its own share did (the
/// relay lost it with the copy); Dr. Chen's device drops what no longer
/// verifies, takes the relay's log, and reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_takes_what_another_signed_again_and_its_own_goes_on_top() {
    its_own_goes_on_top(false).await;
}

/// As above, but the tablet is first served the case's log only as far as
/// the laptop's entry, without its new key: its own share goes on top of
/// that, and then on top of the new key when its push meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_served_only_what_another_signed_again_puts_its_own_on_top() {
    its_own_goes_on_top(true).await;
}

async fn its_own_goes_on_top(served_only_the_twin: bool) {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = phone_opens_a_case(&mut t).await;
    befriend(&mut t.tablet, "Dr. Chen", &t.chen.account_id());
    share_case(&mut t.tablet, &case, "Dr. Chen", "read", true).await;
    sync(&mut t.chen).await;
    assert_eq!(plan_of(&mut t.chen, &case), "sleep diary");
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert_clean(&sync(&mut t.laptop).await);
    assert_eq!(t.laptop.access().doc_meta(&case).unwrap().unwrap().epoch, 1);
    let _hostile = match served_only_the_twin {
        true => Some(tablet_served_the_log_cut_once(&mut t, &relay, case, 1).await),
        false => None,
    };
    let took = sync(&mut t.tablet).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(&t.tablet, "goes another way from entry 0"));
    assert_clean(&sync(&mut t.tablet).await);
    assert_clean(&sync(&mut t.laptop).await);
    let shares = t.laptop.shares(&case).unwrap();
    assert_eq!(shares.len(), 1, "{shares:?}");
    let took = sync(&mut t.chen).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert_clean(&sync(&mut t.chen).await);
    t.tablet
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.tablet).await);
    for home in [&mut t.chen, &mut t.desk, &mut t.laptop] {
        assert_clean(&sync(home).await);
        let notes = notes_of(home, &case);
        assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    }
    relay.stop().await;
}

/// As in the first test, but the tablet looks for the case's log on the
/// relay before the laptop's entry lands there, and so signs the phone's
/// entry again too, at the same moment. Fetching the case's log next, it
/// meets the laptop's, the same entry signed by another device: it takes
/// that in the place of its own, and the case goes on for every device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_signing_the_same_entry_again_at_once_converge() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = phone_opens_a_case(&mut t).await;
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;
    laptop_joins(&mut t).await;
    assert_clean(&sync(&mut t.laptop).await);
    // The tablet's first look finds the case's log as it was before the
    // laptop's push.
    let _hostile = tablet_served_the_log_cut_once(&mut t, &relay, case, 0).await;
    let took = sync(&mut t.tablet).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says(
        &t.tablet,
        "signed again from entry 0 on by this device"
    ));
    assert_clean(&sync(&mut t.laptop).await);
    // The laptop's entry in the place of the tablet's: the same state of
    // the case's access on both (epoch, members, grants, wraps).
    let meta = |home: &Home| format!("{:?}", home.access().doc_meta(&case).unwrap());
    assert_eq!(meta(&t.tablet), meta(&t.laptop));
    assert_clean(&sync(&mut t.tablet).await);
    t.tablet
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.tablet).await);
    for home in [&mut t.desk, &mut t.laptop] {
        assert_clean(&sync(home).await);
        let notes = notes_of(home, &case);
        assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    }
    relay.stop().await;
}

/// After the copy the phone shares the case with Dr. Chen, and the laptop
/// takes the share and ends it (a removal and a new key). On the restored
/// relay the desk revokes the phone, moving the case on, and shares it
/// with Dr. Okafor, whose account log the laptop never held. Doing again
/// on top what its own entries did, the laptop moves the case to a new key
/// sealed to each member the relay's log has: it fetches Dr. Okafor's log
/// for that first, and he reads on; Dr. Chen gets no key of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebase_fetches_the_log_of_a_member_added_there_first() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = t.case;
    phone_shares_with_chen(&mut t, &case).await;
    sync(&mut t.laptop).await;
    befriend(&mut t.laptop, "Dr. Chen", &t.chen.account_id());
    t.laptop.unshare(&case, "Dr. Chen").unwrap();
    let relay = revoked_on_the_restored_relay(&mut t, relay).await;
    let mut okafor = init(&t.dir.path().join("okafor"), &relay, "Dr. Okafor");
    sync(&mut okafor).await;
    befriend(&mut t.desk, "Dr. Okafor", &okafor.account_id());
    share_case(&mut t.desk, &case, "Dr. Okafor", "read", true).await;
    assert_clean(&sync(&mut t.desk).await);

    laptop_joins(&mut t).await;
    assert!(trail_says(&t.laptop, "goes another way from entry 1"));
    assert_clean(&sync(&mut t.laptop).await);
    let meta = t.laptop.access().doc_meta(&case).unwrap().unwrap();
    let desk = t.desk.access().doc_meta(&case).unwrap().unwrap();
    assert!(meta.epoch > desk.epoch, "{meta:?}");
    assert!(
        meta.wrap_generation(meta.epoch, &okafor.account_id())
            .is_some()
    );
    assert!(
        meta.wrap_generation(meta.epoch, &t.chen.account_id())
            .is_none()
    );
    let chen = t.chen.account_id();
    assert!(!meta.grants.iter().any(|g| g.account == chen), "{meta:?}");
    t.laptop
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.laptop).await);
    for home in [&mut okafor, &mut t.desk] {
        assert_clean(&sync(home).await);
        let notes = notes_of(home, &case);
        assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    }
    relay.stop().await;
}

/// The phone, told of the tablet, opens a case after the copy, and the
/// laptop and the tablet fetch it.
async fn phone_opens_a_case(t: &mut PairedAfterTheCopy) -> DocId {
    sync(&mut t.phone).await;
    let case = case_with_a_plan(&mut t.phone, "sleep diary");
    sync(&mut t.phone).await;
    sync(&mut t.laptop).await;
    sync(&mut t.tablet).await;
    case
}

/// The tablet syncs through a hostile relay in front of `relay`, which
/// serves it `case`'s access log cut to its first `keep` entries the first
/// time it asks for the whole log, and passes everything else on.
async fn tablet_served_the_log_cut_once(
    t: &mut PairedAfterTheCopy,
    relay: &TestRelay,
    case: DocId,
    keep: usize,
) -> HostileRelay {
    let hostile = HostileRelay::start(relay).await;
    t.tablet
        .set_relay(&hostile.addr.to_string(), hostile.fingerprint)
        .await
        .unwrap();
    let once = std::sync::atomic::AtomicBool::new(true);
    hostile.set(move |req, resp| match (req, resp) {
        (Request::GetAccess { doc, from: 0 }, Response::Log { mut entries })
            if *doc == case && once.swap(false, std::sync::atomic::Ordering::SeqCst) =>
        {
            entries.truncate(keep);
            Response::Log { entries }
        }
        (_, resp) => resp,
    });
    hostile
}

/// The phone, told of the tablet, shares `case` with Dr. Chen, and her
/// device takes the share.
async fn phone_shares_with_chen(t: &mut PairedAfterTheCopy, case: &DocId) {
    sync(&mut t.phone).await;
    befriend(&mut t.phone, "Dr. Chen", &t.chen.account_id());
    share_case(&mut t.phone, case, "Dr. Chen", "read", true).await;
    sync(&mut t.chen).await;
}

/// The laptop shares `case` with Dr. Chen again and writes to it; her
/// device reads what it wrote.
async fn shared_again_she_reads_on(t: &mut PairedAfterTheCopy, case: &DocId) {
    befriend(&mut t.laptop, "Dr. Chen", &t.chen.account_id());
    share_case(&mut t.laptop, case, "Dr. Chen", "read", true).await;
    t.laptop
        .add_note(case, free_note("after the turn"))
        .unwrap();
    assert_clean(&sync(&mut t.laptop).await);
    sync(&mut t.chen).await;
    assert_clean(&sync(&mut t.chen).await);
    let notes = notes_of(&mut t.chen, case);
    assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
}
