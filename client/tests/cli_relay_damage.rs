//! What the CLI says, and what it still gets, when the relay's stored data
//! is damaged or loses envelopes: each test edits the relay's database
//! between syncs, as someone with its disk (or an unlucky restore) would.

mod common;

use common::damage::*;
use common::*;
use rusqlite::params;

/// A sync that refused some of what the relay served lists it, says what
/// it means, and exits with its own code (3), apart from other failures.
/// The refused envelope is asked for again by every sync, so once the
/// relay's copy is put right it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_envelope_exits_with_its_own_code_and_arrives_once_mended() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    note_synced(&rivera, &case, "Sleep diary.");

    // Someone with the relay's disk flips a byte of the newest envelope.
    let (seq, good) = flip_a_byte_of_newest(&relay, &case);

    for _ in 0..2 {
        let out = run(&chen, &["sync"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "every sync says so: {err}");
        assert!(err.contains("warning: refused envelope"), "{err}");
        assert!(err.contains("was refused (listed above)"), "{err}");
        assert!(err.contains("tell whoever runs it"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!finds(&chen, "Sleep diary"), "nothing of it was applied");
    }

    // Two syncs, two processes: one line of the trail.
    let trail = ok(&chen, &["audit"]);
    assert_eq!(trail.matches("sync refused").count(), 1, "{trail}");

    set_bytes(&relay, seq, &good);
    ok(&chen, &["sync"]);
    assert!(finds(&chen, "Sleep diary"));
}

/// The stored bytes of a note the colleague's device had not fetched
/// swapped with those of one it holds: in the note's place it is served a
/// copy of what it holds. But the owner's device told it, with the note,
/// that the relay took the note, so the same sync fetches the case again
/// from its start, finds the note where the swap put it, and ends with
/// nothing missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_whose_bytes_were_swapped_with_a_held_ones_arrives_in_the_same_sync() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    note_synced(&rivera, &case, "Sleep diary.");
    ok(&chen, &["sync"]);
    note_synced(&rivera, &case, "Breathing exercise.");

    let rows = envelopes(&relay, &case);
    let (new, held) = (rows[0].clone(), rows[1].clone());
    for (seq, bytes) in [(new.0, &held.2), (held.0, &new.2)] {
        set_bytes(&relay, seq, bytes);
    }
    ok(&chen, &["sync"]);
    assert!(finds(&chen, "Breathing") && finds(&chen, "Sleep diary"));
    assert!(!ok(&chen, &["status"]).contains("INCOMPLETE"));
}

