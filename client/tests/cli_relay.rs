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
    let case = ok(&home, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
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
