//! A relay backed up while a device writes to it, restored into a new
//! folder: the copy is consistent (every log verifies) and holds every
//! change acknowledged before the backup began; a recovered device finds
//! them all on the restored relay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use casebook::notes::{NoteFormat, NoteInput};
use casebook_tests::*;

fn note(i: usize) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::parse("free").unwrap());
    n.fields = vec![("text".into(), format!("session {i}"))];
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_a_relay_that_serves_it() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, file, restored_dir, fresh_dir) = (
        tmp.path().join("laptop"),
        tmp.path().join("relay.backup"),
        tmp.path().join("restored"),
        tmp.path().join("fresh"),
    );
    let (mut laptop, words) = init_with_words(&laptop_dir, &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    sync(&mut laptop).await;

    // The laptop writes and syncs note after note; the backup starts once
    // a few are acknowledged, and the writing goes on during it.
    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let acked = acked.clone();
        async move {
            let conn = laptop.connect().await.unwrap();
            for i in 0..40 {
                laptop.add_note(&case, note(i)).unwrap();
                laptop.sync(&conn, &mut |_| {}).await.unwrap();
                acked.store(i + 1, Ordering::SeqCst);
            }
            conn.close().await;
        }
    };
    let backup = {
        let (data, file, acked) = (relay.data.path().to_path_buf(), file.clone(), acked.clone());
        async move {
            while acked.load(Ordering::SeqCst) < 10 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let before = acked.load(Ordering::SeqCst);
            let summary =
                tokio::task::spawn_blocking(move || casebook_relay::backup::backup(&data, &file))
                    .await
                    .unwrap()
                    .expect("the backup is taken while the relay writes");
            (before, summary)
        }
    };
    let ((), (before, summary)) = tokio::join!(writer, backup);
    assert!(summary.identity);
    assert_eq!(summary.accounts, 1);

    let restored = casebook_relay::backup::restore(&file, &restored_dir).expect("restored");
    assert_eq!(restored, summary);
    let again = casebook_relay::start(casebook_relay::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        &restored_dir,
    ))
    .await
    .expect("the restored relay starts (every log verified)");
    assert_eq!(again.fingerprint, relay.handle.fingerprint);

    let mut fresh = casebook::devices::recover(
        &fresh_dir,
        PASSPHRASE,
        &words,
        "Dr. Rivera",
        &again.addr.to_string(),
        again.fingerprint,
    )
    .await
    .expect("recovered against the restored relay");
    sync(&mut fresh).await;
    let notes = fresh.list_notes(&case).unwrap();
    assert!(
        notes.len() >= before,
        "{} notes on the restored relay, {before} acknowledged before the backup",
        notes.len()
    );
    again.shutdown().await;
}
