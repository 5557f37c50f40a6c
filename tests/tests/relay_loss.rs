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

/// The relay loses the laptop's newest change before the tablet has it;
/// the tablet writes on and snapshots the case, so the relay drops every
/// change the snapshot covers. The laptop, taking that snapshot, sees that
/// it lacks a change of its own the relay acknowledged before it, and sends
/// it again: the tablet gets it, and the trail says so.
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
