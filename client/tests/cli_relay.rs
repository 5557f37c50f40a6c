//! What the CLI says when the relay is gone or refuses for a limit.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_relay_is_an_error_that_says_the_edits_are_kept() {
    let relay = relay().await;
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
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
    relay.handle.shutdown().await;
    ok(&home, &["case", "new", "Jordan Avery"]);
    fails(&home, &["sync"], "what you wrote stays on this device");
    // Still there; that it is sent once the relay is back is
    // tests/tests/dead_relay.rs.
    assert!(ok(&home, &["case", "list"]).contains("Jordan Avery"));
}
