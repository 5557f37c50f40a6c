//! What a colleague tells in a shared case's signals is weighed by who
//! tells it: a colleague who may write can claim a change (and, if it lies,
//! keep the case INCOMPLETE, named as its device's doing, until the owner
//! takes the share back); a reader's claims are ignored, as it writes
//! nothing; and nothing a colleague signals can wear the owner down.

use casebook::Home;
use casebook::net::Relay;
use casebook_shared::frames::ErrorCode;
use casebook_shared::ids::DocId;
use casebook_tests::rogue::Rogue;
use casebook_tests::*;

async fn rogue_conn(relay: &TestRelay) -> Relay {
    Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap()
}

fn incomplete(report: &casebook::sync::SyncReport, case: &DocId) -> bool {
    report.incomplete.iter().any(|x| x.doc == *case)
}

fn new_case(home: &mut Home, name: &str) -> DocId {
    home.create_case(name, "2026-11-20").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_claims_count_only_while_it_may_write() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let read_case = new_case(&mut laptop, "Jordan Avery");
    let write_case = new_case(&mut laptop, "Sam Okafor");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &read_case, "Rogue", "read", true).await;
    share_case(&mut laptop, &write_case, "Rogue", "write", true).await;

    // A change that never was, claimed in each case; the relay takes a
    // signal from a reader too (it may ask for what it lacks).
    let never = ([9; 32], 1_000_000);
    for case in [read_case, write_case] {
        let signal = rogue.forge_signal(case, vec![never], vec![]).await;
        assert!(rogue.upload(signal).await.is_ok());
    }
    let report = sync(&mut laptop).await;
    assert!(
        !incomplete(&report, &read_case),
        "a reader's claim is nobody's due"
    );
    let x = report
        .incomplete
        .iter()
        .find(|x| x.doc == write_case)
        .expect("a writer's claim is judged");
    assert_eq!(x.claimed_by, [rogue.device()]);
    assert_eq!(x.claimed_by_whom, ["Rogue"], "named as the contact it is");
    assert!(incomplete(&sync(&mut laptop).await, &write_case));

    // Taken back: the colleague can no longer send it, nor keep the case
    // incomplete.
    laptop.unshare(&write_case, "Rogue").unwrap();
    let report = sync(&mut laptop).await;
    assert!(!incomplete(&report, &write_case), "{report:?}");
    assert!(!incomplete(&sync(&mut laptop).await, &write_case));
}

/// What a colleague sends that a relay or a hostile member could use to
/// wear the owner down is bounded: a signal over the relay's limit is
/// refused; one that does not decode is recorded and passed over (the
/// sync goes on, and so does judging the case's claims); and a want of
/// another account's is answered once, however often it is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_colleague_signals_cannot_wear_the_owner_down() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let case = new_case(&mut laptop, "Jordan Avery");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &case, "Rogue", "read", true).await;

    let big = rogue.forge_signal_raw(case, &[0; 8 * 1024]).await;
    assert_eq!(rogue.upload(big).await, Err(ErrorCode::BadRequest));

    // Postcard takes a length first, and the bytes run out.
    let garbage = rogue
        .forge_signal_raw(case, &[0, 0xff, 0xff, 0xff, 0x0f])
        .await;
    assert!(rogue.upload(garbage).await.is_ok());
    let report = sync(&mut laptop).await;
    assert!(report.refused.is_empty(), "{report:?}");
    let trail = laptop.trail().entries().unwrap();
    assert!(
        trail.iter().any(|r| r.what.contains("did not decode")),
        "recorded, not silently dropped"
    );

    // The owner's newest change, asked for again and again.
    let heads = rogue.heads(case).await;
    assert!(!heads.is_empty());
    let mut resent = 0;
    for _ in 0..3 {
        let ask = rogue.forge_signal(case, vec![], heads.clone()).await;
        assert!(rogue.upload(ask).await.is_ok());
        resent += sync(&mut laptop).await.resent;
    }
    assert_eq!(resent, heads.len(), "sent again once, not once per asking");
}
