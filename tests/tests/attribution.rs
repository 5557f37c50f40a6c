//! Who wrote a psychotherapy note is read off the operations that wrote
//! it, as for notes and remarks: a colleague who may write the private
//! notes cannot pass an entry off as the owner's by typing the owner's name.

use casebook_shared::access::Role;
use casebook_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psychotherapy_note_is_named_for_the_account_that_wrote_it() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut rivera = init(dirs.0.path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs.1.path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    rivera
        .add_private_note(&case, "Process: guarded today.")
        .unwrap();
    sync(&mut rivera).await;
    befriend(&mut rivera, "Dr. Chen", &chen.account_id());
    share_with_private(&mut rivera, &case, "Dr. Chen", Role::Write).await;
    sync(&mut chen).await;

    // Dr. Chen's device types Dr. Rivera's name under its entry.
    chen.set_name("Dr. Rivera").unwrap();
    chen.add_private_note(&case, "Process: written by the co-therapist.")
        .unwrap();
    sync(&mut chen).await;
    sync(&mut rivera).await;
    let entries = rivera.private_notes(&case).unwrap();
    let by = |text: &str| {
        entries
            .iter()
            .find(|e| e.text.contains(text))
            .map(|e| (e.by.clone(), e.unverified))
            .unwrap()
    };
    assert_eq!(by("guarded today"), ("Dr. Rivera".to_string(), false));
    assert_eq!(
        by("co-therapist"),
        ("Dr. Chen".to_string(), false),
        "named for the account whose device wrote it"
    );
    relay.stop().await;
}

/// Found by following the README: after `whoami --set-name`, a note signed
/// before showed the new name alone, on that device only, and an export
/// said so too. The signature keeps the name it was signed under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_keeps_the_name_it_was_signed_under() {
    use casebook::notes::{NoteFormat, NoteInput};
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rivera = init(dir.path(), &relay, "Dr. Rivera");
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    let mut input = NoteInput::new("2026-11-20", NoteFormat::parse("soap").unwrap());
    input.fields = vec![("plan".into(), "Sleep diary.".into())];
    let note = rivera.add_note(&case, input).unwrap();
    rivera.sign_note(&case, &note).unwrap();
    let shown = rivera.show_note(&case, &note).unwrap();
    assert_eq!(shown.signed_by.as_deref(), Some("Dr. Rivera"));
    assert_eq!(
        shown.signed_as, None,
        "nothing to add while the names agree"
    );

    rivera.set_name("Dr. Ana Rivera").unwrap();
    let shown = rivera.show_note(&case, &note).unwrap();
    assert_eq!(shown.signed_by.as_deref(), Some("Dr. Ana Rivera"));
    assert_eq!(shown.signed_as.as_deref(), Some("Dr. Rivera"));
    assert!(!shown.signature_broken);
    relay.stop().await;
}
