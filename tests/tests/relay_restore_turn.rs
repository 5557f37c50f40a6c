//! A relay restored from an older copy, whose account log was written to
//! again before the devices holding its lost end synced: two histories of
//! one account log, each signed by the account's devices. Where both only
//! add devices, the devices take the relay's, an owner's device signing
//! the devices it lacks in again, and nobody is locked out.

use casebook::Home;
use casebook_tests::restore_turn::*;
use casebook_tests::*;

/// The laptop pairs the tablet after the copy; the tablet writes a note,
/// and Dr. Chen, who reads the case, takes the account log with the tablet
/// in it. Restored, the relay lacks the tablet. Before the laptop or the
/// tablet syncs, the phone, which never heard of the tablet, pairs a watch
/// on top of what the relay kept: the relay's log and the laptop's part
/// after the phone. Dr. Chen's device refuses the relay's until the laptop
/// has taken it and signed the tablet in again on top of it; the tablet
/// and Dr. Chen then take it too, the tablet sends back its note, and
/// every device, the watch too, ends with every note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_log_written_to_on_both_sides_of_a_restore_is_joined() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    laptop
        .add_note(&case, free_note("from the laptop"))
        .unwrap();
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    sync(&mut phone).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;

    let (relay, copy) = relay.copy().await;

    let mut tablet = pair(&mut laptop, &at("tablet"), &relay).await;
    sync(&mut tablet).await;
    tablet
        .add_note(&case, free_note("from the tablet"))
        .unwrap();
    sync(&mut tablet).await;
    sync(&mut chen).await;
    let all = notes_of(&mut chen, &case);
    assert!(all.contains(&"from the tablet".to_string()), "{all:?}");

    let relay = relay.restore(copy.path()).await;
    let mut watch = pair(&mut phone, &at("watch"), &relay).await;
    sync(&mut watch).await;

    // Dr. Chen's device, first to sync, may not take a log that lacks the
    // tablet it holds: refused, named, until an owner's device signs the
    // tablet in again; the case it shares waits meanwhile.
    colleague_refuses_the_turn(&mut chen, &case, "lacks devices").await;

    let joined = sync(&mut laptop).await;
    assert_clean(&joined);
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    assert!(
        laptop
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.what.contains("took another turn") && r.what.contains("signed in again")),
        "the trail says so"
    );
    let took = sync(&mut tablet).await;
    assert_clean(&took);
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    let took = sync(&mut chen).await;
    assert_clean(&took);
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    for home in [&mut laptop, &mut phone, &mut watch, &mut tablet, &mut chen] {
        assert_clean(&sync(home).await);
    }
    for home in [&mut laptop, &mut phone, &mut watch, &mut tablet, &mut chen] {
        assert_eq!(notes_of(home, &case), all, "{}", home.name());
    }
    // Every device holds one log, with all four devices in it.
    let state = laptop.account_state().unwrap();
    assert_eq!(state.active().count(), 5, "four devices and the paper one");
    for home in [&phone, &watch, &tablet] {
        assert_eq!(home.account_state().unwrap(), state, "{}", home.name());
    }
    relay.stop().await;
}

/// What a colleague's device meets while the entries it holds, signed by
/// a device signed in again, wait for a vouch.
const WAITS_FOR_A_VOUCH: &str = "vouches for it";

/// Whether `home`'s trail says a turn was taken with entries vouched for.
fn trail_says_vouched(home: &Home) -> bool {
    (home.trail().entries().unwrap().iter())
        .any(|r| r.what.contains("took another turn") && r.what.contains("a vouch for"))
}

/// The tablet opened a case after it was paired, and the laptop fetched
/// it: the case's first access entry is signed at a length of the account
/// log at which, in the relay's history, the tablet was not yet a device.
/// The laptop takes the relay's log, signs the tablet in again and vouches
/// for that entry, so the case verifies everywhere: the desk, which never
/// heard of the tablet, reads it, and the tablet takes the log and goes on
/// writing to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_entry_a_device_signed_before_it_was_signed_in_again_is_vouched_for() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = case_with_a_plan(&mut t.tablet, "sleep diary");
    sync(&mut t.tablet).await;
    sync(&mut t.laptop).await;
    let relay = restored_and_written_to(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(trail_says_vouched(&t.laptop), "the trail says so");
    let took = sync(&mut t.tablet).await;
    assert_clean(&took);
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &case), "sleep diary");
    t.tablet
        .add_note(&case, free_note("after the turn"))
        .unwrap();
    sync(&mut t.tablet).await;
    sync(&mut t.desk).await;
    let notes = notes_of(&mut t.desk, &case);
    assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    let state = t.laptop.account_state().unwrap();
    for home in [&t.desk, &t.tablet] {
        assert_eq!(home.account_state().unwrap(), state, "{}", home.name());
    }
    relay.stop().await;
}

