//! A device's backup: restored into a new folder it shows every case; a
//! byte changed, a chunk dropped or the end cut off is refused, as is a
//! wrong secret; a restored device older than what it had sent catches up
//! without losing or duplicating anything, its audit chain unbroken on
//! every device; a revoked device's backup restores the notes but not the
//! right to sync.

use std::path::Path;

use casebook::Home;
use casebook::backup::{self, BackupError, SecretKind};
use casebook::notes::{NoteFormat, NoteInput};
use casebook::store::KdfParams;
use casebook_tests::*;

const SECRET: &str = "a backup passphrase";

fn note(text: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Free);
    n.fields = vec![("text".into(), text.into())];
    n
}

fn make_backup(home: &Home) -> Vec<u8> {
    let mut out = Vec::new();
    home.backup(
        &mut out,
        SecretKind::Passphrase,
        SECRET.as_bytes(),
        KdfParams::FOR_SIMULATION,
    )
    .unwrap();
    out
}

fn restore(dir: &Path, bytes: &[u8], secret: &str) -> casebook::Result<backup::BackupInfo> {
    backup::restore(dir, &mut &bytes[..], |kind| {
        backup::secret_bytes(kind, secret)
    })
}

fn case_names(home: &Home) -> Vec<String> {
    let mut v: Vec<String> = home
        .list_cases(true)
        .unwrap()
        .into_iter()
        .map(|c| c.summary.name)
        .collect();
    v.sort();
    v
}

fn text_of(home: &mut Home, case: &casebook_shared::ids::DocId) -> Vec<String> {
    let mut v: Vec<String> = home
        .open_case(case)
        .unwrap()
        .notes
        .into_iter()
        .map(|n| n.field("text").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_or_wrongly_opened_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut home, words) = {
        let (h, w) = Home::init(
            &dir.path().join("laptop"),
            PASSPHRASE,
            "Dr. Rivera",
            "127.0.0.1:9",
            [7; 32],
        )
        .unwrap();
        (h, w.to_string())
    };
    let case = home_with_bulk(&mut home);
    let bytes = make_backup(&home);
    assert!(
        bytes.len() > 4 * 64 * 1024,
        "several chunks: {}",
        bytes.len()
    );
    // Whole: it verifies and restores, and shows the case.
    let info = backup::verify(&mut &bytes[..], |k| backup::secret_bytes(k, SECRET)).unwrap();
    assert_eq!(info.cases, 1);
    let fresh = dir.path().join("fresh");
    restore(&fresh, &bytes, SECRET).unwrap();
    let restored = Home::open(&fresh, PASSPHRASE).unwrap();
    assert_eq!(case_names(&restored), ["Jordan Avery"]);
    assert!(restored.list_cases(true).unwrap()[0].id == case);
    // Not over a home.
    assert!(matches!(
        restore(&fresh, &bytes, SECRET),
        Err(casebook::Error::Backup(BackupError::HomeExists(_)))
    ));

    let header = 16 + 1 + 1 + 12 + 16 + 19 + 16;
    let chunk = 64 * 1024 + 16;
    let mut flipped = bytes.clone();
    flipped[header + chunk + 100] ^= 1;
    let mut dropped = bytes.clone();
    dropped.drain(header + chunk..header + 2 * chunk);
    let cut = bytes[..header + 2 * chunk].to_vec();
    let mut header_edited = bytes.clone();
    header_edited[20] ^= 1; // the key-derivation cost
    for (what, bad) in [
        ("a flipped byte", &flipped),
        ("a dropped chunk", &dropped),
        ("the end cut off at a chunk boundary", &cut),
        ("an edited header", &header_edited),
    ] {
        let target = dir.path().join(what.replace(' ', "-"));
        let err = restore(&target, bad, SECRET).unwrap_err();
        assert!(
            matches!(
                err,
                casebook::Error::Backup(BackupError::Damaged(_) | BackupError::WrongSecret)
            ),
            "{what}: {err}"
        );
        assert!(!Home::exists(&target), "{what}: nothing put in place");
        assert!(backup::verify(&mut &bad[..], |k| backup::secret_bytes(k, SECRET)).is_err());
    }
    assert!(matches!(
        restore(&dir.path().join("wrong"), &bytes, "not the passphrase"),
        Err(casebook::Error::Backup(BackupError::WrongSecret))
    ));
    assert!(matches!(
        restore(
            &dir.path().join("junk"),
            b"hello, this is not a backup at all, not even close to one",
            SECRET
        ),
        Err(casebook::Error::Backup(BackupError::NotABackup))
    ));

    // Sealed under the recovery words: only the account's current ones.
    let mut sealed = Vec::new();
    home.backup(
        &mut sealed,
        SecretKind::RecoveryWords,
        &backup::secret_bytes(SecretKind::RecoveryWords, &words.to_uppercase()).unwrap(),
        KdfParams::FOR_SIMULATION,
    )
    .unwrap();
    let by_words = dir.path().join("by-words");
    restore(&by_words, &sealed, &words).unwrap();
    assert_eq!(
        case_names(&Home::open(&by_words, PASSPHRASE).unwrap()),
        ["Jordan Avery"]
    );
    let (other, _) = casebook::recovery::generate();
    let err = home
        .backup(
            &mut Vec::new(),
            SecretKind::RecoveryWords,
            &backup::secret_bytes(SecretKind::RecoveryWords, &other).unwrap(),
            KdfParams::FOR_SIMULATION,
        )
        .unwrap_err();
    assert!(
        matches!(err, casebook::Error::Backup(BackupError::NotTheseWords)),
        "{err}"
    );
}

