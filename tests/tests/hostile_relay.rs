//! A relay that lies: it serves another account's log for a colleague, adds
//! access-log entries nobody with the right to sign them signed, and passes
//! on a change the real relay refused. Every client ignores what it forges;
//! `share` refuses, naming the safety-number mismatch.
//!
//! The hostile relay is [`HostileRelay`]: it holds the real relay's TLS key,
//! forwards each request, and rewrites the answers. The colleague whose
//! forged change it passes on is an account whose keys the test holds, so it
//! can sign what an honest client never would.

use casebook::Home;
use casebook::net::Relay;
use casebook::notes::{NoteFormat, NoteInput};
use casebook::sharing::ShareError;
use casebook_shared::access::Role;
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret};
use casebook_shared::frames::{ErrorCode, Request, Response, Stored};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;
use casebook_tests::hostile_relay::HostileRelay;
use casebook_tests::rogue::{FORGED, Rogue};
use casebook_tests::*;

fn note(text: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![("subjective".into(), text.into())];
    n
}

/// A connection to the real relay, for the rogue.
async fn rogue_conn(relay: &TestRelay) -> Relay {
    Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap()
}

fn new_case(home: &mut Home, name: &str) -> DocId {
    let case = home.create_case(name, "2026-11-20").unwrap();
    home.edit_case(&case, "note", |c| {
        Ok(c.add_note(note("Slept better this week."), "n1", "Dr. Rivera")?)
    })
    .unwrap();
    case
}

fn subjective(home: &mut Home, case: &DocId) -> String {
    home.docs()
        .read_case(case, |c| {
            c.note("n1").unwrap().field("subjective").to_string()
        })
        .unwrap()
}

/// Where the hostile relay numbers what it passes on: above any number the
/// real relay hands out (those start from the time it starts at).
const PASSED_ON: u64 = 1 << 62;

