//! Two record-integrity bugs found by trying the CLI as a new user would:
//! a colleague's comment judged differently by a device added later, and a
//! signed note shown with text the signer never saw.

use casebook::notes::{NoteFormat, NoteInput};
use casebook_tests::*;

fn soap(subjective: &str, plan: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![
        ("subjective".into(), subjective.into()),
        ("plan".into(), plan.into()),
    ];
    n
}

/// The colleague comments; the owner syncs and then edits the same note,
/// so the owner's edit depends on the comment. A device paired (or
/// recovered) afterwards receives the owner's edit before the comment it
/// builds on, and must judge the comment exactly as the older devices did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_and_the_owners_later_edit_reach_devices_added_later() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut rivera, words) = init_with_words(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    rivera
        .edit_case(&case, "note added", |c| {
            Ok(c.add_note(soap("Sleeping badly.", "Sleep diary."), "n1", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut rivera).await;
    let chen_account = chen.account_id();
    befriend(&mut rivera, "Dr. Chen", &chen_account);
    share_case(&mut rivera, &case, "Dr. Chen", "comment", true).await;

    let r = sync(&mut chen).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    chen.comment_note(&case, "n1", "Consider CBT-I.").unwrap();
    sync(&mut chen).await;

    let r = sync(&mut rivera).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    rivera
        .edit_case(&case, "note edited", |c| {
            Ok(c.edit_note(
                "n1",
                &[("plan".into(), "Sleep diary; CBT-I referral.".into())],
            )?)
        })
        .unwrap();
    sync(&mut rivera).await;

    let expect = |home: &mut casebook::Home, who: &str| {
        let n = home
            .docs()
            .read_case(&case, |c| c.note("n1").unwrap())
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(n.field("plan"), "Sleep diary; CBT-I referral.", "{who}");
        assert_eq!(n.comments.len(), 1, "{who}: the comment is missing");
        assert_eq!(n.comments[0].text, "Consider CBT-I.", "{who}");
    };
    expect(&mut rivera, "the laptop");

    let mut tablet = pair(&mut rivera, dirs[2].path(), &relay).await;
    for round in 0..2 {
        let r = sync(&mut tablet).await;
        assert!(
            r.refused.is_empty(),
            "tablet round {round}: {:?}",
            r.refused
        );
    }
    expect(&mut tablet, "a device paired later");

    let recovered = casebook::devices::recover(
        dirs[3].path(),
        PASSPHRASE,
        &words,
        "Dr. Rivera",
        &relay.addr(),
        relay.handle.fingerprint,
    )
    .await;
    let mut recovered = recovered.expect("recover");
    let r = sync(&mut recovered).await;
    assert!(r.refused.is_empty(), "recovered: {:?}", r.refused);
    expect(&mut recovered, "a recovered device");
}

/// The tablet, offline, edits a note's plan; the laptop signs the note;
/// both sync. Both show the note as signed, with the plan that was signed,
/// and the tablet's edit apart; the author keeps it as an addendum, and
/// both devices then agree on a note that reads as signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_concurrent_with_signing_is_never_shown_as_signed() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    let note = laptop
        .add_note(&case, soap("Sleeping badly.", "Sleep diary."))
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut tablet).await;

    tablet
        .edit_note(
            &case,
            &note,
            &[("plan".into(), "Sleep diary; stop melatonin.".into())],
        )
        .unwrap();
    laptop.sign_note(&case, &note).unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    sync(&mut laptop).await;

    let mut seen = Vec::new();
    for (who, home) in [("laptop", &mut laptop), ("tablet", &mut tablet)] {
        let n = home.show_note(&case, &note).unwrap();
        assert_eq!(n.signed_by.as_deref(), Some("Dr. Rivera"), "{who}");
        assert_eq!(n.field("plan"), "Sleep diary.", "{who}: the signed plan");
        assert_eq!(n.late_edits.len(), 1, "{who}: {:?}", n.late_edits);
        assert_eq!(n.late_edits[0].field, "plan");
        assert_eq!(n.late_edits[0].merged, "Sleep diary; stop melatonin.");
        assert!(!n.signature_broken, "{who}");
        seen.push(n);
    }
    assert_eq!(seen[0], seen[1], "both devices decide alike");

    laptop
        .settle_late_edit(
            &case,
            &note,
            "plan",
            casebook::notes::LateEditChoice::Addendum,
        )
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    for (who, home) in [("laptop", &mut laptop), ("tablet", &mut tablet)] {
        let n = home.show_note(&case, &note).unwrap();
        assert!(n.late_edits.is_empty(), "{who}: {:?}", n.late_edits);
        assert_eq!(n.field("plan"), "Sleep diary.", "{who}");
        assert_eq!(n.addenda.len(), 1, "{who}");
        assert!(n.addenda[0].text.contains("stop melatonin"), "{who}");
    }
    let trail = laptop.trail().entries().unwrap();
    assert!(
        trail
            .iter()
            .any(|a| a.what.contains("late edit to plan kept as an addendum")
                && a.case == Some(case)),
        "the audit records the choice"
    );
    assert!(
        tablet
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.what == format!("note {note} viewed")),
        "reads of a note are recorded with the note"
    );
}