/// An envelope removed from the middle of a case's history: the note after
/// it builds on it, so the colleague's device names the case as
/// incomplete, exits with 4, and says so in `status`, rather than showing
/// a history with a hole. Put back, it arrives, and the note after it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_removed_from_the_middle_is_named_and_arrives_once_put_back() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    note_synced(&rivera, &case, "Sleep diary.");
    note_synced(&rivera, &case, "Breathing exercise.");

    let rows = envelopes(&relay, &case);
    let (seq, env_id, bytes) = rows[1].clone();
    lose(&relay, seq);

    let out = run(&chen, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("Jordan Avery"), "names the case: {err}");
    assert!(err.contains("is INCOMPLETE"), "{err}");
    assert!(err.contains("are incomplete (listed above)"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!finds(&chen, "Sleep diary") && !finds(&chen, "Breathing"));
    let status = ok(&chen, &["status"]);
    assert!(status.contains("INCOMPLETE"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&ok(&chen, &["--json", "status"])).unwrap();
    let incomplete = &json["incomplete"][0];
    assert_eq!(incomplete["case"], case.as_str(), "{json}");
    assert_eq!(incomplete["missing"], 1, "{json}");
    assert_eq!(incomplete["waiting"].as_array().unwrap().len(), 1, "{json}");

    // The same, for a script.
    let out = run(&chen, &["--json", "sync"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let err: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(err["error"]["code"], "incomplete_from_relay", "{err}");

    // Whoever runs the relay puts it back, where it was.
    put_back(&relay, &case, (seq, env_id, bytes));
    ok(&chen, &["sync"]);
    assert!(finds(&chen, "Sleep diary") && finds(&chen, "Breathing"));
    assert!(!ok(&chen, &["status"]).contains("INCOMPLETE"));
}

/// The same for a device that holds nothing of the case yet, whose very
/// first envelope the relay lost: nothing it is served can even wait
/// inside a document. The case is named INCOMPLETE (exit 4), and once the
/// envelope is back, all of it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_whose_first_envelope_is_gone_is_named_and_arrives_once_put_back() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen) = (dir.path().join("rivera"), dir.path().join("chen"));
    init_at(&rivera, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    let case = new_case(&rivera, "Jordan Avery");
    note_synced(&rivera, &case, "Sleep diary.");
    befriend(&rivera, &chen, "Dr. Chen");
    ok(&rivera, &share_args(&case, "Dr. Chen", "read", &[]));

    let (seq, env_id, bytes) = envelopes(&relay, &case).pop().unwrap();
    lose(&relay, seq);
    let out = run(&chen, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("is INCOMPLETE"), "{err}");
    assert!(!err.contains("refused"), "{err}");
    assert!(!finds(&chen, "Sleep diary"));

    put_back(&relay, &case, (seq, env_id, bytes));
    ok(&chen, &["sync"]);
    assert!(finds(&chen, "Sleep diary"));
    assert!(!ok(&chen, &["status"]).contains("INCOMPLETE"));
}

/// The newest change of a case lost by the relay: nothing builds on it, so
/// nothing served says it is missing. But the laptop that made it tells the
/// account's other devices, with its audit entries, which of its changes
/// the relay acknowledged: so the tablet names the case INCOMPLETE (exit 4,
/// with the device whose change it lacks) rather than silently lacking the
/// note, and asks for it. The laptop's next sync answers the ask by sending
/// the note again, and the tablet gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_change_lost_is_named_by_another_device_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, case) = laptop_and_tablet(&relay, dir.path());

    ok(
        &laptop,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    );
    ok(&laptop, &["sync"]);
    let (seq, _, _) = envelopes(&relay, &case).remove(0);
    lose(&relay, seq);

    for _ in 0..2 {
        let out = run(&tablet, &["sync"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains("Jordan Avery ("), "{err}");
        assert!(err.contains("is INCOMPLETE"), "{err}");
        assert!(
            err.contains("the relay acknowledged them from device(s)"),
            "{err}"
        );
        assert!(err.contains("of Dr. Rivera;"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!finds(&tablet, "Sleep diary"));
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&tablet, &["--json", "status"])).unwrap();
    let incomplete = &json["incomplete"][0];
    assert_eq!(incomplete["case"], case.as_str(), "{json}");
    assert_eq!(
        incomplete["claimed_by"].as_array().unwrap().len(),
        1,
        "{json}"
    );

    // The laptop answers the tablet's ask; the tablet gets the note.
    ok(&laptop, &["sync"]);
    ok(&tablet, &["sync"]);
    assert!(finds(&tablet, "Sleep diary"));
    assert!(!ok(&tablet, &["status"]).contains("INCOMPLETE"));
}

/// A change of the laptop's lost from under a later one: the tablet holds
/// the later note waiting for it, names the case INCOMPLETE, and asks the
/// account's other devices for what it lacks; the laptop sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_lost_from_under_a_later_one_is_asked_for_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, _) = first_lost_from_under_second(&relay, dir.path());

    let out = run(&tablet, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("is INCOMPLETE"), "{err}");
    assert!(!finds(&tablet, "Sleep diary") && !finds(&tablet, "Breathing"));

    ok(&laptop, &["sync"]);
    ok(&tablet, &["sync"]);
    assert!(finds(&tablet, "Sleep diary") && finds(&tablet, "Breathing"));
    assert!(!ok(&tablet, &["status"]).contains("INCOMPLETE"));
}

/// `home`'s sync names `case` INCOMPLETE (exit 4), with the change's
/// author as the one device the relay acknowledged it from, and `whom` as
/// whose device it is.
fn names_incomplete(home: &std::path::Path, case: &str, whom: &str) {
    let err = names_a_gap(home);
    assert!(
        err.contains("the relay acknowledged them from device(s)"),
        "{err}"
    );
    assert!(err.contains(&format!(" of {whom}")), "{err}");
    let json: serde_json::Value = serde_json::from_str(&ok(home, &["--json", "status"])).unwrap();
    assert_eq!(json["incomplete"][0]["case"], case, "{json}");
    assert_eq!(
        json["incomplete"][0]["claimed_by"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{json}"
    );
}

/// `author` adds a note to `case` and syncs, and the relay loses it: the
/// `other` side names the case INCOMPLETE, the note made on a device of
/// `whom`'s, and asks for it; the author's next sync sends it again, and
/// the other side gets it.
fn lost_and_sent_again(
    relay: &Relay,
    case: &str,
    (author, other): (&std::path::Path, &std::path::Path),
    whom: &str,
) {
    ok(
        author,
        &["note", "add", case, "--field", "plan=Sleep diary."],
    );
    ok(author, &["sync"]);
    lose_newest(relay, case);

    names_incomplete(other, case, whom);
    assert!(!finds(other, "Sleep diary"));
    ok(author, &["sync"]);
    ok(other, &["sync"]);
    assert!(finds(other, "Sleep diary"));
    assert!(!ok(other, &["status"]).contains("INCOMPLETE"));
}

/// Across accounts: the relay loses the owner's newest note of a case
/// shared to read. The owner's device told, in the case itself, which of
/// its changes the relay acknowledged; so the colleague's device names the
/// case INCOMPLETE rather than silently lacking the note, and asks for it
/// in the case (a reader may ask, though it may not write); the owner's
/// next sync sends the note again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_newest_change_lost_is_named_by_a_reader_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    // Dr. Chen never added Dr. Rivera as a contact: the account's short id.
    lost_and_sent_again(&relay, &case, (&rivera, &chen), "account ");
}

/// The other way: a colleague who may write adds a note, and the relay
/// loses it. The owner's device names the case INCOMPLETE and asks; the
/// colleague's next sync sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_newest_change_lost_is_named_by_the_owner_and_sent_again() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case_as(&relay, dir.path(), "write");
    ok(&rivera, &["sync"]);
    lost_and_sent_again(&relay, &case, (&chen, &rivera), "Dr. Chen");
}

/// A colleague's comment on a case whose very first envelope the relay
/// lost, fetched by a device that holds nothing of the case: there is
/// nothing to judge the comment in yet, so it waits (the case INCOMPLETE,
/// exit 4) rather than being refused as a comment on nothing; once the
/// envelope is back, all of it arrives, the comment too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_a_case_whose_first_envelope_is_gone_waits_and_arrives() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, okafor) = (
        dir.path().join("rivera"),
        dir.path().join("chen"),
        dir.path().join("okafor"),
    );
    init_at(&rivera, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    init_at(&okafor, &relay, "Dr. Okafor");
    let case = new_case(&rivera, "Jordan Avery");
    let note = ok(
        &rivera,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    )
    .trim()
    .to_string();
    ok(&rivera, &["sync"]);
    befriend(&rivera, &okafor, "Dr. Okafor");
    ok(&rivera, &share_args(&case, "Dr. Okafor", "comment", &[]));
    ok(&okafor, &["sync"]);
    let comment = ["note", "comment", &case, &note, "--text", "Agree."];
    ok(&okafor, &comment);
    ok(&okafor, &["sync"]);
    befriend(&rivera, &chen, "Dr. Chen");
    ok(&rivera, &share_args(&case, "Dr. Chen", "read", &[]));

    let first = envelopes(&relay, &case).pop().unwrap();
    lose(&relay, first.0);
    let out = run(&chen, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("is INCOMPLETE"), "{err}");
    assert!(!err.contains("refused"), "{err}");

    put_back(&relay, &case, first);
    ok(&chen, &["sync"]);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&chen, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(shown["comments"][0]["text"], "Agree.", "{shown}");
    assert!(!ok(&chen, &["status"]).contains("INCOMPLETE"));
}

