//! The record's end from the command line: `casebook retention` lists
//! what is due (a legal hold keeps a case, a case's own period and the
//! account's apply), and `case dispose` destroys a due case everywhere,
//! telling the person that older backups still hold it.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_lists_what_is_due_and_a_legal_hold_keeps_a_case() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let old = new_case(&home, "Avery Old");
    let held = new_case(&home, "Blake Held");
    let recent = new_case(&home, "Casey Recent");
    for (case, date) in [
        (&old, "2015-03-01"),
        (&held, "2014-06-01"),
        (&recent, "2026-11-02"),
    ] {
        ok(
            &home,
            &["note", "add", case, "--date", date, "--field", "plan=Seen."],
        );
    }
    ok(
        &home,
        &[
            "case",
            "hold",
            "Blake",
            "--reason",
            "records subpoena 2026-118",
        ],
    );
    let listed = ok(&home, &["retention"]);
    assert!(
        listed.contains("Avery Old") && listed.contains("DUE"),
        "{listed}"
    );
    assert!(
        listed.contains("LEGAL HOLD (records subpoena 2026-118)"),
        "{listed}"
    );
    assert!(!listed.contains("Casey Recent"), "{listed}");
    let all: Value = serde_json::from_str(&ok(&home, &["--json", "retention", "--all"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let row = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("Avery Old")["due_date"], "2022-03-01");
    assert_eq!(row("Avery Old")["due"], true);
    assert_eq!(row("Casey Recent")["due"], false);

    // Released, the held case is plainly due; a period of the case's own,
    // then the account's changed: nothing is.
    ok(&home, &["case", "release", "Blake"]);
    let listed = ok(&home, &["retention"]);
    assert!(
        listed.contains("Blake Held") && !listed.contains("LEGAL HOLD"),
        "{listed}"
    );
    ok(&home, &["case", "retention", &old, "--years", "20"]);
    ok(&home, &["retention", "--set-default", "30"]);
    let listed = ok(&home, &["retention"]);
    assert!(listed.is_empty(), "{listed}");
    let all = ok(&home, &["retention", "--all"]);
    assert!(
        all.contains("20 years (its own)") && all.contains("due 2035-03-01"),
        "{all}"
    );
    fails(
        &home,
        &["retention", "--set-default", "0"],
        "between 1 and 100",
    );
    // A case without sessions counts from its opening, and says so.
    new_case(&home, "Dana New");
    let all = ok(&home, &["retention", "--all"]);
    let line = all.lines().find(|l| l.contains("Dana New")).unwrap();
    assert!(
        line.contains("opened 20") && line.contains("(no sessions)"),
        "{line}"
    );
    let json: Value = serde_json::from_str(&ok(&home, &["--json", "retention", "--all"])).unwrap();
    let dana = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Dana New")
        .unwrap();
    assert!(dana["last_session_date"].is_null() && dana["counted_from_date"].is_string());
    // The case on hold earlier is in the case list marked.
    ok(&home, &["case", "hold", "Blake", "--reason", "audit"]);
    assert!(ok(&home, &["case", "list"]).contains("(legal hold)"));
    let trail = ok(&home, &["audit", "--limit", "100"]);
    for said in [
        "legal hold placed: records subpoena 2026-118",
        "legal hold lifted",
        "retention period set to 30 years",
    ] {
        assert!(trail.contains(said), "{said}: {trail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_case_is_disposed_of_and_older_backups_are_to_be_replaced() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Avery Old");
    ok(
        &home,
        &[
            "note",
            "add",
            &case,
            "--date",
            "2015-03-01",
            "--field",
            "plan=Seen.",
        ],
    );
    let recent = new_case(&home, "Casey Recent");
    ok(&home, &["note", "add", &recent, "--field", "plan=Seen."]);
    let out = casebook(&home)
        .env("CASEBOOK_BACKUP_PASSPHRASE", "kept in the safe")
        .args(["backup", "create", dir.path().join("b").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());

    fails(&home, &["case", "dispose", "Avery"], "--yes");
    fails(&home, &["case", "dispose", "Casey", "--yes"], "kept until");
    fails(
        &home,
        &["case", "dispose", "Casey", "--yes"],
        "dispose CASE --now",
    );
    ok(&home, &["case", "dispose", "Avery", "--yes"]);
    let all = ok(&home, &["case", "list", "--all"]);
    assert!(
        !all.contains("Avery Old") && all.contains("Casey Recent"),
        "{all}"
    );
    let out = run(&home, &["retention"]);
    let said = String::from_utf8_lossy(&out.stderr);
    // One case, counted once though its psychotherapy notes went too.
    assert!(
        said.contains("1 case(s) were disposed of since this device's last backup"),
        "{said}"
    );
    let trail = ok(&home, &["audit", "--limit", "100"]);
    assert!(trail.contains("disposed of by Dr. Rivera"), "{trail}");
    assert!(
        trail.contains(&format!(
            "psychotherapy notes of case {} disposed of",
            &case[..8]
        )),
        "{trail}"
    );
    assert!(
        !trail.contains("Avery Old"),
        "the trail keeps no client name: {trail}"
    );
}

/// A hold placed on the tablet offline while the laptop disposed of the
/// case: the tablet's `sync` succeeds, warns that it keeps the case alone
/// (and `--json` says so), the case stays listed there; released, the next
/// sync carries the disposal out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_keeps_a_case_disposed_of_on_another_device_and_sync_says_so() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, case) = common::damage::laptop_and_tablet(&relay, dir.path());
    let hold = [
        "case",
        "hold",
        &case,
        "--reason",
        "records subpoena 2026-118",
    ];
    ok(&tablet, &hold);
    ok(&laptop, &["case", "dispose", &case, "--now", "--yes"]);
    ok(&laptop, &["sync"]);
    ok(&laptop, &["sync"]);
    assert!(!ok(&laptop, &["case", "list"]).contains("Jordan Avery"));

    let out = run(&tablet, &["sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "case Jordan Avery ({}) is under a legal hold here (records subpoena 2026-118)",
            &case[..8]
        )) && said.contains("keeps the case alone"),
        "{said}"
    );
    assert!(said.contains("not sent"), "the hold's edit is held: {said}");
    let json: Value = serde_json::from_str(&ok(&tablet, &["--json", "sync"])).unwrap();
    assert_eq!(json["kept_under_hold"][0]["case"], case.as_str(), "{json}");
    assert_eq!(json["kept_under_hold"][0]["client"], "Jordan Avery");
    assert!(json["refused"].as_array().unwrap().is_empty(), "{json}");
    assert!(ok(&tablet, &["case", "list"]).contains("(legal hold)"));

    ok(&tablet, &["case", "release", &case]);
    let out = run(&tablet, &["sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("legal hold"),
        "{said}"
    );
    assert!(!ok(&tablet, &["case", "list", "--all"]).contains("Jordan Avery"));
}