/// Makes the hostile relay serve `envelope` as the newest change of `doc`
/// (once to each device) and, if given, one more access-log entry for a
/// document, on top of what the real relay has.
fn pass_on(hostile: &HostileRelay, doc: DocId, envelope: Vec<u8>, plant: Option<(DocId, Signed)>) {
    serve_after(hostile, doc, vec![(0, envelope)], plant);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substituted_colleague_log_makes_share_refuse() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut rivera = init(dirs[0].path(), &hostile, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &hostile, "Dr. Chen");
    let mut mallory = init(dirs[2].path(), &hostile, "Mallory");
    let case = new_case(&mut rivera, "Jordan Avery");
    for h in [&mut rivera, &mut chen, &mut mallory] {
        sync(h).await;
    }
    let (_, chen_id, chen_safety, chen_card) = chen.whoami();
    rivera.contacts().add("Dr. Chen", &chen_card).unwrap();
    rivera.contacts().verify("Dr. Chen", &chen_safety).unwrap();

    let conn = mallory.connect().await.unwrap();
    let log_of = |account: AccountId| {
        let conn = &conn;
        async move {
            match conn
                .request(&Request::GetAccount { account, from: 0 })
                .await
                .unwrap()
            {
                Response::Log { entries } => entries,
                r => panic!("{r:?}"),
            }
        }
    };
    let chen_log = log_of(chen_id).await;
    let mallory_log = log_of(mallory.account_id()).await;
    // A device of the relay's own, added to Dr. Chen's log with a new key
    // it chose: signed by that device, not by one of Dr. Chen's.
    let chen_state = AccountState::verify_log(&chen_log).unwrap();
    let relay_device = DeviceSigner::generate();
    let planted = account::add_device(
        &chen_state,
        &relay_device,
        &DhSecret::generate(),
        account::DeviceInfo {
            id: relay_device.device_id(),
            dh: DhSecret::generate().public(),
            kind: account::DeviceKind::Device,
        },
        5,
    )
    .unwrap();
    let with_planted: Vec<Signed> = chen_log.iter().cloned().chain([planted]).collect();

    for (what, served) in [
        ("another account's whole log", mallory_log),
        ("a device and key the relay planted", with_planted),
    ] {
        hostile.set(move |req, resp| match req {
            Request::GetAccount { account, from } if *account == chen_id => Response::Log {
                entries: served.iter().skip(*from as usize).cloned().collect(),
            },
            _ => resp,
        });
        let conn = rivera.connect().await.unwrap();
        let pending = rivera.pending().unwrap();
        let r = rivera
            .share(
                &conn,
                &case,
                "Dr. Chen",
                Role::Read,
                "consultation",
                "signed release",
                None,
                false,
            )
            .await;
        conn.close().await;
        match r {
            Err(e @ casebook::Error::Share(ShareError::CardMismatch { .. })) => {
                assert!(
                    e.to_string().contains("safety-number mismatch"),
                    "{what}: {e}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(rivera.shares(&case).unwrap().is_empty(), "{what}");
        assert_eq!(rivera.pending().unwrap(), pending, "{what}: nothing queued");
    }

    // The true log again: the share goes through and Dr. Chen reads it.
    hostile.clear();
    share_case(&mut rivera, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    assert_eq!(subjective(&mut chen, &case), "Slept better this week.");
    conn.close().await;
    drop(hostile);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_hostile_relay_forges_or_passes_on_is_ignored_by_every_client() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &hostile, "Dr. Rivera");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &hostile).await;
    let mut chen = init(dirs[2].path(), &hostile, "Dr. Chen");
    sync(&mut chen).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let (_, chen_id, _, _) = chen.whoami();

    // Three cases: the rogue reads one, writes another; Dr. Chen comments
    // on the first two.
    let read_case = new_case(&mut laptop, "Jordan Avery");
    let write_case = new_case(&mut laptop, "Sam Okafor");
    let third = new_case(&mut laptop, "Lee Marsh");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Dr. Chen", &chen_id);
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &read_case, "Rogue", "read", true).await;
    share_case(&mut laptop, &write_case, "Rogue", "write", true).await;
    for c in [&read_case, &third] {
        share_case(&mut laptop, c, "Dr. Chen", "comment", true).await;
    }

    // The forging works: a writer's change built this way is taken by the
    // real relay and shown by the owner.
    let control = rogue.forge_edit(write_case).await;
    assert!(rogue.upload(control).await.is_ok());
    sync(&mut laptop).await;
    assert_eq!(subjective(&mut laptop, &write_case), FORGED);

    // The same from a reader: the real relay refuses it.
    let forged = rogue.forge_edit(read_case).await;
    assert_eq!(
        rogue.upload(forged.clone()).await,
        Err(ErrorCode::Forbidden)
    );

    // The hostile relay serves it anyway, and adds access entries to the
    // third case: one signed by the rogue as itself (a device of no owner),
    // one claiming the owner's account (the relay adding a member).
    let conn = laptop.connect().await.unwrap();
    let Response::Log { entries: log } = conn
        .request(&Request::GetAccess {
            doc: third,
            from: 0,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    conn.close().await;
    let forged_access = [
        rogue.forge_access(third, &log, rogue.id).await,
        rogue.forge_access(third, &log, laptop.account_id()).await,
    ];
    for (round, planted) in forged_access.into_iter().enumerate() {
        pass_on(&hostile, read_case, forged.clone(), Some((third, planted)));
        for (who, dev) in [
            ("owner's laptop", &mut laptop),
            ("owner's tablet", &mut tablet),
            ("colleague", &mut chen),
        ] {
            let before = dev.access().doc_meta(&third).unwrap().map(|m| m.members);
            let r = try_sync(dev).await.unwrap_or_else(|e| panic!("{who}: {e}"));
            if round == 0 {
                assert!(
                    r.refused
                        .iter()
                        .any(|x| x.doc == read_case && x.reason.contains("may not write")),
                    "{who}: {:?}",
                    r.refused
                );
                assert_eq!(subjective(dev, &read_case), "Slept better this week.");
            }
            assert!(
                r.refused
                    .iter()
                    .any(|x| x.doc == third && x.reason.starts_with("access log")),
                "{who}: {:?}",
                r.refused
            );
            // A device that first meets the case here keeps the true part
            // of its log.
            let after = dev.access().doc_meta(&third).unwrap().map(|m| m.members);
            if before.is_some() {
                assert_eq!(before, after, "{who}: no member added");
            }
            assert!(
                !dev.access()
                    .doc_meta(&third)
                    .unwrap()
                    .unwrap()
                    .members
                    .iter()
                    .any(|(a, _, _)| *a == rogue.id),
                "{who}"
            );
        }
    }

    // The other documents still sync while the third is refused.
    laptop
        .edit_case(&write_case, "edit", |c| {
            Ok(c.edit_note("n1", &[("plan".into(), "Review in two weeks.".into())])?)
        })
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    let plan = tablet
        .docs()
        .read_case(&write_case, |c| {
            c.note("n1").unwrap().field("plan").to_string()
        })
        .unwrap();
    assert_eq!(plan, "Review in two weeks.");
    drop(hostile);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_moved_to_comment_cannot_edit_under_an_old_key() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &hostile, "Dr. Rivera");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &hostile).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let case = new_case(&mut laptop, "Jordan Avery");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &case, "Rogue", "write", true).await;

    // Its terms change: the write share ends, a comment share begins, and
    // the owner writes under the new key.
    laptop.unshare(&case, "Rogue").unwrap();
    sync(&mut laptop).await;
    share_case(&mut laptop, &case, "Rogue", "comment", true).await;
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Under the new key."), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    let epoch = laptop.access().doc_meta(&case).unwrap().unwrap().epoch;
    assert!(epoch >= 1);

    // A full edit sealed under the epoch in which it could write: the real
    // relay refuses it, and so does every client when it is passed on.
    let forged = rogue.forge_edit_at(case, Some(0)).await;
    assert_eq!(
        rogue.upload(forged.clone()).await,
        Err(ErrorCode::Forbidden)
    );
    // Under the current key it is taken (a commenter may upload), but it
    // changes more than comments.
    let current = rogue.forge_edit(case).await;
    assert!(rogue.upload(current).await.is_ok());
    pass_on(&hostile, case, forged, None);
    for (who, dev) in [("laptop", &mut laptop), ("tablet", &mut tablet)] {
        let r = try_sync(dev).await.unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(r.refused.len(), 2, "{who}: {:?}", r.refused);
        // Only the relay's order puts it after the share ended: the
        // document is fetched again from its start, and it is refused
        // again there.
        assert!(
            r.refused
                .iter()
                .any(|x| x.reason.contains("share had ended")),
            "{who}: {:?}",
            r.refused
        );
        assert_eq!(subjective(dev, &case), "Slept better this week.", "{who}");
    }
    drop(hostile);
    relay.stop().await;
}

