//! What the CLI prints: text from others cannot act on the terminal, and a
//! reader that goes away is an ordinary end.

mod common;

use std::process::Stdio;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_shown_not_obeyed_and_refused_in_names() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    // A name that would set the window title: refused, and nothing made.
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    fails(
        &home,
        &[
            "init",
            "--name",
            "Dr. \u{1b}]0;pwned\u{7}",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
        "control characters",
    );
    assert!(!home.exists());
    init_at(&home, &relay, "Dr. Rivera");
    fails(
        &home,
        &["case", "new", "Jordan\u{1b}[31m"],
        "control characters",
    );
    fails(
        &home,
        &["case", "new", "Jordan \u{202e}yevA"],
        "control characters",
    );
    let case = new_case(&home, "Jordan Avery");
    // Note text may hold anything a colleague typed; it is shown escaped.
    let note = ok(
        &home,
        &[
            "note",
            "add",
            &case,
            "--format",
            "free",
            "--date",
            "2026-11-20",
            "--field",
            "text=before\u{1b}[2Jafter\rover",
        ],
    )
    .trim()
    .to_string();
    let out = run(&home, &["note", "show", &case, &note]);
    assert!(out.status.success());
    assert!(
        !out.stdout.contains(&0x1b),
        "an escape reached the terminal"
    );
    assert!(!out.stdout.contains(&b'\r'));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("before\\u{1b}[2Jafter\\u{d}over"), "{shown}");
    // JSON keeps the text exactly, with every acting character escaped.
    let odd = ok(
        &home,
        &[
            "note",
            "add",
            &case,
            "--format",
            "free",
            "--date",
            "2026-11-20",
            "--field",
            "text=safe \u{202e}txet desrever\u{7f}\u{9b}",
        ],
    )
    .trim()
    .to_string();
    let out = run(&home, &["--json", "note", "show", &case, &odd]);
    let raw = String::from_utf8(out.stdout).unwrap();
    assert!(!raw.contains('\u{202e}') && !raw.contains('\u{7f}') && !raw.contains('\u{9b}'));
    let json: serde_json::Value = serde_json::from_str(&raw).expect("still JSON");
    assert_eq!(
        json["fields"]["text"],
        "safe \u{202e}txet desrever\u{7f}\u{9b}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(json["fields"]["text"], "before\u{1b}[2Jafter\rover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_is_a_quiet_end() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    for day in ["2026-11-18", "2026-11-19", "2026-11-20"] {
        ok(
            &home,
            &[
                "note", "add", &case, "--format", "free", "--date", day, "--field", "text=x",
            ],
        );
    }
    // As `casebook note list CASE | head -0`: the pipe is closed before
    // the first line is written.
    let mut child = casebook(&home)
        .args(["note", "list", &case])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?}: {err}", out.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_captured_from_a_pipe_is_plain_lines() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    ok(
        &home,
        &[
            "note",
            "add",
            &case,
            "--date",
            "2026-11-20",
            "--field",
            "plan=Diary.",
        ],
    );
    let out = casebook(&home).args(["sync"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        !out.stderr.contains(&b'\r'),
        "a carriage return in captured output"
    );
    assert!(
        !out.stderr.contains(&0x1b),
        "an escape sequence in captured output"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().any(|l| l.starts_with("sent ")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_errors_are_json_on_stderr_with_a_stable_code() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    for (args, code) in [
        (vec!["--json", "case", "show", "nobody"], "unknown_case"),
        (vec!["--json", "note", "list", "nobody"], "unknown_case"),
        (vec!["--json", "case", "new", "Bad\u{1b}Name"], "bad_name"),
        // A command line clap refuses (found by following the README: it
        // was clap's plain text).
        (vec!["--json", "case", "new"], "usage"),
        (vec!["--json", "case", "shw"], "usage"),
    ] {
        let out = run(&home, &args);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(err["error"]["code"], code, "{err}");
        assert!(err["error"]["message"].is_string());
    }
    // A mistyped section is a usage mistake, not a refusal.
    let case = new_case(&home, "Jordan Avery");
    let fhir = dir.path().join("x.json");
    let out = run(
        &home,
        &[
            "--json",
            "export",
            &case,
            "--fhir",
            fhir.to_str().unwrap(),
            "--sections",
            "subjectiv",
        ],
    );
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "usage", "{err}");
    let said = err["error"]["message"].as_str().unwrap();
    assert!(said.starts_with("no section named \"subjectiv\""), "{said}");
    let other = dir.path().join("none");
    let out = run(&other, &["--json", "case", "list"]);
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "no_home");
    assert!(
        err["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("casebook init")
    );
}

/// `casebook --json ARGS`, parsed.
fn json(home: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(home, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// Every object a listing prints names itself under `id`.
fn all_have_ids(rows: &serde_json::Value) {
    let rows = rows.as_array().expect("a listing is an array");
    assert!(!rows.is_empty());
    for r in rows {
        assert!(r["id"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_things_are_named_one_way_and_changes_return_ids() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (home, chen) = (dir.path().join("laptop"), dir.path().join("chen"));
    init_at(&chen, &relay, "Dr. Chen");
    let init = init_args(&relay, "Dr. Rivera");
    let made = json(&home, &init.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(made["action"], "account.created", "{made}");
    let me = made["account"].as_str().unwrap().to_string();

    // Changing commands answer with what they made or touched, not prose.
    let case = json(&home, &["case", "new", "Jordan Avery"]);
    assert_eq!(case["action"], "case.created", "{case}");
    let case = case["id"].as_str().unwrap().to_string();
    let note = json(
        &home,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    );
    assert_eq!(
        (&note["action"], &note["case"]),
        (&"note.added".into(), &case.clone().into())
    );
    let note = note["id"].as_str().unwrap().to_string();
    let signed = json(&home, &["note", "sign", &case, &note[..6]]);
    assert_eq!(signed["action"], "note.signed", "{signed}");
    assert_eq!(
        signed["id"],
        note.as_str(),
        "a prefix answers with the whole id"
    );
    assert_eq!(signed["case"], case.as_str());
    assert!(signed.get("what").is_none(), "{signed}");
    let closed = json(&home, &["case", "close", "Jordan"]);
    assert_eq!(
        (&closed["action"], &closed["id"]),
        (&"case.closed".into(), &case.clone().into())
    );
    json(&home, &["case", "reopen", &case]);

    // An empty list says so, and how to fill it, on stderr only.
    let none = run(&home, &["contact", "list"]);
    assert!(none.stdout.is_empty());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no contacts yet"));
    // A case, its notes and a colleague, each under one name everywhere.
    befriend(&home, &chen, "Dr. Chen");
    let contacts = json(&home, &["contact", "list"]);
    all_have_ids(&contacts);
    let chen_id = contacts[0]["id"].as_str().unwrap().to_string();
    let shared = json(&home, &share_args(&case, "Dr. Chen", "read", &[]));
    assert_eq!(shared["action"], "share.granted", "{shared}");
    assert_eq!(
        (&shared["case"], &shared["account"]),
        (&case.clone().into(), &chen_id.clone().into())
    );
    let shares = json(&home, &["shared", &case]);
    let disclosures = json(&home, &["disclosures"]);
    ok(&chen, &["sync"]);
    let with_chen = json(&chen, &["shared"]);
    for rows in [&shares, &disclosures, &with_chen] {
        all_have_ids(rows);
        assert_eq!(rows[0]["case"], case.as_str(), "{rows}");
    }
    assert_eq!(shares[0]["id"], with_chen[0]["id"], "one share, one id");
    assert_eq!(shares[0]["account"], chen_id.as_str());
    assert_eq!(disclosures[0]["account"], chen_id.as_str());
    assert_eq!(shares[0]["account_name"], "Dr. Chen");
    assert_eq!(disclosures[0]["account_name"], "Dr. Chen");
    assert_eq!(with_chen[0]["owner"], me.as_str());
    assert_eq!(with_chen[0]["case_name"], "Jordan Avery");

    let cases = json(&home, &["case", "list"]);
    all_have_ids(&cases);
    assert_eq!(cases[0]["id"], case.as_str());
    let notes = json(&home, &["note", "list", &case]);
    all_have_ids(&notes);
    assert_eq!(
        (&notes[0]["id"], &notes[0]["case"]),
        (&note.clone().into(), &case.clone().into())
    );
    let shown = json(&home, &["note", "show", &case, &note]);
    assert_eq!(
        (&shown["id"], &shown["case"]),
        (&note.clone().into(), &case.clone().into())
    );
    let private = json(
        &home,
        &["private", "add", &case, "--text", "Countertransference."],
    );
    assert_eq!(private["action"], "private.added");
    all_have_ids(&json(&home, &["private", "list", &case]));
    all_have_ids(&json(&home, &["device", "list"]));
    all_have_ids(&json(&home, &["audit"]));
    all_have_ids(&json(&home, &["search", "diary"]));
    assert!(json(&home, &["status"])["id"].is_string());
    assert_eq!(json(&home, &["whoami"])["id"], me.as_str());
    let unshared = json(&home, &["unshare", &case, "--with", "Dr. Chen"]);
    assert_eq!(
        (&unshared["action"], &unshared["id"]),
        (&"share.ended".into(), &shares[0]["id"])
    );
}
