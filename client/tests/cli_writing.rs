//! Writing notes from the CLI: what is refused, and said plainly.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_notes_two_lengths_and_a_second_signature_are_refused() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "note",
            "add",
            &case,
            "--format",
            "soap",
            "--date",
            "2026-11-20",
        ];
        args.extend_from_slice(extra);
        run(&home, &args)
    };
    let says = |out: std::process::Output, what: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "should fail: {what}");
        assert!(err.contains(what), "{err:?} does not say {what:?}");
        assert!(out.stdout.is_empty(), "printed before failing");
    };
    says(add(&[]), "write at least one section");
    says(add(&["--field", "plan="]), "write at least one section");
    says(
        add(&[
            "--minutes",
            "50",
            "--field",
            "duration=45",
            "--field",
            "plan=Diary.",
        ]),
        "given twice and the two disagree (50 and 45 minutes)",
    );
    // The same length twice is no disagreement.
    let note = add(&[
        "--minutes",
        "50",
        "--field",
        "duration=50",
        "--field",
        "plan=Diary.",
    ]);
    assert!(
        note.status.success(),
        "{}",
        String::from_utf8_lossy(&note.stderr)
    );
    let note = String::from_utf8(note.stdout).unwrap().trim().to_string();
    assert!(ok(&home, &["note", "list", &case]).lines().count() == 1);
    ok(&home, &["note", "sign", &case, &note]);
    says(
        run(&home, &["note", "sign", &case, &note]),
        "already signed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_any_order_best_first_and_private_only_when_asked() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    let add = |fields: &[&str]| {
        let mut args = vec![
            "note",
            "add",
            &case,
            "--format",
            "soap",
            "--date",
            "2026-11-20",
        ];
        for f in fields {
            args.extend_from_slice(&["--field", f]);
        }
        ok(&home, &args).trim().to_string()
    };
    let spread = add(&["subjective=Sleeps badly.", "plan=A diary, maybe."]);
    let together = add(&["plan=Keep a sleep diary."]);
    ok(
        &home,
        &[
            "private",
            "add",
            &case,
            "--text",
            "Sleep diary shows guilt.",
        ],
    );
    let out = ok(&home, &["search", "diary sleep"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains(&together), "best first: {out}");
    assert!(lines[1].contains(&spread), "{out}");
    assert!(
        !out.contains("guilt"),
        "a psychotherapy note without --private"
    );
    let out = ok(&home, &["search", "diary sleep", "--private"]);
    assert!(out.contains("guilt"), "{out}");

    // At most --limit hits, the best first, and it says how many it left.
    let shown = run(&home, &["search", "diary sleep", "--limit", "1"]);
    assert!(shown.status.success());
    let out = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(&together), "{out}");
    let said = String::from_utf8_lossy(&shown.stderr);
    assert!(said.contains("1 of 2 hits shown"), "{said}");
    let out = ok(&home, &["search", "diary sleep", "--all"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    fails(&home, &["search", "diary", "--limit", "0"], "--limit");
}

/// `note add --edit`: the template holds what is known (the date), and a
/// draft that does not read is kept, said to be kept, and reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_that_does_not_read_is_kept_and_reopened() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    // An "editor" that checks the date is filled in, writes the plan, and
    // leaves a stray line above the first heading.
    let script = dir.path().join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ngrep -qx 2026-11-20 \"$1\" || exit 3\n\
         sed -i 's/^## plan$/## plan\\nKeep a sleep diary./' \"$1\"\n\
         sed -i '1i stray words' \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = casebook(&home)
        .args(["note", "add", &case, "--date", "2026-11-20", "--edit"])
        .env("EDITOR", &script)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("text before the first"), "{err}");
    assert!(err.contains("what you typed is kept"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(ok(&home, &["note", "list", &case]).trim().is_empty());

    // A second failed draft, for another case, does not replace the first.
    let other = new_case(&home, "Sam Okafor");
    let out = casebook(&home)
        .args(["note", "add", &other, "--date", "2026-11-20", "--edit"])
        .env("EDITOR", &script)
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Reopened: the person deletes the stray line and saves.
    let out = casebook(&home)
        .args(["note", "add", &case, "--resume"])
        .env("EDITOR", "sed -i /^stray/d")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(v["fields"]["plan"], "Keep a sleep diary.");
    assert_eq!(v["date"], "2026-11-20");
    fails(&home, &["note", "add", &case, "--resume"], "no draft");
    // The other case's draft is still there.
    let out = casebook(&home)
        .args(["note", "add", &other, "--resume"])
        .env("EDITOR", "sed -i /^stray/d")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An edit that does not read is kept too, and reopened.
    let out = casebook(&home)
        .args(["note", "edit", &case, &note, "--edit"])
        .env("EDITOR", "sed -i 1istray")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--resume"), "{err}");
    let out = casebook(&home)
        .args(["note", "edit", &case, &note, "--resume"])
        .env("EDITOR", "sed -i -e /^stray/d -e s/sleep/SLEEP/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(v["fields"]["plan"], "Keep a SLEEP diary.");
}

/// Cases found by their client's name, candidates named when ambiguous, a
/// second case for one name flagged, and closed cases left out of lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_by_name_candidates_and_closing() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let jordan = new_case(&home, "Jordan Avery");
    let sam = new_case(&home, "Sam Avery");
    let out = run(&home, &["case", "new", "jordan avery"]);
    assert!(out.status.success());
    let again = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another case is named"), "{err}");
    assert!(err.contains(&jordan[..8]), "{err}");

    // A unique part of the name finds the case.
    assert!(ok(&home, &["case", "show", "Sam"]).contains("Sam Avery"));
    // Two share "Avery", three "Jordan": the candidates are named.
    let out = run(&home, &["case", "show", "avery"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for id in [&jordan, &sam, &again] {
        assert!(err.contains(&id[..8]), "{err}");
    }

    ok(&home, &["case", "close", &again]);
    let list = ok(&home, &["case", "list"]);
    assert!(!list.contains(&again[..8]), "{list}");
    assert!(list.contains(&jordan[..8]));
    let all = ok(&home, &["case", "list", "--all"]);
    assert!(
        all.contains(&again[..8]) && all.contains("(closed)"),
        "{all}"
    );
    // Closed is kept: it can be named, and opened again.
    ok(&home, &["case", "reopen", &again[..8]]);
    assert!(ok(&home, &["case", "list"]).contains(&again[..8]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passphrase_changes_and_the_old_one_stops_working() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    ok(&home, &["case", "new", "Jordan Avery"]);
    let short = casebook(&home)
        .args(["passphrase", "change"])
        .env("CASEBOOK_NEW_PASSPHRASE", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("the old one still unlocks"));
    let out = casebook(&home)
        .args(["passphrase", "change"])
        .env("CASEBOOK_NEW_PASSPHRASE", "a different long passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails(&home, &["case", "list"], "passphrase");
    let list = casebook(&home)
        .args(["case", "list"])
        .env("CASEBOOK_PASSPHRASE", "a different long passphrase")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("Jordan Avery"));
}

#[test]
fn completions_and_a_manual_page_come_from_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("none");
    let bash = ok(&home, &["completions", "bash"]);
    assert!(
        bash.contains("_casebook()") && bash.contains("relay"),
        "{bash:.200}"
    );
    let zsh = ok(&home, &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef casebook"), "{zsh:.80}");
    let man = ok(&home, &["man"]);
    assert!(man.contains(".TH casebook"), "{man:.200}");
    assert!(!home.exists(), "no home is needed or made");
}

/// Dates and times are the person's: a note's date defaults to today where
/// they are, an expiry date is the end of that local day, and times print
/// in their zone. Instants are stored in UTC as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_and_times_are_the_persons_local_time() {
    use jiff::tz::TimeZone;
    // A zone whose date differs from UTC's right now, whatever the hour.
    let now = jiff::Timestamp::now();
    let utc_hour = now.to_zoned_datetime(TimeZone::UTC).hour();
    let zone = if utc_hour >= 10 {
        "Pacific/Kiritimati"
    } else {
        "Etc/GMT+12"
    };
    let tz = TimeZone::get(zone).unwrap();
    let local_today = now.to_zoned_datetime(tz.clone()).date().to_string();
    assert_ne!(
        local_today,
        now.to_zoned_datetime(TimeZone::UTC).date().to_string()
    );
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (home, chen) = (dir.path().join("laptop"), dir.path().join("chen"));
    init_at(&home, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    let local = |args: &[&str]| {
        let out = casebook(&home).args(args).env("TZ", zone).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let case = local(&["case", "new", "Jordan Avery"]).trim().to_string();
    let note = local(&["note", "add", &case, "--field", "plan=Diary."])
        .trim()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_str(&local(&["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(
        v["date"],
        local_today.as_str(),
        "the session date is today, locally"
    );

    local(&["note", "sign", &case, &note]);
    let shown = local(&["note", "show", &case, &note]);
    let signed = shown.lines().find(|l| l.starts_with("signed by")).unwrap();
    assert!(signed.contains(&local_today), "{signed}");
    assert!(!signed.ends_with('Z'), "a UTC instant shown raw: {signed}");

    // Until a date means all of that day where the person is.
    let until_day = now
        .to_zoned_datetime(tz.clone())
        .date()
        .checked_add(jiff::Span::new().days(30))
        .unwrap();
    let until = until_day.to_string();
    befriend(&home, &chen, "Dr. Chen");
    local(&share_args(
        &case,
        "Dr. Chen",
        "read",
        &["--expires", &until],
    ));
    let end = until_day
        .tomorrow()
        .unwrap()
        .to_zoned_datetime(tz)
        .unwrap()
        .timestamp()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let shared: serde_json::Value =
        serde_json::from_str(&local(&["--json", "shared", &case])).unwrap();
    assert_eq!(shared[0]["expires_at"], end.as_str(), "{shared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_have_names_kinds_and_when_they_were_last_seen() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    fails(
        &home,
        &[
            "init",
            "--name",
            "Dr. Rivera",
            "--device-name",
            "Lap\u{1b}top",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
        "control characters",
    );
    assert!(
        !home.exists(),
        "a bad device name is refused before anything is made"
    );
    ok(
        &home,
        &[
            "init",
            "--name",
            "Dr. Rivera",
            "--device-name",
            "Office laptop",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    let list = ok(&home, &["device", "list"]);
    let mine = list.lines().find(|l| l.contains("this device")).unwrap();
    assert!(
        mine.contains("Office laptop") && mine.contains("last seen 20"),
        "{list}"
    );
    assert!(list.lines().any(|l| l.contains("recovery key")), "{list}");
    let rows: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--json", "device", "list"])).unwrap();
    let me = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["this_device"] == true)
        .unwrap();
    let id = me["id"].as_str().unwrap().to_string();
    assert_eq!(me["name"], "Office laptop");
    assert!(me["last_seen_at"].is_string());
    ok(&home, &["device", "rename", &id[..8], "Laptop at home"]);
    assert!(ok(&home, &["device", "list"]).contains("Laptop at home"));
}
