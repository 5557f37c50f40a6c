//! The audit trail is hash-chained: a deleted, changed or reordered entry
//! is detected by `Trail::verify`, and disclosures are recorded with their terms.

use casebook::Home;
use casebook_tests::PASSPHRASE;

fn trail_home(dir: &std::path::Path) -> Home {
    let (mut home, _) = Home::init(dir, PASSPHRASE, "Dr. Rivera", "127.0.0.1:1", [0; 32]).unwrap();
    for name in ["A", "B", "C"] {
        let case = home.create_case(name, "2026-11-20").unwrap();
        home.trail().record_view(&case).unwrap();
    }
    assert!(home.trail().verify().unwrap() >= 7);
    home
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(casebook::home::DB_FILE)).unwrap()
}

#[test]
fn a_deleted_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    drop(trail_home(dir.path()));
    db(dir.path())
        .execute("DELETE FROM audit WHERE id = 3", [])
        .unwrap();
    let home = Home::open(dir.path(), PASSPHRASE).unwrap();
    let err = home.trail().verify().unwrap_err().to_string();
    assert!(err.contains("entry 3"), "{err}");
}

#[test]
fn the_newest_entry_deleted_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let home = trail_home(dir.path());
    let last: i64 = db(dir.path())
        .query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))
        .unwrap();
    db(dir.path())
        .execute("DELETE FROM audit WHERE id = ?1", [last])
        .unwrap();
    assert!(home.trail().verify().is_err());
}

#[test]
fn swapped_or_changed_entries_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let home = trail_home(dir.path());
    let conn = db(dir.path());
    let a: Vec<u8> = conn
        .query_row("SELECT sealed FROM audit WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let b: Vec<u8> = conn
        .query_row("SELECT sealed FROM audit WHERE id = 4", [], |r| r.get(0))
        .unwrap();
    conn.execute("UPDATE audit SET sealed = ?1 WHERE id = 4", [&a])
        .unwrap();
    conn.execute("UPDATE audit SET sealed = ?1 WHERE id = 2", [&b])
        .unwrap();
    assert!(home.trail().verify().is_err(), "swapped");
    conn.execute("UPDATE audit SET sealed = ?1 WHERE id = 4", [&b])
        .unwrap();
    conn.execute("UPDATE audit SET sealed = ?1 WHERE id = 2", [&a])
        .unwrap();
    assert!(home.trail().verify().is_ok(), "restored");
    let mut changed = a.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 1;
    conn.execute("UPDATE audit SET sealed = ?1 WHERE id = 2", [&changed])
        .unwrap();
    assert!(home.trail().verify().is_err(), "changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_is_shared_by_the_accounts_devices_once_each() {
    let relay = casebook_tests::TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = casebook_tests::init(dirs.0.path(), &relay, "Dr. Rivera");
    casebook_tests::sync(&mut laptop).await;
    let mut tablet = casebook_tests::pair(&mut laptop, dirs.1.path(), &relay).await;
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop.trail().record_view(&case).unwrap();
    for _ in 0..3 {
        casebook_tests::sync(&mut laptop).await;
        casebook_tests::sync(&mut tablet).await;
    }
    let on_tablet: Vec<_> = tablet
        .trail()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|a| a.device == laptop.device_id() && a.what == "case created")
        .collect();
    assert_eq!(
        on_tablet.len(),
        1,
        "the laptop's entry arrives once, however often it syncs"
    );
    assert!(
        tablet
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.device == laptop.device_id() && a.what == "case viewed")
    );
    assert!(
        laptop
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.device == tablet.device_id())
    );
    tablet.trail().verify().unwrap();
    laptop.trail().verify().unwrap();
    relay.stop().await;
}

/// A colleague's edits and comments are on the owner's record: the
/// owner's devices audit who changed a shared case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_edits_and_comments_are_in_the_owners_trail() {
    use casebook_tests::*;
    let relay = TestRelay::start().await;
    let dirs = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut rivera = init(dirs.0.path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs.1.path(), &relay, "Dr. Chen");
    let mut lee = init(dirs.2.path(), &relay, "Dr. Lee");
    sync(&mut chen).await;
    sync(&mut lee).await;
    let (reviewed, cotreated) = (
        rivera.create_case("Jordan Avery", "2026-11-20").unwrap(),
        rivera.create_case("Sam Okafor", "2026-11-20").unwrap(),
    );
    for case in [&reviewed, &cotreated] {
        let mut n = casebook::notes::NoteInput::new(
            "2026-11-20",
            casebook::notes::NoteFormat::parse("free").unwrap(),
        );
        n.fields = vec![("text".into(), "First session.".into())];
        rivera.add_note(case, n).unwrap();
    }
    sync(&mut rivera).await;
    befriend(&mut rivera, "Dr. Chen", &chen.account_id());
    befriend(&mut rivera, "Dr. Lee", &lee.account_id());
    share_case(&mut rivera, &reviewed, "Dr. Chen", "comment", true).await;
    share_case(&mut rivera, &cotreated, "Dr. Lee", "write", true).await;
    sync(&mut chen).await;
    sync(&mut lee).await;
    let note = chen.list_notes(&reviewed).unwrap()[0].id.clone();
    chen.comment_note(&reviewed, &note, "Consider CBT-I.")
        .unwrap();
    sync(&mut chen).await;
    let note = lee.list_notes(&cotreated).unwrap()[0].id.clone();
    lee.edit_note(
        &cotreated,
        &note,
        &[("text".into(), "First session, long.".into())],
    )
    .unwrap();
    sync(&mut lee).await;
    sync(&mut rivera).await;

    let trail = rivera.trail().entries().unwrap();
    let said = |case: &casebook_shared::ids::DocId, what: &str| {
        trail
            .iter()
            .any(|r| r.case == Some(*case) && r.what == what)
    };
    assert!(
        said(&reviewed, "Dr. Chen commented on the case"),
        "{trail:#?}"
    );
    assert!(said(&cotreated, "Dr. Lee edited the case"), "{trail:#?}");
    rivera.trail().verify().unwrap();

    // And each note says who wrote into it besides its maker.
    let edited = rivera.show_note(&cotreated, &note).unwrap();
    assert_eq!(edited.edited_by, ["Dr. Lee"]);
    assert_eq!(edited.created_by, "Dr. Rivera");
    let on_lee = lee.show_note(&cotreated, &note).unwrap();
    assert_eq!(on_lee.edited_by, ["Dr. Lee"], "every device decides alike");
    let commented = rivera.list_notes(&reviewed).unwrap()[0].id.clone();
    let commented = rivera.show_note(&reviewed, &commented).unwrap();
    assert!(commented.edited_by.is_empty(), "a comment is not an edit");
    assert_eq!(commented.comments[0].by, "Dr. Chen");
}
