//! What a colleague tells in a shared case's signals is weighed by who
//! tells it: a colleague who may write can claim a change (and, if it lies,
//! keep the case INCOMPLETE, named as its device's doing, until the owner
//! takes the share back); a reader's claims are ignored, as it writes
//! nothing; a signal that does not decode is refused, like any envelope.

use casebook::Home;
use casebook::net::Relay;
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
    assert!(incomplete(&sync(&mut laptop).await, &write_case));

    // Taken back: the colleague can no longer send it, nor keep the case
    // incomplete.
    laptop.unshare(&write_case, "Rogue").unwrap();
    let report = sync(&mut laptop).await;
    assert!(!incomplete(&report, &write_case), "{report:?}");
    assert!(!incomplete(&sync(&mut laptop).await, &write_case));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_does_not_decode_is_refused_and_named() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let rogue = Rogue::register(rogue_conn(&relay).await).await;
    let case = new_case(&mut laptop, "Jordan Avery");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Rogue", &rogue.id);
    share_case(&mut laptop, &case, "Rogue", "write", true).await;

    // Far more wants than any signal holds: postcard takes the length
    // first, and the bytes run out.
    let mut signal_body = Vec::new();
    signal_body.push(0u8);
    signal_body.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
    let bad = rogue.forge_signal_raw(case, &signal_body).await;
    assert!(rogue.upload(bad).await.is_ok());
    let report = try_sync(&mut laptop).await.unwrap();
    assert!(
        report
            .refused
            .iter()
            .any(|r| r.doc == case && r.reason.starts_with("signal:")),
        "{report:?}"
    );
}
