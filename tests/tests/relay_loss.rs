//! A relay that loses envelopes (someone with its disk deletes rows, or a
//! restore brings back an older copy), and what its devices make of it:
//! what they can tell is missing they name, and what they hold that the
//! relay lost they send again.

use casebook::notes::{NoteFormat, NoteInput};
use casebook::sync::SNAPSHOT_EVERY;
use casebook_shared::ids::DocId;
use casebook_tests::*;

fn note(i: u64) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::parse("free").unwrap());
    n.fields = vec![("text".into(), format!("session {i}"))];
    n
}

/// Deletes the newest stored envelope of `doc` from the relay's database
/// (the relay stopped), returning its sequence number.
fn delete_newest(data: &std::path::Path, doc: &DocId) -> i64 {
    let db = rusqlite::Connection::open(data.join("relay.db")).unwrap();
    let seq: i64 = db
        .query_row(
            "SELECT MAX(seq) FROM envelopes WHERE doc = ?1",
            [&doc.0[..]],
            |r| r.get(0),
        )
        .unwrap();
    db.execute("DELETE FROM envelopes WHERE seq = ?1", [seq])
        .unwrap();
    seq
}

/// The relay loses the laptop's newest change before the tablet has it,
/// and the audit envelope that told the tablet of it (see
/// `casebook::sync` on claims; were that told, the tablet would name the
/// case incomplete and take no snapshot). The tablet writes on and
/// snapshots the case, so the relay drops every change the snapshot
/// covers. The laptop, taking that snapshot, sees that it lacks a change of
/// its own the relay acknowledged before it, and sends it again: the
/// tablet gets it, and the trail says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_relay_lost_under_a_snapshot_is_sent_again_by_its_device() {
    let relay = TestRelay::start().await;
    let addr = relay.handle.addr;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs).await;
    set_plan(&mut laptop, &case, "walk daily, sleep diary");
    sync(&mut laptop).await;

    let data = relay.stop().await;
    delete_newest(data.path(), &case);
    let audit = casebook::audit_sync::audit_doc(&laptop.account_id());
    delete_newest(data.path(), &audit);
    let relay = TestRelay::restart(data, addr).await;

    for i in 0..SNAPSHOT_EVERY {
        tablet.add_note(&case, note(i)).unwrap();
    }
    let wrote = sync(&mut tablet).await;
    assert!(wrote.snapshots_out >= 1, "{wrote:?}");
    assert_eq!(plan_of(&mut tablet, &case), "walk daily");

    let healed = sync(&mut laptop).await;
    assert_eq!(healed.resent, 1, "{healed:?}");
    assert!(healed.refused.is_empty() && healed.incomplete.is_empty());
    let trail = laptop.trail().entries().unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.what.contains("missing from the relay") && r.case == Some(case)),
        "the trail says so"
    );
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "walk daily, sleep diary");
    assert_eq!(
        tablet.list_notes(&case).unwrap().len() as u64,
        SNAPSHOT_EVERY + 1
    );

    // Once sent again, it is not sent a third time.
    let again = sync(&mut laptop).await;
    assert_eq!(again.resent, 0, "{again:?}");
    relay.stop().await;
}

