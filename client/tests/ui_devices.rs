//! Devices from the page: pairing a CLI device by the code the page shows
//! while it waits (and a pairing cancelled without holding the page up),
//! revoking that device after a confirmation, and new recovery words shown
//! once.

mod common;

use common::page::*;
use common::*;

/// The code a pairing page shows.
fn code_on(body: &str) -> String {
    body.split("casebook device join ")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("no code: {body}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_paired_revoked_and_the_recovery_words_replaced_from_the_page() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet) = (dir.path().join("laptop"), dir.path().join("tablet"));
    init_at(&laptop, &relay, "Dr. Rivera");
    let page = Page::start(&laptop, &[]);
    let cookie = page.unlocked();
    let listed = page.get(&cookie, "/devices").body;
    assert!(
        listed.contains("this device") && listed.contains("Recovery words"),
        "{listed}"
    );

    // A pairing cancelled gives the page back at once.
    assert_eq!(page.post(&cookie, "/devices/pair", "").status, 303);
    let waiting = page.get(&cookie, "/devices/pair").body;
    assert!(waiting.contains("Waiting for the new device"), "{waiting}");
    assert!(waiting.contains("http-equiv=\"refresh\""), "{waiting}");
    assert_eq!(page.post(&cookie, "/devices/pair/cancel", "").status, 303);
    eventually("the cancel to take", || {
        page.get(&cookie, "/devices/pair")
            .body
            .contains("Pairing was cancelled.")
    });
    assert_eq!(page.get(&cookie, "/devices").status, 200);

    // Paired by the code the page shows.
    assert_eq!(page.post(&cookie, "/devices/pair", "").status, 303);
    let code = code_on(&page.get(&cookie, "/devices/pair").body);
    let relay_args = init_args(&relay, "unused");
    let joined = run(
        &tablet,
        &[
            "device",
            "join",
            &code,
            "--relay",
            &relay_args[4],
            "--relay-fingerprint",
            &relay_args[6],
            "--device-name",
            "tablet",
        ],
    );
    assert!(joined.status.success(), "{joined:?}");
    eventually("the page to say it paired", || {
        page.get(&cookie, "/devices/pair")
            .body
            .contains("Paired device")
    });
    ok(&tablet, &["sync"]);
    let listed = page.get(&cookie, "/devices").body;
    let tablet_id = listed
        .split("name=\"device\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no device to revoke: {listed}"))
        .to_string();

    // Revoked after a confirmation; the tablet is refused from then on.
    let asked = page.post(&cookie, "/devices/revoke", &format!("device={tablet_id}"));
    assert!(asked.body.contains("Revoke"), "{}", asked.body);
    assert!(
        asked.body.contains("What it already holds stays on it"),
        "{}",
        asked.body
    );
    let done = page.post(
        &cookie,
        "/devices/revoke/confirm",
        &format!("device={tablet_id}"),
    );
    assert_eq!(done.status, 303, "{done:?}");
    assert!(page.get(&cookie, "/devices").body.contains("revoked"));
    eventually("the revocation reaching the relay", || {
        !run(&tablet, &["sync"]).status.success()
    });

    // New recovery words, shown once.
    // Asked first; the words change only when confirmed.
    let asked = page.post(&cookie, "/devices/recovery-words", "");
    assert!(
        asked.body.contains("Replace your recovery words?"),
        "{}",
        asked.body
    );
    assert!(!asked.body.contains("class=\"words\""), "{}", asked.body);
    let words = page.post(&cookie, "/devices/recovery-words/confirm", "");
    assert_eq!(words.status, 200, "{words:?}");
    let shown = words
        .body
        .split("<code class=\"words\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert_eq!(shown.split_whitespace().count(), 12, "{shown}");
    assert_eq!(words.header("cache-control"), Some("no-store"));
}
