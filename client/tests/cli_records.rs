//! The record's trail from the command line: every read of clinical
//! content audited, a colleague's edits named, shares that ended kept in
//! view on request, and the recovery key never lost by a slip.

mod common;

use std::process::Stdio;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_audited_and_the_recovery_key_is_not_lost_by_a_slip() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let dir = tempfile::tempdir().unwrap();
    let (laptop, spare) = (dir.path().join("laptop"), dir.path().join("spare"));
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
    assert!(init.status.success());
    let old_words = shown_words(&init.stderr);
    let case = ok(&laptop, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
    let note = ok(
        &laptop,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    )
    .trim()
    .to_string();
    ok(
        &laptop,
        &["private", "add", &case, "--text", "Felt protective."],
    );

    // Every read of clinical content is recorded, with its case and note.
    ok(&laptop, &["case", "show", &case]);
    ok(&laptop, &["note", "list", &case]);
    ok(&laptop, &["note", "show", &case, &note]);
    ok(&laptop, &["private", "list", &case]);
    assert!(ok(&laptop, &["search", "sleep"]).contains(&case[..8]));
    let trail: serde_json::Value =
        serde_json::from_str(&ok(&laptop, &["--json", "audit", "--case", &case])).unwrap();
    let what: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["what"].as_str().unwrap())
        .collect();
    for expected in [
        "case viewed".to_string(),
        "note list viewed".to_string(),
        format!("note {note} viewed"),
        "psychotherapy notes viewed".to_string(),
        format!("search results shown: notes {note}"),
    ] {
        assert!(
            what.contains(&expected.as_str()),
            "{expected:?} not in {what:?}"
        );
    }

    ok(&laptop, &["case", "list"]);
    let all: serde_json::Value =
        serde_json::from_str(&ok(&laptop, &["--json", "audit", "--limit", "500"])).unwrap();
    let all: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["what"].as_str().unwrap())
        .collect();
    assert!(all.contains(&"case list viewed"), "{all:?}");
    // The spell of use began with `init`: no command since adds an unlock
    // line beside its own.
    assert_eq!(
        all.iter().filter(|w| **w == "store unlocked").count(),
        0,
        "one entry per command, not an unlock line each time: {all:?}"
    );

    // The recovery key: not revoked by a slip; revoked with new words.
    let devices: serde_json::Value =
        serde_json::from_str(&ok(&laptop, &["--json", "device", "list"])).unwrap();
    let paper = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "recovery")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fails(
        &laptop,
        &["device", "revoke", &paper[..8]],
        "--recovery-key",
    );
    let replaced = run(
        &laptop,
        &["device", "revoke", &paper[..8], "--recovery-key"],
    );
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let new_words = shown_words(&replaced.stderr);
    assert_ne!(new_words, old_words);
    let devices: serde_json::Value =
        serde_json::from_str(&ok(&laptop, &["--json", "device", "list"])).unwrap();
    let papers: Vec<bool> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "recovery")
        .map(|d| d["revoked"].as_bool().unwrap())
        .collect();
    assert_eq!(
        papers,
        [true, false],
        "the old key revoked, a new one listed"
    );

    let recover = |words: &str, name: Option<&str>| {
        let mut c = casebook(&spare);
        c.args(["recover", "--relay", &addr, "--relay-fingerprint", &fp])
            .env("CASEBOOK_RECOVERY_WORDS", words)
            .stdin(Stdio::null());
        if let Some(n) = name {
            c.args(["--name", n]);
        }
        c.output().unwrap()
    };
    let old = recover(&old_words, Some("Dr. Rivera"));
    assert!(!old.status.success(), "the old words still work");
    let nameless = recover(&new_words, None);
    assert!(!nameless.status.success());
    assert!(String::from_utf8_lossy(&nameless.stderr).contains("--name"));
    let back = recover(&new_words, Some("Dr. Rivera"));
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    // A recovered device signs under the practitioner's name.
    ok(&spare, &["note", "sign", &case, &note]);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&spare, &["--json", "note", "show", &case, &note])).unwrap();
    assert_eq!(shown["signed_by"], "Dr. Rivera");
    relay.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_edit_is_named_and_an_ended_share_shows_with_all() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen) = (dir.path().join("rivera"), dir.path().join("chen"));
    init_at(&rivera, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    let case = new_case(&rivera, "Jordan Avery");
    let note = ok(
        &rivera,
        &[
            "note",
            "add",
            &case,
            "--format",
            "free",
            "--field",
            "text=First session.",
        ],
    )
    .trim()
    .to_string();
    befriend(&rivera, &chen, "Dr. Chen");
    ok(&rivera, &share_args(&case, "Dr. Chen", "write", &[]));
    ok(&chen, &["sync"]);
    // The owner is no contact of Dr. Chen's: named as they signed the
    // share, and marked so, not as a bare account.
    let shown = ok(&chen, &["note", "show", &case, &note]);
    assert!(shown.contains("by Dr. Rivera (not a contact)"), "{shown}");
    ok(
        &chen,
        &[
            "note",
            "edit",
            &case,
            &note,
            "--field",
            "text=First session, long.",
        ],
    );
    ok(&chen, &["sync"]);
    ok(&rivera, &["sync"]);
    let shown = ok(&rivera, &["note", "show", &case, &note]);
    assert!(shown.contains("by Dr. Rivera"), "{shown}");
    assert!(shown.contains("edited by Dr. Chen"), "{shown}");
    let trail = ok(&rivera, &["audit", "--case", &case]);
    assert!(trail.contains("Dr. Chen edited the case"), "{trail}");
    // A colleague's case says whose it is and in what role; one's own
    // says nothing of the kind.
    let listed = ok(&chen, &["case", "list"]);
    assert!(
        listed.contains("1 note ") && listed.contains("(shared with you by Dr. Rivera, write)"),
        "{listed}"
    );
    assert!(!ok(&rivera, &["case", "list"]).contains("shared with you"));

    // Once ended, a share leaves the lists unless asked for, marked; the
    // case stays readable to the colleague, plainly no longer theirs.
    ok(&rivera, &["unshare", &case, "--with", "Dr. Chen"]);
    // An edit written before the colleague learnt of it is held, named by
    // its case, with what to do about it.
    ok(
        &chen,
        &[
            "note",
            "edit",
            &case,
            &note,
            "--field",
            "text=Written late.",
        ],
    );
    let synced = run(&chen, &["sync"]);
    let said = String::from_utf8_lossy(&synced.stderr);
    assert!(
        said.contains("1 edit(s) to the case of Jordan Avery")
            && said.contains(&format!("`casebook held discard {}`", &case[..8])),
        "{said} / {}",
        String::from_utf8_lossy(&synced.stdout)
    );
    let listed = ok(&chen, &["case", "list"]);
    assert!(
        listed.contains("NO LONGER SHARED with you by Dr. Rivera"),
        "{listed}"
    );
    let shown = ok(&chen, &["case", "show", &case]);
    assert!(
        shown.contains("NO LONGER SHARED with you by Dr. Rivera"),
        "{shown}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&chen, &["--json", "case", "list"])).unwrap();
    assert_eq!(listed[0]["shared_with_me"]["state"], "ended", "{listed}");
    assert_eq!(listed[0]["shared_with_me"]["shared_by"], "Dr. Rivera");
    let own: serde_json::Value =
        serde_json::from_str(&ok(&rivera, &["--json", "case", "list"])).unwrap();
    assert!(own[0]["shared_with_me"].is_null(), "{own}");
    for (home, args) in [
        (&rivera, vec!["shared", case.as_str()]),
        (&chen, vec!["shared"]),
    ] {
        let out = run(home, &args);
        assert!(out.status.success());
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let mut all = args.clone();
        all.push("--all");
        let listed = ok(home, &all);
        assert!(listed.contains("(ENDED)"), "{listed}");
    }
}