/// The relay's data folder is restored from a copy taken before the laptop
/// and the tablet wrote more, and the relay is started again: it has lost
/// what they wrote since. Neither is locked out. Each fetches again what
/// the relay has, and sends back what it holds, so the relay is made whole:
/// a device recovered from the recovery words afterwards finds every note,
/// and new edits flow both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restored_from_an_older_copy_is_made_whole_by_its_devices() {
    let relay = TestRelay::start().await;
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let (mut laptop, words) = init_with_words(dirs[0].path(), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut tablet).await;
    let mut chen = init(dirs[3].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let (_, chen_account, _, _) = chen.whoami();
    befriend(&mut laptop, "Dr. Chen", &chen_account);

    // The copy, taken with the relay stopped.
    let (relay, copy) = relay.copy().await;

    set_plan(&mut laptop, &case, "walk daily, sleep diary");
    sync(&mut laptop).await;
    // A share made after the copy: an access entry the restored relay lacks.
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    assert_eq!(plan_of(&mut chen, &case), "walk daily, sleep diary");
    sync(&mut tablet).await;
    tablet.add_note(&case, note(1)).unwrap();
    sync(&mut tablet).await;
    sync(&mut laptop).await;
    assert_eq!(laptop.list_notes(&case).unwrap().len(), 2);

    // Restored from the copy.
    let relay = relay.restore(copy.path()).await;

    let healed = sync(&mut laptop).await;
    assert!(healed.rewound.contains(&case), "{healed:?}");
    assert_eq!(healed.access_healed, vec![case], "{healed:?}");
    assert!(
        healed.refused.is_empty() && healed.incomplete.is_empty(),
        "{healed:?}"
    );
    let healed = sync(&mut tablet).await;
    assert!(
        healed.refused.is_empty() && healed.incomplete.is_empty(),
        "{healed:?}"
    );
    for home in [&mut laptop, &mut tablet] {
        assert_eq!(plan_of(home, &case), "walk daily, sleep diary");
        assert_eq!(home.list_notes(&case).unwrap().len(), 2);
    }

    // What the relay holds now is whole: a device recovered from the words
    // finds both notes and the plan.
    let mut fresh = casebook::devices::recover(
        dirs[2].path(),
        PASSPHRASE,
        &words,
        "Dr. Rivera",
        &relay.addr(),
        relay.handle.fingerprint,
    )
    .await
    .expect("recovered against the healed relay");
    sync(&mut fresh).await;
    assert_eq!(plan_of(&mut fresh, &case), "walk daily, sleep diary");
    assert_eq!(fresh.list_notes(&case).unwrap().len(), 2);

    // The colleague still reads the case, and what was written since.
    sync(&mut chen).await;
    assert_eq!(chen.list_notes(&case).unwrap().len(), 2);

    // And edits flow both ways again.
    set_plan(&mut tablet, &case, "walk daily, sleep diary, breathing");
    sync(&mut tablet).await;
    sync(&mut laptop).await;
    assert_eq!(
        plan_of(&mut laptop, &case),
        "walk daily, sleep diary, breathing"
    );
    relay.stop().await;
}

/// The comments on note `n1` of `case`, as `home` shows them.
fn comments_of(home: &mut casebook::Home, case: &DocId) -> Vec<String> {
    home.docs()
        .read_case(case, |c| {
            let n = c.note("n1").expect("note n1");
            n.comments.iter().map(|r| r.text.clone()).collect()
        })
        .expect("the case reads")
}

/// A colleague's comment that only the owner's tablet fetched before the
/// relay was restored from an older copy, whose colleague syncs no more.
/// The laptop writes first after the restore, so the relay numbers on
/// above what the tablet had seen and no rewind shows the loss; nothing
/// builds on the comment, so nobody can name it missing. But the tablet
/// sends back the end of its account's log (a device paired after the
/// copy), which shows the relay lost data: it fetches every case whole,
/// finds the comment not served, and sends it on the colleague's behalf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_comment_one_device_held_is_sent_back_after_a_restore() {
    restored_after_a_comment(true).await;
}

/// The same with no comment written after the copy: the tablet, fetching
/// every case whole, sends nothing back (the relay lacks none of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_the_restore_lost_nothing_of_is_not_sent_back() {
    restored_after_a_comment(false).await;
}

