//! A relay restored from a copy older than a revocation, whose account
//! log was written to again before the device that revoked synced: two
//! histories of the log. The laptop makes the revocation again on top of
//! what the relay holds, cuts what the revoked device paired there, and
//! ends every share it granted there, so nothing written after the
//! revocation reaches anyone the revoked device let in, and nobody is
//! locked out. A revocation the relay's own turn made is taken.

use casebook::Home;
use casebook_shared::account::{self, AccountEntry, AccountOp};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::DocId;
use casebook_tests::hostile_relay::HostileRelay;
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

/// [`laptop_phone_desk`], and Dr. Chen reading the case; the relay is
/// copied, the laptop then revokes the phone and writes a note, Dr. Chen
/// syncs, and the relay is restored from the copy.
async fn revoked_after_the_copy() -> (TestRelay, tempfile::TempDir, [Home; 4], DocId) {
    let (relay, dir, [mut laptop, phone, desk], case) = laptop_phone_desk().await;
    let mut chen = init(&dir.path().join("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
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
    sync(&mut chen).await;
    let relay = relay.restore(copy.path()).await;
    (relay, dir, [laptop, phone, desk, chen], case)
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
/// the restored relay: it shares the case with Dr. Osei there, and opens a
/// case of its own shared with him, before anyone else writes to the log;
/// the desk, never told, then pairs a watch. The laptop makes the
/// revocation again on top of the watch and ends the phone's shares: Dr.
/// Osei never reads what the laptop wrote after the revocation, nor what
/// anyone writes now; the desk, the watch and Dr. Chen, who reads the
/// case and waits until then, read every note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_the_revoked_device_granted_on_the_restored_relay_is_ended_again() {
    let (relay, dir, [mut laptop, mut phone, mut desk, mut chen], case) =
        revoked_after_the_copy().await;
    let at = |name: &str| dir.path().join(name);
    let mut osei = init(&at("osei"), &relay, "Dr. Osei");
    sync(&mut osei).await;
    sync(&mut phone).await;
    befriend(&mut phone, "Dr. Osei", &osei.account_id());
    share_case(&mut phone, &case, "Dr. Osei", "read", true).await;
    let opened = case_with_a_plan(&mut phone, "from the phone");
    sync(&mut phone).await;
    share_case(&mut phone, &opened, "Dr. Osei", "read", true).await;
    // And one it shares with no one: it knows the key.
    let quiet = case_with_a_plan(&mut phone, "quiet");
    sync(&mut phone).await;
    let phones = phone.access().doc_epochs(&quiet).unwrap();
    sync(&mut osei).await;
    assert!(osei.list_notes(&case).is_ok(), "the share took");
    assert_eq!(plan_of(&mut osei, &opened), "from the phone");
    let mut watch = pair(&mut desk, &at("watch"), &relay).await;
    sync(&mut watch).await;
    let r = try_sync(&mut chen)
        .await
        .expect("the rest of the round goes on");
    assert_eq!(r.logs_refused.len(), 1, "{r:?}");

    laptop
        .add_note(&case, free_note("after the share"))
        .unwrap();
    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    assert_revoked(&mut phone).await;
    let trail = laptop.trail().entries().unwrap();
    for doc in [case, opened] {
        let members = laptop.access().doc_meta(&doc).unwrap().unwrap().members;
        assert!(
            !members.iter().any(|(m, _, _)| *m == osei.account_id()),
            "{members:?}"
        );
        assert!(
            trail
                .iter()
                .any(|r| r.case == Some(doc) && r.what.contains("ended again")),
            "the trail says so"
        );
    }
    let epoch = laptop.access().doc_meta(&quiet).unwrap().unwrap().epoch;
    assert!(!phones.contains(&epoch), "{phones:?} {epoch}");
    assert!(
        trail
            .iter()
            .any(|r| r.case == Some(quiet) && r.what.contains("changed this case's access")),
        "the trail says so"
    );
    for home in [&mut laptop, &mut desk, &mut watch, &mut chen] {
        assert_clean(&sync(home).await);
    }
    desk.add_note(&case, free_note("after the turn")).unwrap();
    set_plan(&mut desk, &opened, "from the phone, read at the desk");
    sync(&mut desk).await;
    let all = notes_of(&mut laptop, &case);
    assert_eq!(all.len(), 4, "{all:?}");
    for home in [&mut desk, &mut watch, &mut chen] {
        sync(home).await;
        let mut theirs = notes_of(home, &case);
        theirs.retain(|n| n != "after the turn");
        assert_eq!(theirs, all, "{}", home.name());
    }
    let _ = try_sync(&mut osei).await;
    let seen = notes_of(&mut osei, &case);
    assert!(
        !seen.iter().any(|n| n.contains("after")),
        "Dr. Osei reads what was written after the revocation: {seen:?}"
    );
    assert_eq!(plan_of(&mut osei, &opened), "from the phone");
    relay.stop().await;
}

/// The laptop revokes the phone after the copy and writes a note, and Dr.
/// Chen, who reads the case, learns of the revocation. Restored, the relay
/// shows the phone active; the desk, never told, pairs a watch there. Dr.
/// Chen's device refuses the relay's log, which lacks the revocation, until
/// the laptop makes it again on top of the watch, to the key it made: the
/// phone is cut off, the desk and the watch read every note, the laptop's
/// after the revocation too, and a note the desk writes now reaches Dr.
/// Chen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_the_restored_relay_lost_is_made_again_where_the_device_signed_nothing() {
    let (relay, dir, [mut laptop, mut phone, mut desk, mut chen], case) =
        revoked_after_the_copy().await;
    let at = |name: &str| dir.path().join(name);
    let after_revocation = laptop.access().doc_meta(&case).unwrap().unwrap().epoch;
    let mut watch = pair(&mut desk, &at("watch"), &relay).await;
    sync(&mut watch).await;
    let r = try_sync(&mut chen)
        .await
        .expect("the rest of the round goes on");
    let [refused] = &r.logs_refused[..] else {
        panic!("{r:?}")
    };
    assert!(
        refused.reason.contains("took another turn")
            && refused.reason.contains("lacks devices or revocations"),
        "{refused:?}"
    );

    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    let state = laptop.account_state().unwrap();
    assert!(!state.is_active(&phone.device_id()));
    assert!(state.is_active(&watch.device_id()));
    assert_revoked(&mut phone).await;
    let took = sync(&mut chen).await;
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    for home in [&mut laptop, &mut desk, &mut watch, &mut chen] {
        assert_clean(&sync(home).await);
    }
    let all = notes_of(&mut laptop, &case);
    assert!(all.iter().any(|n| n == "after the revocation"), "{all:?}");
    for home in [&mut desk, &mut watch, &mut chen] {
        assert_eq!(notes_of(home, &case), all, "{}", home.name());
    }
    for home in [&mut desk, &mut watch] {
        assert_eq!(
            home.account_state().unwrap(),
            laptop.account_state().unwrap()
        );
    }
    // The case moved to a key the phone never held, one epoch past the
    // rotation that followed the revocation here: so a later entry the
    // phone signed at the account log's length before the revocation made
    // again would not verify.
    let epoch = laptop.access().doc_meta(&case).unwrap().unwrap().epoch;
    assert_eq!(epoch, after_revocation + 1);
    for home in [&mut desk, &mut watch, &mut chen] {
        let meta = home.access().doc_meta(&case).unwrap().unwrap();
        assert_eq!(meta.epoch, epoch, "{}", home.name());
    }
    assert!(!phone.access().doc_epochs(&case).unwrap().contains(&epoch));
    // What the desk writes under it reaches Dr. Chen.
    desk.add_note(&case, free_note("after the turn")).unwrap();
    sync(&mut desk).await;
    sync(&mut chen).await;
    assert!(
        notes_of(&mut chen, &case)
            .iter()
            .any(|n| n == "after the turn")
    );
    relay.stop().await;
}

/// As above, but the phone, a device again on the restored relay, pairs a
/// watch there. The laptop cuts the watch, makes the phone's revocation
/// again, both to new account keys (the key the revocation made here would
/// reach the watch), and moves every case on: the desk and Dr. Chen read
/// every note, the laptop's after the revocation too, and neither the
/// phone nor the watch is a device any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_revoked_one_paired_on_the_restored_relay_is_cut() {
    let (relay, dir, [mut laptop, mut phone, mut desk, mut chen], case) =
        revoked_after_the_copy().await;
    let at = |name: &str| dir.path().join(name);
    let mut watch = pair(&mut phone, &at("watch"), &relay).await;
    sync(&mut watch).await;
    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    let state = laptop.account_state().unwrap();
    for gone in [&phone, &watch] {
        assert!(!state.is_active(&gone.device_id()), "{}", gone.name());
    }
    assert_revoked(&mut phone).await;
    assert_revoked(&mut watch).await;
    // No account key made since the watch was paired is wrapped to it.
    let log = laptop.account_log().unwrap();
    let wrapped_to_watch = log.iter().any(|e| {
        matches!(
            e.open::<AccountEntry>(account::SIG_LABEL).map(|e| e.op),
            Ok(AccountOp::RevokeDevice { wraps, .. }) if wraps.iter().any(|(d, _)| *d == watch.device_id())
        )
    });
    assert!(!wrapped_to_watch);
    let took = sync(&mut chen).await;
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    for home in [&mut laptop, &mut desk, &mut chen] {
        assert_clean(&sync(home).await);
    }
    assert_clean(&sync(&mut laptop).await);
    let all = notes_of(&mut laptop, &case);
    assert!(all.iter().any(|n| n == "after the revocation"), "{all:?}");
    for home in [&mut desk, &mut chen] {
        assert_eq!(notes_of(home, &case), all, "{}", home.name());
    }
    assert_eq!(
        desk.account_state().unwrap(),
        laptop.account_state().unwrap()
    );
    // What the desk writes now reaches Dr. Chen and the laptop; the watch
    // holds no key of the epoch it is written under.
    desk.add_note(&case, free_note("after the turn")).unwrap();
    sync(&mut desk).await;
    for home in [&mut chen, &mut laptop] {
        sync(home).await;
        assert!(notes_of(home, &case).iter().any(|n| n == "after the turn"));
    }
    let epoch = desk.access().doc_meta(&case).unwrap().unwrap().epoch;
    assert!(!watch.access().doc_epochs(&case).unwrap().contains(&epoch));
    relay.stop().await;
}

