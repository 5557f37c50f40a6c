//! Edits held back because a share ended while the colleague was writing
//! offline: settled once (saved to a file or discarded), recorded, and the
//! case fetched afresh if shared again.

use casebook_tests::*;

/// A share ended while the colleague was offline writing: their edits are
/// held, the share is marked ended on both sides, and the colleague saves
/// the held edits to a file (recorded) instead of being warned forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_edits_are_saved_or_discarded_and_ended_shares_marked() {
    use casebook::sharing::ShareState;
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut rivera = init(dirs.0.path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs.1.path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    let mut n = casebook::notes::NoteInput::new("2026-11-20", casebook::notes::NoteFormat::Free);
    n.fields = vec![("text".into(), "First session.".into())];
    let note = rivera.add_note(&case, n).unwrap();
    rivera
        .add_private_note(&case, "Process: guarded today.")
        .unwrap();
    sync(&mut rivera).await;
    befriend(&mut rivera, "Dr. Chen", &chen.account_id());
    // Shared with the psychotherapy notes, which Dr. Chen may write too.
    share_with_private(
        &mut rivera,
        &case,
        "Dr. Chen",
        casebook_shared::access::Role::Write,
    )
    .await;
    sync(&mut chen).await;
    // Dr. Chen writes offline; the share ends meanwhile.
    chen.edit_note(
        &case,
        &note,
        &[("text".into(), "First session; risk discussed.".into())],
    )
    .unwrap();
    chen.add_private_note(&case, "Process: my own unease at the risk talk.")
        .unwrap();
    rivera.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut rivera).await;
    let report = sync(&mut chen).await;
    assert_eq!(report.held.len(), 2, "case and private: {:?}", report.held);
    // Each named by what a person knows it as, and theirs to settle.
    for h in &report.held {
        assert_eq!(h.case, Some(case), "{h:?}");
        assert_eq!(h.case_name.as_deref(), Some("Jordan Avery"));
        assert!(h.to_settle, "{h:?}");
    }
    assert_eq!(report.held.iter().filter(|h| h.private).count(), 1);
    assert_eq!(chen.status().unwrap().held.len(), 2);
    assert!(chen.status().unwrap().held.iter().all(|h| h.to_settle));

    assert!(rivera.shares(&case).unwrap().is_empty());
    let mine = rivera.shares_ever(&case).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, ShareState::Ended);
    assert!(chen.shared_with_me().unwrap().is_empty());
    let theirs = chen.shared_with_me_ever().unwrap();
    assert_eq!(theirs[0].state, ShareState::Ended);

    let file = dirs.1.path().join("held.md");
    assert_eq!(chen.settle_held(&case, Some(&file)).unwrap(), 2);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("risk discussed"), "{saved}");
    assert!(saved.contains("my own unease"), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(sync(&mut chen).await.held.is_empty(), "no longer held");
    assert!(
        chen.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.case == Some(case) && r.what.starts_with("2 held edit(s) saved to"))
    );
    assert!(
        chen.settle_held(&case, None).is_err(),
        "nothing left to settle"
    );

    // Shared again: Dr. Chen's copy comes fresh from the relay (without the
    // held edit), and a new edit reaches the owner.
    share_case(&mut rivera, &case, "Dr. Chen", "write", true).await;
    sync(&mut chen).await;
    let n = chen.show_note(&case, &note).unwrap();
    assert_eq!(n.field("text"), "First session.");
    chen.edit_note(
        &case,
        &note,
        &[("text".into(), "First session; seen again.".into())],
    )
    .unwrap();
    let report = sync(&mut chen).await;
    assert!(report.held.is_empty(), "{:?}", report.held);
    sync(&mut rivera).await;
    assert_eq!(
        rivera.show_note(&case, &note).unwrap().field("text"),
        "First session; seen again."
    );
}
