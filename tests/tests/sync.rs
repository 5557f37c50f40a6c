//! Two devices of one account, a real relay, offline edits, sync.

use casebook::notes::{NoteFormat, NoteInput};
use casebook_tests::*;

fn soap(subjective: &str, plan: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::parse("soap").unwrap());
    n.fields = vec![
        ("subjective".into(), subjective.into()),
        ("plan".into(), plan.into()),
    ];
    n
}

/// Found by following the README: every new account's first sync warned
/// "refused envelope 0 … does not continue the chain" about its own audit
/// document, created in that same sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_accounts_first_sync_refuses_nothing() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    let first = sync(&mut laptop).await;
    assert!(first.refused.is_empty(), "{:?}", first.refused);
    let again = sync(&mut laptop).await;
    assert!(again.refused.is_empty(), "{:?}", again.refused);
    assert!(
        !laptop
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|e| e.what.contains("refused")),
        "the audit trail records no refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_on_two_devices_merge() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop
        .edit_case(&case, "note added", |c| {
            Ok(c.add_note(
                soap(
                    "Reports sleeping badly since the move.",
                    "Review sleep diary next week.",
                ),
                "n1",
                "Dr. Rivera",
            )?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let note = tablet
        .docs()
        .read_case(&case, |c| c.note("n1"))
        .unwrap()
        .expect("note arrived");
    assert!(
        note.fields
            .iter()
            .any(|(k, v)| k == "plan" && v == "Review sleep diary next week.")
    );

    // Both offline: different fields, and different places of one field.
    laptop
        .edit_case(&case, "edit", |c| {
            Ok(c.edit_note(
                "n1",
                &[(
                    "subjective".into(),
                    "Reports sleeping badly since the move in October.".into(),
                )],
            )?)
        })
        .unwrap();
    tablet
        .edit_case(&case, "edit", |c| {
            Ok(c.edit_note(
                "n1",
                &[
                    (
                        "subjective".into(),
                        "Client reports sleeping badly since the move.".into(),
                    ),
                    (
                        "plan".into(),
                        "Review sleep diary next week; try a wind-down routine.".into(),
                    ),
                ],
            )?)
        })
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    sync(&mut laptop).await;
    let a = laptop
        .docs()
        .read_case(&case, |c| c.note("n1"))
        .unwrap()
        .unwrap();
    let b = tablet
        .docs()
        .read_case(&case, |c| c.note("n1"))
        .unwrap()
        .unwrap();
    assert_eq!(a.fields, b.fields);
    let get = |k: &str| a.fields.iter().find(|(f, _)| f == k).unwrap().1.clone();
    assert_eq!(
        get("subjective"),
        "Client reports sleeping badly since the move in October."
    );
    assert_eq!(
        get("plan"),
        "Review sleep diary next week; try a wind-down routine."
    );
    relay.stop().await;
}

/// A device's name travels to the account's other devices with the shared
/// audit trail, and so does when it was last seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_names_reach_the_accounts_other_devices() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    let me = laptop.device_id();
    laptop.name_device(&me, "Office laptop").unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    let rows = tablet.devices().unwrap();
    let row = rows.iter().find(|r| r.id == me).unwrap();
    assert_eq!(row.name.as_deref(), Some("Office laptop"));
    assert!(row.last_seen.is_some());
}