/// The phone, a device again on the restored relay, revokes the desk there
/// before the laptop syncs. A revocation is not undone: the laptop takes
/// the relay's log, makes the phone's revocation again on top of it, and
/// says the desk stays revoked (it pairs again); the desk and the phone
/// are told they are revoked, and Dr. Chen reads every note, the laptop's
/// after the revocation and after the turn too, under a key the phone
/// never held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_revoked_one_revoked_on_the_restored_relay_stays_revoked() {
    let (relay, _dir, [mut laptop, mut phone, mut desk, mut chen], case) =
        revoked_after_the_copy().await;
    let conn = phone.connect().await.unwrap();
    phone.revoke(&conn, &desk.device_id()).await.unwrap();
    conn.close().await;

    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    assert_eq!(joined.stay_revoked, vec![desk.device_id()], "{joined:?}");
    let said = laptop.trail().entries().unwrap();
    let desk_short = desk.device_id().short();
    assert!(
        said.iter()
            .any(|r| r.what.contains("stay revoked") && r.what.contains(&desk_short)),
        "the trail names the desk"
    );
    let state = laptop.account_state().unwrap();
    assert!(!state.is_active(&phone.device_id()));
    assert!(!state.is_active(&desk.device_id()));
    assert_revoked(&mut phone).await;
    assert_revoked(&mut desk).await;
    laptop.add_note(&case, free_note("after the turn")).unwrap();
    assert_clean(&sync(&mut laptop).await);
    let took = sync(&mut chen).await;
    assert_eq!(took.logs_turned, vec![laptop.account_id()], "{took:?}");
    assert_clean(&sync(&mut chen).await);
    let notes = notes_of(&mut chen, &case);
    for note in ["after the revocation", "after the turn"] {
        assert!(notes.iter().any(|n| n == note), "{note}: {notes:?}");
    }
    // The case's newest key is sealed to an account key made after the one
    // the phone's revocation of the desk made, which the phone holds.
    let phone_made = (laptop.account_log().unwrap().iter())
        .filter(|e| e.signer == phone.device_id())
        .filter_map(
            |e| match e.open::<AccountEntry>(account::SIG_LABEL).map(|e| e.op) {
                Ok(AccountOp::RevokeDevice { key, .. }) => Some(key.generation),
                _ => None,
            },
        )
        .max()
        .expect("the phone's revocation of the desk");
    for home in [&laptop, &chen] {
        let meta = home.access().doc_meta(&case).unwrap().unwrap();
        let sealed_to = meta.wrap_generation(meta.epoch, &laptop.account_id());
        assert!(
            sealed_to > Some(phone_made),
            "{}: {sealed_to:?}",
            home.name()
        );
    }
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

