//! What the CLI gets back when the relay hides what devices hold: a
//! snapshot lost before another device fetched what it covered, and a
//! change whose device can no longer send it again. Each test edits the
//! relay's database between syncs.

mod common;

use common::damage::*;
use common::*;

/// A note's field of about 9 KiB of text: enough, on its own, for the
/// snapshot of the device that fetches it.
fn long_text() -> String {
    format!("subjective={}", "Talked about the week. ".repeat(400))
}

/// Dr. Rivera's laptop and tablet holding the case of Jordan Avery, shared
/// with Dr. Chen to write, who has synced it once.
fn with_colleague(
    relay: &Relay,
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let (laptop, tablet, case) = laptop_and_tablet(relay, dir);
    let chen = dir.join("chen");
    init_at(&chen, relay, "Dr. Chen");
    befriend(&laptop, &chen, "Dr. Chen");
    ok(&laptop, &share_args(&case, "Dr. Chen", "write", &[]));
    ok(&chen, &["sync"]);
    (laptop, tablet, chen, case)
}

/// The relay loses the snapshot of `case` its owner's device took.
fn lose_snapshot(relay: &Relay, case: &str) {
    let lost = relay_db(relay)
        .execute(
            "DELETE FROM snapshots WHERE doc = ?1",
            [hex::decode(case).unwrap()],
        )
        .unwrap();
    assert_eq!(lost, 1, "the owner's sync took a snapshot");
}

/// The relay loses a snapshot before a colleague fetched the changes it
/// covers (and dropped, with the signals that told of them). The owner's
/// device sent, after the snapshot, a change that builds on all it holds:
/// the colleague's device, served that, names the case INCOMPLETE rather
/// than silently lacking the notes, and asks; the owner's next sync sends
/// its changes under the one asked for, the whole run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_lost_before_a_colleague_fetched_it_is_named_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    snapshot_lost_and_sent_again(&relay, &case, (&rivera, &chen));
}

/// The same on the account's own devices, in a case shared with nobody:
/// the claims that name the lost changes travel with the audit entries,
/// which no snapshot of the case covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_lost_before_the_other_device_fetched_it_is_named_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, case) = laptop_and_tablet(&relay, dir.path());
    snapshot_lost_and_sent_again(&relay, &case, (&laptop, &tablet));
}

/// `owner` adds two notes to `case` (one long enough for a snapshot) and
/// syncs, and the relay loses the snapshot it took: `other` names the case
/// INCOMPLETE (exit 4) and asks; one sync of the owner's later, one of
/// `other` holds both notes.
fn snapshot_lost_and_sent_again(
    relay: &Relay,
    case: &str,
    (owner, other): (&std::path::Path, &std::path::Path),
) {
    ok(
        owner,
        &["note", "add", case, "--field", "plan=Sleep diary."],
    );
    let long = long_text();
    ok(owner, &["note", "add", case, "--field", &long]);
    ok(owner, &["sync"]);
    lose_snapshot(relay, case);

    names_a_gap(other);
    assert!(!finds(other, "Sleep diary"));
    ok(owner, &["sync"]);
    ok(other, &["sync"]);
    assert!(finds(other, "Sleep diary") && finds(other, "Talked about the week"));
    assert!(!ok(other, &["status"]).contains("INCOMPLETE"));
}

/// A colleague's note the relay loses after the owner's laptop fetched it,
/// and the share then ended: the colleague can no longer send it again.
/// The owner's tablet, served the laptop's later edit of that note, lacks
/// what the edit builds on and asks; the laptop, an owner's device, sends
/// the colleague's change on its behalf, and the tablet holds both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_device_can_no_longer_send_it_is_sent_by_the_owners_device() {
    lost_colleagues_note_sent_by_the_laptop(true).await;
}

/// The same while the share lasts, the colleague's device away: the
/// tablet's one ask is answered by the laptop at once, not left until the
/// colleague next syncs (by when the share may have ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_device_is_away_is_sent_by_the_owners_device() {
    lost_colleagues_note_sent_by_the_laptop(false).await;
}

/// Dr. Chen adds a note the relay loses after the laptop fetched it; the
/// share ends if `unshare`; the laptop edits the note; the tablet names the
/// gap, and after one sync of the laptop's (none of Dr. Chen's) holds both.
async fn lost_colleagues_note_sent_by_the_laptop(unshare: bool) {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, chen, case) = with_colleague(&relay, dir.path());
    let note = ok(
        &chen,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    )
    .trim()
    .to_string();
    ok(&chen, &["sync"]);
    ok(&laptop, &["sync"]);
    lose_newest(&relay, &case);
    if unshare {
        ok(&laptop, &["unshare", &case, "--with", "Dr. Chen"]);
    }
    ok(
        &laptop,
        &[
            "note",
            "edit",
            &case,
            &note,
            "--field",
            "subjective=Slept better.",
        ],
    );
    ok(&laptop, &["sync"]);

    names_a_gap(&tablet);
    ok(&laptop, &["sync"]);
    ok(&tablet, &["sync"]);
    assert!(finds(&tablet, "Sleep diary") && finds(&tablet, "Slept better"));
    assert!(!ok(&tablet, &["status"]).contains("INCOMPLETE"));
    let trail = ok(&laptop, &["audit", "--case", &case]);
    assert!(trail.contains("sent on their behalf"), "{trail}");
}