/// A case with enough text that the backup spans several chunks.
fn home_with_bulk(home: &mut Home) -> casebook_shared::ids::DocId {
    let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let text: String = (0..500_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    home.add_note(&case, note(&text)).unwrap();
    case
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_older_device_catches_up_without_loss_or_duplicates() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop.add_note(&case, note("Before the backup.")).unwrap();
    sync(&mut laptop).await;
    let bytes = make_backup(&laptop);

    // After the backup the laptop goes on: a note, a new case, entries in
    // its audit trail, all sent. Then it is lost.
    laptop.add_note(&case, note("After the backup.")).unwrap();
    let later = laptop.create_case("Sam Okafor", "2026-11-21").unwrap();
    laptop
        .add_note(&later, note("Sam's first session."))
        .unwrap();
    sync(&mut laptop).await;
    let laptop_dir = laptop.dir().to_path_buf();
    drop(laptop);
    std::fs::remove_dir_all(&laptop_dir).unwrap();

    // Restored, it lacks those, and writes before it syncs.
    restore(&laptop_dir, &bytes, SECRET).unwrap();
    let mut restored = Home::open(&laptop_dir, PASSPHRASE).unwrap();
    assert_eq!(case_names(&restored), ["Jordan Avery"]);
    let written = restored
        .add_note(&case, note("Written on the restored laptop."))
        .unwrap();
    let report = sync(&mut restored).await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    sync(&mut restored).await;
    sync(&mut tablet).await;

    let all = [
        "After the backup.",
        "Before the backup.",
        "Written on the restored laptop.",
    ];
    for dev in [&mut restored, &mut tablet] {
        assert_eq!(case_names(dev), ["Jordan Avery", "Sam Okafor"]);
        assert_eq!(text_of(dev, &case), all, "every note once");
        assert_eq!(text_of(dev, &later), ["Sam's first session."]);
        dev.trail().verify().unwrap();
    }
    // The laptop's chain as the tablet holds it: what the lost laptop wrote
    // and what the restored one wrote since, each once, numbered on.
    sync(&mut restored).await;
    sync(&mut tablet).await;
    let chain: Vec<_> = tablet
        .trail()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|a| a.device == restored.device_id())
        .collect();
    let mut seqs: Vec<u64> = chain.iter().map(|a| a.seq).collect();
    seqs.sort();
    let n = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "no number used twice or skipped"
    );
    assert!(
        chain
            .iter()
            .any(|a| a.what.contains("added") && a.case == Some(later))
    );
    let added = format!("note {written} added");
    assert_eq!(
        chain.iter().filter(|a| a.what == added).count(),
        1,
        "what the restored laptop wrote reaches the tablet's trail, once"
    );
    let own: Vec<_> = restored
        .trail()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|a| a.device == restored.device_id())
        .collect();
    assert_eq!(own.iter().filter(|a| a.what == added).count(), 1);
    assert_eq!(
        own.len() as u64,
        n,
        "the restored laptop holds its own chain whole"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_devices_backup_restores_notes_but_not_the_right_to_sync() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop.add_note(&case, note("Seen today.")).unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    let bytes = make_backup(&tablet);
    let tablet_id = tablet.device_id();
    drop(tablet);
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet_id).await.unwrap();
    conn.close().await;
    sync(&mut laptop).await;

    let target = dir.path().join("tablet-restored");
    restore(&target, &bytes, SECRET).unwrap();
    let mut restored = Home::open(&target, PASSPHRASE).unwrap();
    assert_eq!(text_of(&mut restored, &case), ["Seen today."]);
    let err = try_sync(&mut restored).await.unwrap_err();
    assert!(matches!(err, casebook::Error::Revoked), "{err}");
    relay.stop().await;
}