/// Someone with the relay's disk damages a colleague's account log, one
/// the owner's device holds: the owner's sync refuses it, naming the
/// account, and exits with 3, but only the case shared with that colleague
/// waits (refused, named, its edits held); a case of the owner's own
/// still syncs. Mended, the next sync is clean and the colleague reads the note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_damaged_log_exits_with_3_and_the_rest_syncs() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    let own = new_case(&rivera, "Sam Lee");
    ok(&rivera, &["sync"]);
    let whoami: serde_json::Value =
        serde_json::from_str(&ok(&chen, &["--json", "whoami"])).unwrap();
    let account = hex::decode(whoami["id"].as_str().unwrap()).unwrap();
    let good: Vec<u8> = relay_db(&relay)
        .query_row(
            "SELECT entry FROM account_entries WHERE account = ?1 AND seq = 0",
            [&account],
            |r| r.get(0),
        )
        .unwrap();
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    // The relay keeps the logs it verified in memory: edited while stopped.
    let set = |relay: Relay, entry: Vec<u8>| {
        let account = account.clone();
        relay.edited_while_stopped(move |data| {
            let db = rusqlite::Connection::open(data.join("relay.db")).unwrap();
            db.execute(
                "UPDATE account_entries SET entry = ?1 WHERE account = ?2 AND seq = 0",
                params![entry, account],
            )
            .unwrap();
        })
    };
    let relay = set(relay, bad).await;

    ok(
        &rivera,
        &["note", "add", &own, "--field", "plan=Sleep diary."],
    );
    let before = envelopes(&relay, &own).len();
    let out = run(&rivera, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("warning: refused the relay's log of account")
            && err.contains("does not serve it (it answered Internal)")
            && err.contains("the rest synced"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("could not store"), "the relay's words: {err}");
    assert!(
        envelopes(&relay, &own).len() > before,
        "the own case synced"
    );

    ok(
        &rivera,
        &["note", "add", &case, "--field", "plan=Walk daily."],
    );
    let before = envelopes(&relay, &case).len();
    let out = run(&rivera, &["--json", "sync"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let refused = report["logs_refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{report}");
    assert_eq!(refused[0]["account"], whoami["id"], "{report}");
    let mut waits = report["refused"].as_array().unwrap().iter();
    assert!(
        waits.any(|x| x["doc"].as_str() == Some(&case[..])),
        "the shared case waits: {report}"
    );
    assert_eq!(
        report["held"][0]["doc"].as_str(),
        Some(&case[..]),
        "{report}"
    );
    assert_eq!(envelopes(&relay, &case).len(), before, "nothing of it went");
    let trail = ok(&rivera, &["audit"]);
    assert_eq!(
        trail.matches("refused the relay's log of account").count(),
        1,
        "{trail}"
    );

    let _relay = set(relay, good).await;
    ok(&rivera, &["sync"]);
    ok(&chen, &["sync"]);
    assert!(finds(&chen, "Walk daily"));
}