/// Serves, after what the real relay has of `doc`, each of `extra` once to
/// each fetch that has not passed it, numbered from [`PASSED_ON`]; and, if
/// given, one more access-log entry for a document.
fn serve_after(
    hostile: &HostileRelay,
    doc: DocId,
    extra: Vec<(u64, Vec<u8>)>,
    plant: Option<(DocId, Signed)>,
) {
    let newest = extra.iter().map(|(n, _)| PASSED_ON + n).max().unwrap_or(0);
    hostile.set(move |req, resp| match (req, resp) {
        (Request::ListDocs { .. }, Response::Docs { mut docs, cursor }) => {
            for h in &mut docs {
                if h.doc == doc {
                    h.seq = newest;
                }
                if plant.as_ref().is_some_and(|(d, _)| *d == h.doc) {
                    h.access_len += 1;
                }
            }
            Response::Docs { docs, cursor }
        }
        (Request::Fetch { docs, .. }, Response::Changes { mut items, more }) => {
            if let Some((_, after)) = docs.iter().find(|(d, _)| *d == doc) {
                for (n, envelope) in &extra {
                    if *after < PASSED_ON + n {
                        items.push(Stored {
                            doc,
                            seq: PASSED_ON + n,
                            envelope: envelope.clone(),
                        });
                    }
                }
            }
            Response::Changes { items, more }
        }
        (Request::GetAccess { doc: d, .. }, Response::Log { mut entries })
            if plant.as_ref().is_some_and(|(p, _)| p == d) =>
        {
            entries.extend(plant.iter().map(|(_, e)| e.clone()));
            Response::Log { entries }
        }
        (_, resp) => resp,
    });
}