/// As above, but the laptop never fetched the tablet's case, which the
/// restored relay lacks: the laptop signs the tablet in again, and the
/// tablet, taking that log, vouches for its own entry and gives the case
/// back; the laptop and the desk then read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signed_in_again_vouches_for_a_case_it_alone_held() {
    let (relay, mut t) = paired_after_the_copy().await;
    let case = case_with_a_plan(&mut t.tablet, "sleep diary");
    sync(&mut t.tablet).await;
    let relay = restored_and_written_to(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(
        !trail_says_vouched(&t.laptop),
        "it held nothing to vouch for"
    );
    let took = sync(&mut t.tablet).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says_vouched(&t.tablet), "the trail says so");
    assert_clean(&sync(&mut t.tablet).await);
    for home in [&mut t.laptop, &mut t.desk] {
        assert_clean(&sync(home).await);
        assert_eq!(plan_of(home, &case), "sleep diary", "{}", home.name());
    }
    relay.stop().await;
}

/// The tablet shared the case with Dr. Chen, and the laptop never fetched
/// that share, which the restored relay lacks. The laptop takes the
/// relay's log and signs the tablet in again; Dr. Chen's device, holding
/// the share the tablet signed at a length where it is not yet a device
/// in that log, refuses the log, naming why, and holds the case as it was
/// until the tablet, taking the log, vouches for its share. Her own cases
/// go on syncing meanwhile; then she takes the log and reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_holding_what_a_device_signed_before_waits_for_its_vouch() {
    let (relay, mut t) = paired_after_the_copy().await;
    let chen_account = t.chen.account_id();
    befriend(&mut t.tablet, "Dr. Chen", &chen_account);
    share_case(&mut t.tablet, &t.case, "Dr. Chen", "read", true).await;
    sync(&mut t.chen).await;
    assert_eq!(plan_of(&mut t.chen, &t.case), "walk daily");
    let relay = restored_and_written_to(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(
        !trail_says_vouched(&t.laptop),
        "it held nothing to vouch for"
    );
    colleague_refuses_the_turn(&mut t.chen, &t.case, WAITS_FOR_A_VOUCH).await;
    assert_eq!(plan_of(&mut t.chen, &t.case), "walk daily");

    // Nothing of the case is fetched meanwhile: a note the laptop writes
    // waits on the relay.
    t.laptop
        .add_note(&t.case, free_note("after the turn"))
        .unwrap();
    sync(&mut t.laptop).await;
    let before = t.chen.list_notes(&t.case).unwrap().len();

    // Dr. Chen's own cases go on syncing meanwhile: one opened now reaches
    // a device she pairs, and her trail says once what was refused.
    let own = case_with_a_plan(&mut t.chen, "her own client");
    colleague_refuses_the_turn(&mut t.chen, &t.case, WAITS_FOR_A_VOUCH).await;
    let mut chen_phone = pair(&mut t.chen, &t.dir.path().join("chen-phone"), &relay).await;
    sync(&mut chen_phone).await;
    assert_eq!(plan_of(&mut chen_phone, &own), "her own client");
    let said = t.chen.trail().entries().unwrap();
    let said = said
        .iter()
        .filter(|r| r.what.starts_with("refused the relay's log of account"));
    assert_eq!(said.count(), 1);
    assert_eq!(t.chen.list_notes(&t.case).unwrap().len(), before);

    let took = sync(&mut t.tablet).await;
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    assert!(trail_says_vouched(&t.tablet), "the trail says so");
    sync(&mut t.tablet).await;
    let took = sync(&mut t.chen).await;
    assert_clean(&took);
    assert_eq!(took.logs_turned, vec![t.laptop.account_id()], "{took:?}");
    let notes = notes_of(&mut t.chen, &t.case);
    assert!(notes.contains(&"after the turn".to_string()), "{notes:?}");
    relay.stop().await;
}

/// The tablet disposed of the case, which the copy holds, and the laptop
/// carried the disposal out, keeping the tablet's signed entry to give
/// back. Under the relay's log, in which the tablet is signed in later,
/// that entry would no longer verify; the laptop vouches for it, gives the
/// disposal back, and the case, live again on the restored relay, is gone
/// from the desk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_disposal_a_device_signed_before_it_was_signed_in_again_is_vouched_for() {
    let (relay, mut t) = paired_after_the_copy().await;
    t.tablet.dispose_case(&t.case, true).unwrap();
    sync(&mut t.tablet).await;
    sync(&mut t.laptop).await;
    let cases = t.laptop.list_cases(true).unwrap();
    assert!(cases.iter().all(|c| c.id != t.case));
    let relay = restored_and_written_to(&mut t, relay).await;

    laptop_joins(&mut t).await;
    assert!(trail_says_vouched(&t.laptop), "the trail says so");
    assert_clean(&sync(&mut t.laptop).await);
    assert_clean(&sync(&mut t.desk).await);
    let cases = t.desk.list_cases(true).unwrap();
    assert!(cases.iter().all(|c| c.id != t.case), "{cases:?}");
    relay.stop().await;
}

