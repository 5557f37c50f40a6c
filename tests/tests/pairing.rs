//! Pairing a new device with a short code: a mistyped code fails on both
//! devices at once, and leaves nothing behind.

use std::time::Duration;

use casebook::pairing::PairingError;
use casebook_tests::*;

/// The same code with its last character changed: the same mailbox, the
/// wrong password.
fn mistyped(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let last = chars.last_mut().unwrap();
    *last = if *last == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_code_fails_on_both_devices_at_once() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let conn = laptop.connect().await.unwrap();
    let code = casebook::pairing::new_code();
    let typo = mistyped(&code);
    let tablet = dirs.1.path().join("tablet");
    let addr = relay.addr();
    // The new device used to wait two minutes after the other already knew;
    // the guard is half that.
    let (added, joined) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            laptop.pair_add(&conn, &code, Duration::from_secs(60)),
            casebook::pairing::join(&tablet, PASSPHRASE, &typo, &addr, relay.handle.fingerprint)
        )
    })
    .await
    .expect("both devices gave up on their own");
    for r in [added.map(|_| ()), joined.map(|_| ())] {
        assert!(
            matches!(r, Err(casebook::Error::Pairing(PairingError::WrongCode))),
            "{r:?}"
        );
    }
    assert!(!casebook::Home::exists(&tablet));
    conn.close().await;
}