/// Dr. Chen's device does not take the phone's share until the laptop has
/// ended it. The laptop's round that makes the revocation again loses its
/// access entries on the way (a relay in the middle drops them); Dr. Chen,
/// syncing then, holds the case back, named, rather than write under a key
/// Dr. Osei holds. Once the laptop's entries land, she takes the case, and
/// Dr. Osei reads nothing written after the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_waits_until_the_laptop_ended_the_phones_share() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &hostile, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    for home in [&mut phone, &mut desk, &mut chen] {
        sync(home).await;
    }
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    let (relay, copy) = relay.copy().await;
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    laptop
        .add_note(&case, free_note("after the revocation"))
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut chen).await;

    let relay = relay.restore(copy.path()).await;
    let mut osei = init(&at("osei"), &relay, "Dr. Osei");
    sync(&mut osei).await;
    sync(&mut phone).await;
    befriend(&mut phone, "Dr. Osei", &osei.account_id());
    share_case(&mut phone, &case, "Dr. Osei", "read", true).await;
    sync(&mut osei).await;
    let _watch = pair(&mut desk, &at("watch"), &relay).await;

    hostile.intercept(|r| {
        matches!(r, Request::AppendAccess { .. }).then(|| Response::Error {
            code: ErrorCode::Internal,
            reason: "dropped on the way".into(),
        })
    });
    let _ = try_sync(&mut laptop).await;
    assert!(
        !laptop
            .account_state()
            .unwrap()
            .is_active(&phone.device_id())
    );
    let r = try_sync(&mut chen)
        .await
        .expect("the rest of the round goes on");
    assert_eq!(r.logs_turned, vec![laptop.account_id()], "{r:?}");
    assert!(
        r.refused
            .iter()
            .any(|x| x.doc == case && x.reason.contains("an owner's device undoes")),
        "{r:?}"
    );

    hostile.clear();
    sync(&mut laptop).await;
    assert_clean(&sync(&mut chen).await);
    let notes = notes_of(&mut chen, &case);
    assert!(
        notes.iter().any(|n| n == "after the revocation"),
        "{notes:?}"
    );
    let _ = try_sync(&mut osei).await;
    let seen = notes_of(&mut osei, &case);
    assert!(!seen.iter().any(|n| n.contains("after")), "{seen:?}");
    relay.stop().await;
}