/// A colleague removed from a case kept its old key and wrote under it
/// afterwards. The real relay refuses the change; a hostile one serves it,
/// but after the next epoch's first envelope, where every device refuses
/// it. So the relay tries to slip it past that fence: in one round it
/// serves a damaged envelope right after the new epoch's, so that the
/// tablet's seen mark stops there, and in the next it drops the damaged
/// one and serves the change. The mark passed the new epoch's envelopes,
/// and so does the fence: the change is refused in that round too, and
/// when the relay tells the tablet's watcher of it. A copy of the
/// colleague's honest change from before, served again after the fence,
/// is refused once: the tablet holds it, and does not ask for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_envelope_does_not_let_a_removed_members_change_past_the_fence() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &hostile, "Dr. Rivera");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &hostile).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let case = new_case(&mut laptop, "Jordan Avery");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &case, "Rogue", "write", true).await;
    let honest = rogue
        .forge_with(case, None, &rogue.actor(), |c| {
            c.edit_note("n1", &[("plan".into(), "Walk daily.".into())])
                .unwrap();
        })
        .await;
    rogue.upload(honest.clone()).await.unwrap();
    sync(&mut tablet).await;

    // Written while it could write, sent only after the share ended.
    let forged = rogue.forge_edit_at(case, Some(0)).await;
    laptop.unshare(&case, "Rogue").unwrap();
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Under the new key."), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    assert_eq!(
        rogue.upload(forged.clone()).await,
        Err(ErrorCode::Forbidden)
    );

    serve_after(&hostile, case, vec![(0, vec![1, 0, 0, 0])], None);
    let r = sync(&mut tablet).await;
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    serve_after(&hostile, case, vec![(1, forged)], None);
    let r = sync(&mut tablet).await;
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    assert_eq!(r.refused[0].seq, PASSED_ON + 1);
    assert!(
        r.refused[0].reason.contains("share had ended"),
        "{:?}",
        r.refused
    );
    assert_eq!(subjective(&mut tablet, &case), "Slept better this week.");
    assert_eq!(tablet.list_notes(&case).unwrap().len(), 2);

    // The watcher, told of it, leaves the case to the round.
    let conn = tablet.connect().await.unwrap();
    let told = [casebook::net::Told::doc(case, PASSED_ON + 1)];
    let r = tablet.sync_told(&conn, &told, &mut |_| {}).await.unwrap();
    conn.close().await;
    assert!(r.refused.iter().any(|x| x.seq == PASSED_ON + 1), "{r:?}");
    assert_eq!(subjective(&mut tablet, &case), "Slept better this week.");

    serve_after(&hostile, case, vec![(2, honest)], None);
    let r = sync(&mut tablet).await;
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    assert_eq!(r.refused[0].seq, PASSED_ON + 2);
    assert_clean(&sync(&mut tablet).await);
    drop(hostile);
    relay.stop().await;
}

/// A colleague with write access signs the owner's notes: under its own
/// device, the signature is shown with the name this device knows the
/// colleague by, whatever name it typed; written as one of the owner's
/// devices, the change is refused by every device (the relay cannot tell).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cannot_sign_in_someone_elses_name() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = new_case(&mut laptop, "Jordan Avery");
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("Second session."), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    befriend(&mut laptop, "Dr. Chen", &rogue.id);
    share_case(&mut laptop, &case, "Dr. Chen", "write", true).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;
    let at = "2026-11-21T09:00:00Z";

    laptop
        .comment_note(&case, "n1", "Discussed with the supervisor.")
        .unwrap();
    sync(&mut laptop).await;

    // Its own device, the owner's name typed in, on a signature and a comment.
    let own = rogue.actor();
    let signed = rogue
        .forge_with(case, None, &own, |c| {
            c.sign_note("n1", "Dr. Rivera", at).unwrap();
            c.add_comment("n1", "Dr. Rivera", at, "Agreed, stop treatment.")
                .unwrap();
            c.add_note(note("Written by the colleague."), "n3", "Dr. Rivera")
                .unwrap();
        })
        .await;
    rogue.upload(signed).await.unwrap();
    // Written as the owner's laptop.
    let as_owner = [&laptop.device_id().0[..], b"-forged"].concat();
    let forged = rogue
        .forge_with(case, None, &as_owner, |c| {
            c.sign_note("n2", "Dr. Rivera", at).unwrap()
        })
        .await;
    rogue.upload(forged).await.expect("the relay cannot tell");

    // The laptop knows the colleague as a contact; the tablet, which has
    // no contacts of its own, names the account.
    let chen = format!("account {}", rogue.id.short());
    for (home, name) in [(&mut laptop, "Dr. Chen"), (&mut tablet, chen.as_str())] {
        let report = sync(home).await;
        assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
        let n1 = home.show_note(&case, "n1").unwrap();
        assert_eq!(n1.signed_by.as_deref(), Some(name));
        assert!(!n1.signature_broken);
        let by: Vec<_> = n1
            .comments
            .iter()
            .map(|c| (c.by.as_str(), c.unverified))
            .collect();
        assert_eq!(by, [("Dr. Rivera", false), (name, false)]);
        let n2 = home.show_note(&case, "n2").unwrap();
        assert_eq!(n2.signed_by, None, "the forged signature never applied");
        assert_eq!(n2.created_by, "Dr. Rivera", "the owner's own note");
        let n3 = home.show_note(&case, "n3").unwrap();
        assert_eq!(n3.created_by, name, "a note is by the account that made it");
        assert!(!n3.creator_unverified);
    }
}
