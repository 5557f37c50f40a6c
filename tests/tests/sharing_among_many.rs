//! Sharing among several: a clinic of three, a colleague whose device is
//! revoked, and two devices of the owner changing one case's shares at once.

use casebook::Error;
use casebook::docs::RoleError;
use casebook::notes::{NoteFormat, NoteInput};
use casebook::sharing::{ShareError, parse_role};
use casebook_shared::access::Role;
use casebook_tests::*;

fn note(text: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![("subjective".into(), text.into())];
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_of_three_shares_cases_among_themselves() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names = ["Dr. Rivera", "Dr. Chen", "Dr. Okafor"];
    let mut team: Vec<_> = dirs
        .iter()
        .zip(names)
        .map(|(d, n)| init(d.path(), &relay, n))
        .collect();
    for h in team.iter_mut() {
        sync(h).await;
    }
    // Everyone knows and has verified everyone.
    let cards: Vec<_> = team.iter().map(|h| h.whoami()).collect();
    for (i, h) in team.iter_mut().enumerate() {
        for (j, (name, _, safety, card)) in cards.iter().enumerate() {
            if i != j {
                h.contacts().add(name, card).unwrap();
                h.contacts().verify(name, safety).unwrap();
            }
        }
    }
    // Rivera shares a co-treated case with Chen (write) and Okafor (read).
    let case = team[0].create_case("Co-treated", "2026-11-20").unwrap();
    team[0]
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Intake."), "n1", "Dr. Rivera")?)
        })
        .unwrap();
    let conn = team[0].connect().await.unwrap();
    for (who, role) in [("Dr. Chen", "write"), ("Dr. Okafor", "read")] {
        team[0]
            .share(
                &conn,
                &case,
                who,
                parse_role(role).unwrap(),
                "co-treatment",
                "clinic consent form",
                None,
                false,
            )
            .await
            .unwrap();
    }
    team[0].sync(&conn, &mut |_| {}).await.unwrap();
    conn.close().await;
    // Chen writes; everyone sees it; Okafor may not write.
    sync(&mut team[1]).await;
    team[1]
        .edit_case(&case, "note", |c| {
            Ok(c.edit_note("n1", &[("plan".into(), "Family session next.".into())])?)
        })
        .unwrap();
    sync(&mut team[1]).await;
    for h in team.iter_mut() {
        let r = sync(h).await;
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        let plan = h
            .docs()
            .read_case(&case, |c| c.note("n1").unwrap().field("plan").to_string())
            .unwrap();
        assert_eq!(plan, "Family session next.");
    }
    let denied = team[2].edit_case(&case, "edit", |c| {
        Ok(c.edit_note("n1", &[("plan".into(), "x".into())])?)
    });
    assert!(
        matches!(denied, Err(Error::Role(RoleError::CannotWrite(_)))),
        "{denied:?}"
    );
    // Chen cannot re-share a case Rivera owns.
    let conn = team[1].connect().await.unwrap();
    let reshare = team[1]
        .share(
            &conn,
            &case,
            "Dr. Okafor",
            parse_role("write").unwrap(),
            "p",
            "c",
            None,
            false,
        )
        .await;
    assert!(
        matches!(reshare, Err(Error::Share(ShareError::NotOwner))),
        "{reshare:?}"
    );
    conn.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_comments_stay_held_edits_wait_and_a_colleagues_revoked_device_gets_no_new_key() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut rivera = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let mut chen_tablet = pair(&mut chen, dirs[2].path(), &relay).await;
    let (_, chen_id, chen_safety, chen_card) = chen.whoami();
    rivera.contacts().add("Dr. Chen", &chen_card).unwrap();
    rivera.contacts().verify("Dr. Chen", &chen_safety).unwrap();
    let case = rivera.create_case("Jordan Avery", "2026-11-20").unwrap();
    rivera
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Hard case."), "n1", "Dr. Rivera")?)
        })
        .unwrap();
    share_case(&mut rivera, &case, "Dr. Chen", "comment", true).await;

    // A comment made while the share lasted is kept by a device of the
    // owner's that first syncs after the share ended.
    sync(&mut chen).await;
    chen.comment_note(&case, "n1", "Consider a sleep referral.")
        .unwrap();
    sync(&mut chen).await;
    rivera.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut rivera).await;
    let mut rivera_tablet = pair(&mut rivera, dirs[3].path(), &relay).await;
    let r = sync(&mut rivera_tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let comments = rivera_tablet
        .docs()
        .read_case(&case, |c| c.note("n1").unwrap().comments)
        .unwrap();
    assert_eq!(comments.len(), 1, "the past comment is there");

    // Shared again to write; the colleague edits offline, the share ends:
    // the edit stays on the colleague's device, reported, and the round
    // still succeeds.
    share_case(&mut rivera, &case, "Dr. Chen", "write", true).await;
    sync(&mut chen).await;
    chen.edit_case(&case, "edit", |c| {
        Ok(c.edit_note("n1", &[("plan".into(), "Too late.".into())])?)
    })
    .unwrap();
    rivera.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut rivera).await;
    let r = sync(&mut chen).await;
    assert_eq!(r.held.len(), 1, "{r:?}");
    assert_eq!(r.held[0].doc, case);
    assert_eq!(chen.pending().unwrap(), 1, "kept, not dropped");
    sync(&mut rivera).await;
    let plan = rivera
        .docs()
        .read_case(&case, |c| c.note("n1").unwrap().field("plan").to_string())
        .unwrap();
    assert_eq!(plan, "", "never reached the owner");

    // Shared again; the colleague revokes the tablet. The owner's next sync
    // moves the case to a key sealed only to the colleague's new account
    // key, which the tablet never held; the colleague's laptop reads on.
    share_case(&mut rivera, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    sync(&mut chen_tablet).await;
    let tablet_epochs = chen_tablet.access().doc_epochs(&case).unwrap();
    let epoch = rivera.access().doc_meta(&case).unwrap().unwrap().epoch;
    assert!(tablet_epochs.contains(&epoch));
    let conn = chen.connect().await.unwrap();
    chen.revoke(&conn, &chen_tablet.device_id()).await.unwrap();
    conn.close().await;
    sync(&mut rivera).await;
    let meta = rivera.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.epoch, epoch + 1, "rotated once");
    assert_eq!(meta.wrap_generation(meta.epoch, &chen_id), Some(1));
    assert!(
        rivera
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.what.contains("Dr. Chen revoked a device")),
        "recorded"
    );
    sync(&mut rivera).await;
    assert_eq!(
        rivera.access().doc_meta(&case).unwrap().unwrap().epoch,
        epoch + 1,
        "and only once"
    );
    rivera
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("After the tablet was lost."), "n3", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut rivera).await;
    sync(&mut chen).await;
    assert!(
        chen.docs()
            .read_case(&case, |c| c.note("n3"))
            .unwrap()
            .is_some()
    );
    assert!(
        !chen_tablet
            .access()
            .doc_epochs(&case)
            .unwrap()
            .contains(&(epoch + 1))
    );
    assert!(matches!(
        try_sync(&mut chen_tablet).await,
        Err(casebook::Error::Revoked)
    ));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owner_devices_changing_one_case_s_shares_at_once_both_count() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    let mut okafor = init(dirs[2].path(), &relay, "Dr. Okafor");
    sync(&mut chen).await;
    sync(&mut okafor).await;
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Hard case."), "n1", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[3].path(), &relay).await;
    sync(&mut tablet).await;
    for dev in [&mut laptop, &mut tablet] {
        for colleague in [&chen, &okafor] {
            let (name, _, safety, card) = colleague.whoami();
            dev.contacts().add(&name, &card).unwrap();
            dev.contacts().verify(&name, &safety).unwrap();
        }
    }
    // Each device shares the case with a different colleague before either
    // has synced: the laptop's entry reaches the relay first.
    share_case(&mut laptop, &case, "Dr. Chen", "read", false).await;
    share_case(&mut tablet, &case, "Dr. Okafor", "read", false).await;
    sync(&mut laptop).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut laptop).await;
    let (chen_id, okafor_id) = (chen.account_id(), okafor.account_id());
    for (who, dev) in [("laptop", &mut laptop), ("tablet", &mut tablet)] {
        let members: Vec<_> = dev
            .access()
            .doc_meta(&case)
            .unwrap()
            .unwrap()
            .members
            .iter()
            .map(|(a, _, _)| *a)
            .collect();
        assert!(
            members.contains(&chen_id) && members.contains(&okafor_id),
            "{who}: both shares stand"
        );
    }
    for colleague in [&mut chen, &mut okafor] {
        sync(colleague).await;
        assert!(
            colleague
                .docs()
                .read_case(&case, |c| c.note("n1"))
                .unwrap()
                .is_some()
        );
    }

    // Each unshares one at once: both are cut off from what comes next.
    laptop.unshare(&case, "Dr. Chen").unwrap();
    tablet.unshare(&case, "Dr. Okafor").unwrap();
    sync(&mut laptop).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut laptop).await;
    let meta = laptop.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.members.len(), 1, "only the owner is left");
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("After both shares ended."), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    assert!(
        tablet
            .docs()
            .read_case(&case, |c| c.note("n2"))
            .unwrap()
            .is_some()
    );
    for colleague in [&mut chen, &mut okafor] {
        sync(colleague).await;
        assert!(
            colleague
                .docs()
                .read_case(&case, |c| c.note("n2"))
                .unwrap()
                .is_none()
        );
        assert!(
            !colleague
                .access()
                .doc_epochs(&case)
                .unwrap()
                .contains(&meta.epoch),
            "no key for the epoch after"
        );
    }

    // Dr. Chen writes again; then the tablet moves Dr. Chen to comment
    // (unshare, share) while the laptop shares with Dr. Okafor. The tablet's
    // replay rotates before adding Dr. Chen back: the write membership ends
    // an epoch before the comment one begins.
    share_case(&mut laptop, &case, "Dr. Chen", "write", true).await;
    sync(&mut tablet).await;
    tablet.unshare(&case, "Dr. Chen").unwrap();
    share_case(&mut tablet, &case, "Dr. Chen", "comment", false).await;
    share_case(&mut laptop, &case, "Dr. Okafor", "read", true).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut laptop).await;
    let meta = laptop.access().doc_meta(&case).unwrap().unwrap();
    assert_eq!(meta.role_of(&chen_id, 0), Some(Role::Comment));
    assert_eq!(meta.role_of(&okafor_id, 0), Some(Role::Read));
    let ended = meta
        .grants
        .iter()
        .filter(|g| g.account == chen_id && g.role == Role::Write)
        .filter_map(|g| g.until_epoch)
        .max()
        .unwrap();
    let begun = meta
        .grants
        .iter()
        .find(|g| g.account == chen_id && g.until_epoch.is_none())
        .unwrap()
        .from_epoch;
    assert!(begun > ended, "comment from {begun}, write until {ended}");

    // The laptop ends Dr. Chen's share while the tablet changes its terms:
    // ending it wins, and the tablet's audit says its new share was not made.
    sync(&mut tablet).await;
    laptop.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut laptop).await;
    tablet.unshare(&case, "Dr. Chen").unwrap();
    share_case(&mut tablet, &case, "Dr. Chen", "write", false).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut laptop).await;
    for dev in [&mut laptop, &mut tablet] {
        let meta = dev.access().doc_meta(&case).unwrap().unwrap();
        assert_eq!(meta.role_of(&chen_id, 0), None, "the share stays ended");
    }
    assert!(
        tablet
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.what.contains("not granted again")),
        "recorded"
    );
    relay.stop().await;
}