async fn restored_after_a_comment(comment: bool) {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs[..2]).await;
    let mut chen = init(dirs[2].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let (_, chen_account, _, _) = chen.whoami();
    befriend(&mut laptop, "Dr. Chen", &chen_account);
    share_case(&mut laptop, &case, "Dr. Chen", "comment", true).await;
    sync(&mut chen).await;
    // A change of the tablet's own, which the relay keeps: served back to
    // it as an echo, it is not sent again.
    tablet
        .add_note(&case, free_note("seen on the tablet"))
        .unwrap();
    sync(&mut tablet).await;

    let (relay, copy) = relay.copy().await;
    let _phone = pair(&mut tablet, dirs[3].path(), &relay).await;
    if comment {
        chen.comment_note(&case, "n1", "Consider a sleep referral.")
            .unwrap();
        sync(&mut chen).await;
    }
    sync(&mut tablet).await;
    assert_eq!(comments_of(&mut tablet, &case).len(), usize::from(comment));

    let relay = relay.restore(copy.path()).await;
    set_plan(&mut laptop, &case, "walk daily, sleep diary");
    assert_clean(&sync(&mut laptop).await);
    let healed = sync(&mut tablet).await;
    assert_clean(&healed);
    assert_eq!(healed.logs_healed, vec![laptop.account_id()], "{healed:?}");
    assert_eq!(healed.resent, usize::from(comment), "{healed:?}");

    assert_clean(&sync(&mut laptop).await);
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep diary");
    assert_eq!(comments_of(&mut laptop, &case).len(), usize::from(comment));
    assert_eq!(laptop.list_notes(&case).unwrap().len(), 2);
    let trail = tablet.trail().entries().unwrap();
    assert_eq!(
        trail.iter().any(|r| r.what.contains("on their behalf")),
        comment,
        "the trail says so"
    );
    // Once sent back, nothing is fetched whole or sent again.
    let again = sync(&mut tablet).await;
    assert_eq!(again.resent, 0, "{again:?}");
    let looked = tablet.trail().entries().unwrap();
    let looked = looked
        .iter()
        .filter(|r| r.what.contains("fetched again whole"));
    assert_eq!(looked.count(), 1, "one look for what the relay lost");
    relay.stop().await;
}

/// Stops the relay, deletes the newest stored envelope of `doc`, and starts
/// it again on the same address.
async fn lose_newest(relay: TestRelay, doc: &DocId) -> TestRelay {
    let addr = relay.handle.addr;
    let data = relay.stop().await;
    delete_newest(data.path(), doc);
    TestRelay::restart(data, addr).await
}

/// The relay loses the tablet's change, and then the copy the tablet sent
/// again when the laptop asked for it. The laptop, still lacking it, asks
/// again an hour later (not before), and the change arrives. (The laptop
/// writes after each loss, so the relay's numbers run on past what the
/// tablet had sent and no rewind tells the tablet.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_answer_the_relay_lost_is_asked_for_again() {
    let relay = TestRelay::start().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let setup = casebook::home::Setup {
        clock: casebook_shared::clock::Clock::adjustable(),
        ..Default::default()
    };
    let (mut laptop, _) = casebook::Home::init_with(
        dirs[0].path(),
        PASSPHRASE,
        "Dr. Rivera",
        &relay.addr(),
        relay.handle.fingerprint,
        &setup,
    )
    .unwrap();
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut tablet).await;

    set_plan(&mut tablet, &case, "walk daily, sleep diary");
    sync(&mut tablet).await;
    let relay = lose_newest(relay, &case).await;
    laptop.add_note(&case, note(1)).unwrap();
    let gap = sync(&mut laptop).await;
    assert_eq!(gap.incomplete.len(), 1, "{gap:?}");

    let answered = sync(&mut tablet).await;
    assert!(answered.resent >= 1, "{answered:?}");
    let relay = lose_newest(relay, &case).await;
    laptop.add_note(&case, note(2)).unwrap();
    let still = sync(&mut laptop).await;
    assert_eq!(still.incomplete.len(), 1, "{still:?}");
    let unasked = sync(&mut tablet).await;
    assert_eq!(unasked.resent, 0, "not asked again within the hour");

    setup.clock.advance(casebook::store::ASK_AGAIN_AFTER);
    sync(&mut laptop).await;
    let answered = sync(&mut tablet).await;
    assert!(answered.resent >= 1, "{answered:?}");
    assert_clean(&sync(&mut laptop).await);
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep diary");
    relay.stop().await;
}
