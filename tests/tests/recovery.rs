//! The recovery words restore the account, and every case, on a new device.

use casebook::notes::{NoteFormat, NoteInput};
use casebook_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_words_restore_every_case() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut laptop, words) = init_with_words(dirs.0.path(), &relay, "Dr. Rivera");
    for name in ["Jordan Avery", "Sam Lee"] {
        let case = laptop.create_case(name, "2026-11-20").unwrap();
        let mut n = NoteInput::new("2026-11-20", NoteFormat::Dap);
        n.fields = vec![("data".into(), format!("Session with {name}."))];
        laptop
            .edit_case(&case, "note", |c| Ok(c.add_note(n, "n1", "Dr. Rivera")?))
            .unwrap();
    }
    sync(&mut laptop).await;

    let wrong = casebook::devices::recover(
        dirs.1.path(),
        PASSPHRASE,
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        "",
        &relay.addr(),
        relay.handle.fingerprint,
    )
    .await;
    assert!(wrong.is_err(), "words of no account");
    let mut fresh = casebook::devices::recover(
        dirs.1.path(),
        PASSPHRASE,
        &words,
        "Dr. Rivera",
        &relay.addr(),
        relay.handle.fingerprint,
    )
    .await
    .unwrap();
    assert_eq!(fresh.account_id(), laptop.account_id());
    sync(&mut fresh).await;
    let cases = fresh.docs().cases().unwrap();
    assert_eq!(cases.len(), 2);
    let note = fresh
        .docs()
        .read_case(&cases[0].0, |c| c.note("n1"))
        .unwrap()
        .unwrap();
    assert_eq!(note.field("data"), "Session with Jordan Avery.");
    assert_eq!(
        laptop.devices().unwrap().len(),
        2,
        "before the laptop syncs"
    );
    sync(&mut laptop).await;
    assert_eq!(
        laptop.devices().unwrap().len(),
        3,
        "laptop, recovery key, new device"
    );
    relay.stop().await;
}