/// The phone pairs a tablet after the copy, the tablet a watch, and the
/// laptop syncs both in. Restored, the relay lacks them; the desk, never
/// told of them, revokes the phone there as lost. The tablet and the
/// watch, paired by a device the relay's log now revokes, may be a
/// thief's: the laptop takes the relay's log without them (shorter than
/// the one it held), says so, and moves the case to a key they never
/// held; the tablet is told it is no device any more, and the desk reads
/// what the laptop writes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_relays_revoked_one_paired_after_the_copy_is_left_out() {
    let (relay, dir, [mut laptop, mut phone, mut desk], case) = laptop_phone_desk().await;
    let (relay, copy) = relay.copy().await;
    let mut tablet = pair(&mut phone, &dir.path().join("tablet"), &relay).await;
    sync(&mut tablet).await;
    let watch = pair(&mut tablet, &dir.path().join("watch"), &relay).await;
    sync(&mut laptop).await;
    let held = laptop.account_log().unwrap().len();
    let relay = relay.restore(copy.path()).await;
    let conn = desk.connect().await.unwrap();
    desk.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    let held_epoch = laptop.access().doc_meta(&case).unwrap().unwrap().epoch;

    let joined = sync(&mut laptop).await;
    assert_eq!(joined.logs_turned, vec![laptop.account_id()], "{joined:?}");
    let left_out = vec![tablet.device_id(), watch.device_id()];
    assert_eq!(joined.stay_revoked, left_out, "{joined:?}");
    let state = laptop.account_state().unwrap();
    assert!(!state.devices.contains_key(&tablet.device_id()));
    assert_eq!(laptop.account_log().unwrap().len(), held - 1);
    // Told so: no account on the relay lists it.
    let refused = try_sync(&mut tablet).await.unwrap_err();
    assert!(
        matches!(
            refused,
            casebook::Error::Rollback(casebook::sync::RollbackError::NotListed(_))
        ),
        "{refused}"
    );
    laptop.add_note(&case, free_note("after the turn")).unwrap();
    assert_clean(&sync(&mut laptop).await);
    assert_clean(&sync(&mut desk).await);
    assert!(
        notes_of(&mut desk, &case)
            .iter()
            .any(|n| n == "after the turn")
    );
    assert_eq!(desk.account_state().unwrap(), state);
    // The laptop moved the case to a new key (a case the desk never held
    // would otherwise stay at one the tablet holds), sealed to the account
    // key the desk's revocation made, which the tablet never held.
    let meta = laptop.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.epoch, held_epoch + 1);
    let sealed_to = meta.wrap_generation(meta.epoch, &laptop.account_id());
    assert_eq!(sealed_to, Some(state.key.generation));
    relay.stop().await;
}
