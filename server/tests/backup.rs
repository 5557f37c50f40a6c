//! `casebook-relay backup` and `restore`, run as an operator would.

mod common;

use common::{RelayProcess, run, stderr};

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_running_relay_is_backed_up_and_restored_with_its_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, file, again) = (
        tmp.path().join("data"),
        tmp.path().join("relay.backup"),
        tmp.path().join("restored"),
    );
    let relay = RelayProcess::start(&data, &[]);
    let out = run(&["backup", "--data", s(&data), "--to", s(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("certificate and key included"), "{said}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "the backup holds the private key"
    );
    // Never over an existing file.
    let out = run(&["backup", "--data", s(&data), "--to", s(&file)]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // Never into a relay's folder, running or not.
    let out = run(&["restore", "--from", s(&file), "--data", s(&data)]);
    assert!(
        stderr(&out).contains("another relay is running"),
        "{}",
        stderr(&out)
    );
    let fingerprint = relay.fingerprint.clone();
    relay.stop();
    let out = run(&["restore", "--from", s(&file), "--data", s(&data)]);
    assert!(
        stderr(&out).contains("already holds a relay"),
        "{}",
        stderr(&out)
    );

    // A backup whose signed log was changed does not verify; the failed
    // restore leaves the folder as it was, so it can be tried again.
    let bad = tmp.path().join("bad.backup");
    std::fs::copy(&file, &bad).unwrap();
    rusqlite::Connection::open(&bad)
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS account_entries(account BLOB, seq INTEGER, entry BLOB);
             INSERT INTO account_entries VALUES (zeroblob(32), 0, x'00');",
        )
        .unwrap();
    let out = run(&["restore", "--from", s(&bad), "--data", s(&again)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    assert!(!again.exists());

    let out = run(&["restore", "--from", s(&file), "--data", s(&again)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = RelayProcess::start(&again, &[]);
    assert_eq!(restored.fingerprint, fingerprint);
    restored.stop();
}

#[test]
fn what_is_not_a_relay_or_a_backup_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"not a database at all, just some words").unwrap();
    let out = run(&[
        "restore",
        "--from",
        s(&junk),
        "--data",
        s(&tmp.path().join("d")),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a casebook relay backup"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("d").exists());
    let out = run(&[
        "backup",
        "--data",
        s(tmp.path()),
        "--to",
        s(&tmp.path().join("b")),
    ]);
    assert!(
        stderr(&out).contains("no relay database"),
        "{}",
        stderr(&out)
    );
}