/// The laptop takes the relay's log at a turn; the relay is then restored
/// again from the same old copy, and the desk computer, which never heard
/// of the tablet or the watch, pairs one more device on top of it: a third
/// history, parting where the first turn did. Taking it would have the
/// laptop sign the watch and the tablet in again, and a relay that showed
/// it two histories in turn would have it do so each round: it is
/// refused, as a turn of a document's access log that leaves behind an
/// entry this device signed is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_below_one_taken_before_is_refused() {
    let (relay, mut t) = paired_after_the_copy().await;
    let relay = restored_and_written_to(&mut t, relay).await;
    laptop_joins(&mut t).await;

    let relay = relay.restore(t.copy.path()).await;
    let other = t.dir.path().join("other");
    let _other = pair(&mut t.desk, &other, &relay).await;
    refuses_the_turn(&mut t.laptop, "no later than").await;
    relay.stop().await;
}

/// Dr. Chen shares a case of hers with Dr. Rivera. After the copy, the
/// laptop revokes the phone: Dr. Rivera's account key moves to generation
/// 1, and Dr. Chen moves her case to it. On the restored relay the desk,
/// never told, revokes the phone too: another key of generation 1. Dr.
/// Chen's device, taking the relay's log, cannot tell the two keys apart
/// by generation; it moves her case to the relay's, so the desk, which
/// never held the laptop's, reads what she writes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_moves_her_case_off_a_key_the_turn_held_here_made() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    for home in [&mut laptop, &mut phone, &mut desk, &mut chen] {
        sync(home).await;
    }
    befriend(&mut chen, "Dr. Rivera", &laptop.account_id());
    let case = case_with_a_plan(&mut chen, "her client");
    share_case(&mut chen, &case, "Dr. Rivera", "read", true).await;
    for home in [&mut laptop, &mut phone, &mut desk] {
        sync(home).await;
        assert_eq!(plan_of(home, &case), "her client", "{}", home.name());
    }
    let (relay, copy) = relay.copy().await;

    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut laptop).await;
    sync(&mut chen).await;
    let rivera = laptop.account_id();
    let meta = chen.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.wrap_generation(meta.epoch, &rivera), Some(1));

    let relay = relay.restore(copy.path()).await;
    let conn = desk.connect().await.unwrap();
    desk.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![rivera], "{joined:?}");
    let took = sync(&mut chen).await;
    assert_eq!(took.logs_turned, vec![rivera], "{took:?}");
    assert_clean(&sync(&mut chen).await);
    chen.add_note(&case, free_note("after the turn")).unwrap();
    assert_clean(&sync(&mut chen).await);
    assert_clean(&sync(&mut desk).await);
    let notes = notes_of(&mut desk, &case);
    assert!(notes.iter().any(|n| n == "after the turn"), "{notes:?}");
    relay.stop().await;
}

/// After the copy the laptop also pairs a spare device, which syncs once
/// (signing its audit document's first entry), and revokes it. On the
/// restored relay the phone pairs a watch: no key made there. The laptop
/// signs the spare in and revokes it again on top of the watch, vouching
/// in between for what the spare signed, so nothing held here stops
/// verifying; the desk and the tablet take the log, and the spare stays
/// revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_added_and_revoked_after_the_copy_is_signed_in_and_revoked_again() {
    let (relay, mut t) = paired_after_the_copy().await;
    let mut spare = pair(&mut t.laptop, &t.dir.path().join("spare"), &relay).await;
    sync(&mut spare).await;
    sync(&mut t.laptop).await;
    let conn = t.laptop.connect().await.unwrap();
    t.laptop.revoke(&conn, &spare.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut t.laptop).await;
    let relay = restored_and_written_to(&mut t, relay).await;

    laptop_joins(&mut t).await;
    let state = t.laptop.account_state().unwrap();
    let listed = state.devices.get(&spare.device_id()).expect("listed again");
    assert!(listed.revoked_seq.is_some(), "and revoked again");
    for home in [&mut t.desk, &mut t.tablet] {
        assert_clean(&sync(home).await);
        assert_eq!(home.account_state().unwrap(), state, "{}", home.name());
    }
    assert!(matches!(
        try_sync(&mut spare).await,
        Err(casebook::Error::Revoked)
    ));
    relay.stop().await;
}

/// After the copy the laptop revokes the tablet it paired and the phone,
/// then opens a case: its first entry claims a length of the account log
/// the relay's log, with only the watch the desk pairs there on top,
/// reaches only once both revocations are made again. The laptop takes
/// the turn (what is judged before those are made waits for them), and
/// the desk reads the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_claiming_a_length_the_revocations_made_again_reach_is_taken() {
    let (relay, mut t) = paired_after_the_copy().await;
    let conn = t.laptop.connect().await.unwrap();
    for gone in [t.tablet.device_id(), t.phone.device_id()] {
        t.laptop.revoke(&conn, &gone).await.unwrap();
    }
    conn.close().await;
    let case = case_with_a_plan(&mut t.laptop, "after the revocations");
    sync(&mut t.laptop).await;
    let relay = relay.restore(t.copy.path()).await;
    let _watch = pair(&mut t.desk, &t.dir.path().join("watch"), &relay).await;

    laptop_joins(&mut t).await;
    assert_clean(&sync(&mut t.laptop).await);
    assert_clean(&sync(&mut t.desk).await);
    assert_eq!(plan_of(&mut t.desk, &case), "after the revocations");
    relay.stop().await;
}