/// A colleague's note the relay loses (a restore renumbered upward would
/// lose it the same way) after only the owner's laptop fetched it, with
/// nothing built on it, and the share then ended. Dr. Okafor's long note,
/// written without it, gives the tablet a snapshot that covers past it and
/// lacks it. Nothing names the note to the tablet; the laptop, served that
/// snapshot, sees that it lacks a change it fetched below what the snapshot
/// covers, and sends it on Dr. Chen's behalf. (The relay keeps its
/// numbers as they were when rows are deleted under it: no rewind tells.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_change_a_covering_snapshot_lacks_is_sent_by_the_owners_device() {
    covering_snapshot_served_to_the_laptop(true).await;
}

/// The same with nothing lost: the snapshot holds Dr. Chen's note, and the
/// laptop sends nothing on anybody's behalf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_covering_snapshot_that_lacks_nothing_sends_nothing_on_others_behalf() {
    covering_snapshot_served_to_the_laptop(false).await;
}

/// Dr. Chen adds a note, which the laptop fetches and the relay loses if
/// `lose`; the share ends; Dr. Okafor's long note gives the tablet a
/// snapshot, which the laptop is then served.
async fn covering_snapshot_served_to_the_laptop(lose: bool) {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, chen, case) = with_colleague(&relay, dir.path());
    let okafor = dir.path().join("okafor");
    init_at(&okafor, &relay, "Dr. Okafor");
    befriend(&laptop, &okafor, "Dr. Okafor");
    ok(&laptop, &share_args(&case, "Dr. Okafor", "write", &[]));
    ok(&okafor, &["sync"]);
    ok(&tablet, &["sync"]);

    ok(
        &chen,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    );
    ok(&chen, &["sync"]);
    ok(&laptop, &["sync"]);
    if lose {
        lose_newest(&relay, &case);
    }
    ok(&laptop, &["unshare", &case, "--with", "Dr. Chen"]);
    ok(&laptop, &["sync"]);
    let long = long_text();
    ok(&okafor, &["note", "add", &case, "--field", &long]);
    ok(&okafor, &["sync"]);
    ok(&tablet, &["sync"]);
    assert_eq!(finds(&tablet, "Sleep diary"), !lose);

    ok(&laptop, &["sync"]);
    ok(&tablet, &["sync"]);
    assert!(finds(&tablet, "Sleep diary") && finds(&tablet, "Talked about the week"));
    let trail = ok(&laptop, &["audit", "--case", &case]);
    assert_eq!(trail.contains("missing from a snapshot"), lose, "{trail}");
    assert_eq!(trail.contains("on their behalf"), lose, "{trail}");
}

/// A colleague's note that the owner's laptop fetched and then covered
/// with a snapshot the relay lost, before the owner's tablet fetched it:
/// the colleague's signal naming the note went with what the snapshot
/// covered, and the laptop made no change of its own since. Only the
/// change the laptop sent after its snapshot, which builds on the note,
/// tells the tablet what it lacks; the colleague's device answers its ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_snapshot_over_a_colleagues_note_is_named_by_the_change_after_it() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, chen, case) = with_colleague(&relay, dir.path());
    ok(&tablet, &["sync"]);
    let long = long_text();
    ok(&chen, &["note", "add", &case, "--field", &long]);
    ok(&chen, &["sync"]);
    ok(&laptop, &["sync"]);
    lose_snapshot(&relay, &case);

    names_a_gap(&tablet);
    ok(&chen, &["sync"]);
    ok(&tablet, &["sync"]);
    assert!(finds(&tablet, "Talked about the week"));
    assert!(!ok(&tablet, &["status"]).contains("INCOMPLETE"));
}

/// The change the owner's device sends after a snapshot edits nothing, and
/// a colleague's trail does not say the owner edited the case when the
/// owner only took a snapshot of the colleague's note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_after_a_snapshot_is_no_edit_in_a_colleagues_trail() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case_as(&relay, dir.path(), "write");
    // The case as first received: the owner's edits, named once.
    let edited = |home: &std::path::Path| {
        ok(home, &["audit", "--case", &case])
            .matches("edited the case")
            .count()
    };
    let before = edited(&chen);
    assert_eq!(before, 1);
    let long = long_text();
    ok(&chen, &["note", "add", &case, "--field", &long]);
    ok(&chen, &["sync"]);
    ok(&rivera, &["sync"]);
    let snapshots: i64 = relay_db(&relay)
        .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(snapshots, 1, "the owner's sync took a snapshot");
    ok(&chen, &["sync"]);
    assert_eq!(edited(&chen), before, "no edit of the owner's since");
    assert!(finds(&chen, "Talked about the week"));
}
