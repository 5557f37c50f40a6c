//! The `casebook` command line, run as a person would run it, against a
//! real relay on loopback.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_therapist_uses_the_cli_on_two_devices() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (laptop, tablet) = (dirs.0.path().join("laptop"), dirs.1.path().join("tablet"));

    let init = run(
        &laptop,
        &[
            "init",
            "--name",
            "Dr. Rivera",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(String::from_utf8_lossy(&init.stderr).contains("recovery words"));
    // The home's folder is this user's alone, whatever the umask (found by
    // following the README: it was made 0755).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&laptop).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    let case = ok(&laptop, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
    assert_eq!(case.len(), 32);
    let note = ok(
        &laptop,
        &[
            "note",
            "add",
            &case[..8],
            "--format",
            "soap",
            "--date",
            "2026-11-20",
            "--field",
            "subjective=Sleeping badly since the move.",
            "--field",
            "plan=Sleep diary.",
        ],
    )
    .trim()
    .to_string();
    // --edit: the editor here is a script that rewrites a word.
    let edited = casebook(&laptop)
        .args(["note", "edit", &case, &note, "--edit"])
        .env("EDITOR", "sed -i s/badly/poorly/")
        .output()
        .unwrap();
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    let shown = ok(&laptop, &["--json", "note", "show", &case, &note]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["fields"]["subjective"], "Sleeping poorly since the move.");
    assert_eq!(v["fields"]["plan"], "Sleep diary.");
    ok(
        &laptop,
        &[
            "private",
            "add",
            &case,
            "--text",
            "Countertransference: felt protective.",
        ],
    );
    assert!(ok(&laptop, &["search", "sleep diary"]).contains(&case[..8]));
    ok(&laptop, &["note", "sign", &case, &note]);
    fails(
        &laptop,
        &["note", "edit", &case, &note, "--field", "plan=x"],
        "signed",
    );
    ok(
        &laptop,
        &[
            "note",
            "addendum",
            &case,
            &note,
            "--text",
            "Client called to reschedule.",
        ],
    );
    // Pair: `device add` prints the code first and waits; once paired it
    // sends what the laptop holds (README step 4: the laptop has not
    // synced before, and the tablet's first sync finds everything).
    let mut add = casebook(&laptop)
        .args(["device", "add", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut code = String::new();
    BufReader::new(add.stdout.take().unwrap())
        .read_line(&mut code)
        .unwrap();
    let code = code.trim().to_string();
    ok(
        &tablet,
        &[
            "device",
            "join",
            &code,
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    assert!(add.wait().unwrap().success());
    ok(&tablet, &["sync"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&tablet, &["--json", "case", "list"])).unwrap();
    assert_eq!(list[0]["name"], "Jordan Avery");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&tablet, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(shown["addenda"][0]["text"], "Client called to reschedule.");
    assert!(ok(&tablet, &["private", "list", &case]).contains("felt protective"));
    let devices: serde_json::Value =
        serde_json::from_str(&ok(&tablet, &["--json", "device", "list"])).unwrap();
    assert_eq!(
        devices.as_array().unwrap().len(),
        3,
        "laptop, tablet, recovery key"
    );
    relay.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fails(&home, &["case", "list"], "casebook init");
    fails(
        &home,
        &[
            "init",
            "--name",
            "X",
            "--relay",
            &addr,
            "--relay-fingerprint",
            "sha256:zz",
        ],
        "fingerprint",
    );
    ok(
        &home,
        &[
            "init",
            "--name",
            "Dr. Rivera",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    fails(
        &home,
        &[
            "init",
            "--name",
            "X",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
        "already",
    );
    let wrong = casebook(&home)
        .env("CASEBOOK_PASSPHRASE", "not the passphrase")
        .args(["case", "list"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    fails(&home, &["case", "show", "0123abcd"], "no case matches");
    fails(
        &home,
        &["case", "show", "0123abcd"],
        "hint: `casebook case list` shows the ids",
    );

    let case = ok(&home, &["case", "new", "Sam"]).trim().to_string();
    fails(
        &home,
        &[
            "share",
            &case,
            "--with",
            "Nobody",
            "--role",
            "read",
            "--purpose",
            "p",
            "--consent",
            "c",
        ],
        "hint: add one with `casebook contact add NAME CARD`",
    );
    fails(
        &home,
        &["note", "add", &case, "--field", "plan"],
        "FIELD=VALUE",
    );
    fails(
        &home,
        &["note", "add", &case, "--format", "poem"],
        "unknown note format",
    );
    fails(
        &home,
        &["note", "add", &case, "--date", "2026-02-30"],
        "invalid date",
    );
    fails(
        &home,
        &["note", "add", &case, "--field", "mood=fine"],
        "unknown field",
    );
    fails(&home, &["note", "show", &case, "nope"], "no note");
    fails(&home, &["device", "revoke", "ffff"], "no device matches");
    fails(
        &home,
        &[
            "device",
            "join",
            "not-a-code",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
        "already",
    );
    let usage = run(&home, &["note", "add"]);
    assert_eq!(usage.status.code(), Some(2), "clap usage errors exit 2");
    relay.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_practitioners_share_a_case_from_the_cli() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen) = (dir.path().join("rivera"), dir.path().join("chen"));
    for (home, name) in [(&rivera, "Dr. Rivera"), (&chen, "Dr. Chen")] {
        ok(
            home,
            &[
                "init",
                "--name",
                name,
                "--relay",
                &addr,
                "--relay-fingerprint",
                &fp,
            ],
        );
        ok(home, &["sync"]);
    }
    let case = ok(&rivera, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
    let note = ok(
        &rivera,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    )
    .trim()
    .to_string();
    let me: serde_json::Value = serde_json::from_str(&ok(&chen, &["--json", "whoami"])).unwrap();
    let (card, safety) = (
        me["card"].as_str().unwrap(),
        me["safety_number"].as_str().unwrap(),
    );

    fails(
        &rivera,
        &["contact", "add", "Dr. Chen", "not-a-card"],
        "not a casebook card",
    );
    ok(&rivera, &["contact", "add", "Dr. Chen", card]);
    let share = [
        "share",
        &case,
        "--with",
        "Dr. Chen",
        "--role",
        "comment",
        "--purpose",
        "consultation",
        "--consent",
        "signed release",
    ];
    fails(&rivera, &share, "not verified");
    fails(
        &rivera,
        &["contact", "verify", "Dr. Chen", "00000"],
        "does not match",
    );
    ok(&rivera, &["contact", "verify", "Dr. Chen", safety]);
    fails(
        &rivera,
        &[
            "share",
            &case,
            "--with",
            "Nobody",
            "--role",
            "read",
            "--purpose",
            "p",
            "--consent",
            "c",
        ],
        "no contact",
    );
    fails(
        &rivera,
        &[
            "share",
            &case,
            "--with",
            "Dr. Chen",
            "--role",
            "boss",
            "--purpose",
            "p",
            "--consent",
            "c",
        ],
        "invalid role",
    );
    fails(
        &rivera,
        &[
            "share",
            &case,
            "--with",
            "Dr. Chen",
            "--role",
            "read",
            "--purpose",
            "p",
            "--consent",
            "c",
            "--expires",
            "2020-01-01",
        ],
        "past",
    );
    let out = run(&rivera, &share);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("without its psychotherapy"));

    ok(&chen, &["sync"]);
    let shared: serde_json::Value =
        serde_json::from_str(&ok(&chen, &["--json", "shared"])).unwrap();
    assert_eq!(shared[0]["case_name"], "Jordan Avery");
    assert_eq!(shared[0]["purpose"], "consultation");
    assert_eq!(shared[0]["role"], "comment");
    fails(
        &chen,
        &["note", "edit", &case, &note, "--field", "plan=x"],
        "role",
    );
    fails(
        &chen,
        &[
            "share",
            &case,
            "--with",
            "Dr. Rivera",
            "--role",
            "read",
            "--purpose",
            "p",
            "--consent",
            "c",
        ],
        "no contact",
    );
    ok(
        &chen,
        &[
            "note",
            "comment",
            &case,
            &note,
            "--text",
            "Agree with the plan.",
        ],
    );
    ok(&chen, &["sync"]);
    ok(&rivera, &["sync"]);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&rivera, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(shown["comments"][0]["text"], "Agree with the plan.");

    ok(&rivera, &["unshare", &case, "--with", "Dr. Chen"]);
    let disclosures: serde_json::Value =
        serde_json::from_str(&ok(&rivera, &["--json", "disclosures"])).unwrap();
    assert_eq!(disclosures.as_array().unwrap().len(), 1);
    assert_eq!(disclosures[0]["account_name"], "Dr. Chen");
    assert!(ok(&rivera, &["audit", "--case", &case]).contains("share revoked"));
    // Dates narrow both: nothing before 2000, nothing after 2999.
    let old: serde_json::Value = serde_json::from_str(&ok(
        &rivera,
        &["--json", "disclosures", "--until", "2000-01-01"],
    ))
    .unwrap();
    assert_eq!(old, serde_json::json!([]));
    assert!(ok(&rivera, &["audit", "--since", "2999-01-01"]).is_empty());
    fails(
        &rivera,
        &["audit", "--until", "soon"],
        "--until \"soon\": write YYYY-MM-DD",
    );
    ok(&rivera, &["audit", "verify"]);
    relay.handle.shutdown().await;
}
