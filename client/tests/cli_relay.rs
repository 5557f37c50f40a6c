//! What the CLI says when the relay is gone or refuses for a limit.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_relay_is_an_error_that_says_the_edits_are_kept() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    relay.handle.shutdown().await;
    ok(&home, &["case", "new", "Jordan Avery"]);
    fails(&home, &["sync"], "what you wrote stays on this device");
    // Still there; that it is sent once the relay is back is
    // tests/tests/dead_relay.rs.
    assert!(ok(&home, &["case", "list"]).contains("Jordan Avery"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quota_is_named_and_says_what_to_do() {
    let relay = relay_with(casebook_relay::limits::Limits {
        quota_bytes: 4 * 1024,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    // Digits of a hash chain: text that does not compress.
    let mut text = String::new();
    let mut x: u64 = 1;
    while text.len() < 8000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!("{:x}", x >> 11));
    }
    ok(
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
            &format!("text={text}"),
        ],
    );
    fails(&home, &["sync"], "limit storage-quota");
    fails(
        &home,
        &["sync"],
        "ask the relay's operator to raise the limit",
    );
    assert!(ok(&home, &["note", "list", &case]).contains("2026-11-20"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_checks_the_relay_first_and_leaves_nothing_when_it_is_wrong() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let wrong_fp = format!("sha256:{}", "0".repeat(64));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    let init = |relay: &str, fp: &str| {
        run(
            &home,
            &[
                "init",
                "--name",
                "Dr. Rivera",
                "--relay",
                relay,
                "--relay-fingerprint",
                fp,
            ],
        )
    };
    for (relay_addr, fingerprint, says) in [
        (addr.as_str(), wrong_fp.as_str(), "certificate"),
        ("127.0.0.1:1", fp.as_str(), "cannot reach the relay"),
        ("localhost", fp.as_str(), "give HOST:PORT"),
    ] {
        let out = init(relay_addr, fingerprint);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{relay_addr} {fingerprint}");
        assert!(err.contains(says), "{relay_addr}: {err}");
        assert!(err.contains("nothing was set up"), "{err}");
        assert!(!err.contains("recovery words"), "{err}");
        assert!(!home.exists(), "{relay_addr} left {}", home.display());
    }
    // The right ones: set up, and the account is on the relay already.
    let out = init(&addr, &fp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Offline: no relay needed at all, registered at the first sync.
    let other = dir.path().join("offline");
    ok(
        &other,
        &[
            "init",
            "--offline",
            "--name",
            "Dr. Chen",
            "--relay",
            "127.0.0.1:1",
            "--relay-fingerprint",
            &wrong_fp,
        ],
    );
}

/// The colleague sets up and sends the card at once; the owner adds,
/// verifies and shares before the colleague ever synced. A colleague who
/// set up offline is named, with what to ask them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_shared_with_a_colleague_who_never_synced() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, lee) = (
        dir.path().join("rivera"),
        dir.path().join("chen"),
        dir.path().join("lee"),
    );
    init_at(&rivera, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    ok(
        &lee,
        &[
            "init",
            "--offline",
            "--name",
            "Dr. Lee",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    let case = new_case(&rivera, "Jordan Avery");
    befriend(&rivera, &chen, "Dr. Chen");
    befriend(&rivera, &lee, "Dr. Lee");
    let share = |with: &str| run(&rivera, &share_args(&case, with, "read", &[]));
    let out = share("Dr. Chen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = share("Dr. Lee");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dr. Lee's account is not on this relay"),
        "{err}"
    );
    assert!(
        err.contains("ask Dr. Lee to run `casebook sync` once"),
        "{err}"
    );
    // Once Dr. Lee has synced, it works.
    ok(&lee, &["sync"]);
    let out = share("Dr. Lee");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And Dr. Chen, who never synced before, sees the case at the first sync.
    ok(&chen, &["sync"]);
    assert!(ok(&chen, &["case", "list"]).contains("Jordan Avery"));
}

/// The relay moves to a new address: the home follows with `relay set`,
/// after checking it, and what was queued goes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_follows_its_relay_to_a_new_address() {
    let data = tempfile::tempdir().unwrap();
    let old = relay_in(data.path()).await;
    let fp = casebook_relay::format_fingerprint(&old.fingerprint);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    let old_addr = old.addr.to_string();
    ok(
        &home,
        &[
            "init",
            "--name",
            "Dr. Rivera",
            "--relay",
            &old_addr,
            "--relay-fingerprint",
            &fp,
        ],
    );
    ok(&home, &["case", "new", "Jordan Avery"]);
    old.shutdown().await;
    let new = relay_in(data.path()).await;
    let new_addr = new.addr.to_string();
    assert!(ok(&home, &["relay", "show"]).contains(&old_addr));

    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = run(&home, &["relay", "set", &new_addr, "--fingerprint", &wrong]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("presented a certificate other than the one pinned"),
        "{said}"
    );
    // What the relay presented is not offered for copying.
    assert!(!said.contains(&fp["sha256:".len()..]), "{said}");
    let out = run(
        &home,
        &["--json", "relay", "set", &new_addr, "--fingerprint", &wrong],
    );
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "wrong_fingerprint", "{err}");
    let other = relay().await;
    let other_fp = casebook_relay::format_fingerprint(&other.handle.fingerprint);
    fails(
        &home,
        &[
            "relay",
            "set",
            &other.handle.addr.to_string(),
            "--fingerprint",
            &other_fp,
        ],
        "relay show` shows the ones in use",
    );
    assert!(
        ok(&home, &["relay", "show"]).contains(&old_addr),
        "unchanged"
    );

    ok(&home, &["relay", "set", &new_addr, "--fingerprint", &fp]);
    assert!(ok(&home, &["relay", "show"]).contains(&new_addr));
    let report: serde_json::Value = serde_json::from_str(&ok(&home, &["--json", "sync"])).unwrap();
    assert!(report["pushed"].as_u64().unwrap() >= 1, "{report}");
    new.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_is_unsent_the_last_sync_the_relay_and_what_ends_soon() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (home, chen) = (dir.path().join("laptop"), dir.path().join("chen"));
    init_at(&home, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    let status = |home: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&ok(home, &["--json", "status"])).unwrap()
    };
    let s = status(&home);
    assert_eq!(s["relay_reachable"], true, "{s}");
    assert!(s["last_sync_at"].is_null(), "{s}");

    let case = new_case(&home, "Jordan Avery");
    let s = status(&home);
    assert!(s["unsent"].as_u64().unwrap() > 0, "{s}");
    befriend(&home, &chen, "Dr. Chen");
    let in_three_days = jiff::ZonedDateTime::now()
        .date()
        .checked_add(jiff::Span::new().days(3))
        .unwrap()
        .to_string();
    ok(
        &home,
        &share_args(&case, "Dr. Chen", "read", &["--expires", &in_three_days]),
    );
    let s = status(&home);
    assert_eq!(s["ending"][0]["account_name"], "Dr. Chen", "{s}");
    assert_eq!(s["ending"][0]["case"], case.as_str(), "{s}");
    let text = ok(&home, &["status"]);
    assert!(
        text.contains("ends soon") && text.contains("Jordan Avery"),
        "{text}"
    );
    // The day given, not the midnight after it (found by following the
    // README: "--expires 2026-12-05" showed as "on 2026-12-06 00:00").
    assert!(
        text.contains(&format!("at the end of {in_three_days}")),
        "{text}"
    );
    let shared = ok(&home, &["shared", &case]);
    assert!(
        shared.contains(&format!("until the end of {in_three_days}")),
        "{shared}"
    );

    ok(&home, &["sync"]);
    let s = status(&home);
    assert_eq!(s["unsent"], 0, "{s}");
    assert!(s["last_sync_at"].is_string(), "{s}");

    relay.handle.shutdown().await;
    let s = status(&home);
    assert_eq!(s["relay_reachable"], false, "{s}");
    assert!(s["relay_error"].is_string(), "{s}");
}
