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

/// A relay that refuses a round's signals (a limit, say) does not fail the
/// round: the sync reports what it lacks, the ask waits, goes with the
/// next round's signal, and is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_refused_for_now_waits_and_the_sync_goes_on() {
    use casebook_shared::envelope::{Envelope, Kind};
    use casebook_shared::frames::{Request, Response};
    use casebook_tests::hostile_relay::HostileRelay;

    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &hostile, "Dr. Chen");
    sync(&mut laptop).await;
    sync(&mut chen).await;
    let (_, chen_id, _, _) = chen.whoami();
    let case = new_case(&mut laptop, "Jordan Avery");
    sync(&mut laptop).await;
    befriend(&mut laptop, "Dr. Chen", &chen_id);
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;

    // The owner's newest change, which Dr. Chen's device is never served.
    laptop
        .edit_case(&case, "note", |c| {
            let mut n =
                casebook::notes::NoteInput::new("2026-11-21", casebook::notes::NoteFormat::Soap);
            n.fields = vec![("plan".into(), "Sleep diary.".into())];
            Ok(c.add_note(n, "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let kind = |bytes: &[u8]| Envelope::decode(bytes.to_vec()).map(|e| e.header.kind).ok();
    let newest = {
        let conn = laptop.connect().await.unwrap();
        let Response::Changes { items, .. } = conn
            .request(&Request::Fetch {
                docs: vec![(case, 0)],
                max_bytes: 1 << 22,
            })
            .await
            .unwrap()
        else {
            panic!("a fetch")
        };
        conn.close().await;
        items
            .iter()
            .filter(|i| kind(&i.envelope) == Some(Kind::Change))
            .map(|i| i.seq)
            .max()
            .unwrap()
    };
    let withhold = move |resp: Response| match resp {
        Response::Changes { items, more } => Response::Changes {
            items: items.into_iter().filter(|i| i.seq != newest).collect(),
            more,
        },
        r => r,
    };
    // Signals refused for now, as a relay at a limit answers, and not
    // stored.
    hostile.set(move |_, resp| withhold(resp));
    hostile.intercept(move |req| match req {
        Request::Upload { envelopes }
            if envelopes.iter().any(|e| kind(e) == Some(Kind::Signal)) =>
        {
            Some(Response::error(ErrorCode::Limited, "over the limit"))
        }
        _ => None,
    });
    let report = try_sync(&mut chen).await.expect("the round goes on");
    assert!(incomplete(&report, &case), "{report:?}");
    try_sync(&mut chen).await.expect("and the next");

    // The limit lifts; the relay still withholds the envelope. The ask
    // goes now, the owner's device answers, and the note arrives.
    hostile.intercept(|_| None);
    assert!(incomplete(&sync(&mut chen).await, &case));
    assert!(sync(&mut laptop).await.resent >= 1);
    assert!(!incomplete(&sync(&mut chen).await, &case));
    let plan = chen
        .docs()
        .read_case(&case, |c| c.note("n2").unwrap().field("plan").to_string())
        .unwrap();
    assert_eq!(plan, "Sleep diary.");
    drop(hostile);
}
