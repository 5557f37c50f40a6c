//! A watching device told of a change takes it (pushed along, or fetched)
//! before the rest of its round; a change from a device paired while it watches
//! arrives all the same.

use std::time::Duration;

use casebook::sync::{Progress, WatchEvent};
use casebook_tests::*;

/// What the watcher reported, in the order it did.
#[derive(Debug, PartialEq)]
enum Seen {
    Notified,
    Fetched,
    Applied,
    Visible,
    /// Envelopes received, and of them taken as pushed.
    Synced(usize, usize),
    Other,
}

/// Waits for the next round to finish; what was reported since.
async fn next_round(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the watcher reports within 30 s")
            .expect("the watcher runs");
        let done = matches!(e, Seen::Synced(..));
        out.push(e);
        if done {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_shows_a_change_before_the_rest_of_its_round() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs).await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let conn = tablet.connect().await.unwrap();
        tablet
            .watch(
                &conn,
                async {
                    let _ = stop_rx.await;
                },
                &mut |e| {
                    let _ = tx.send(match e {
                        WatchEvent::Notified => Seen::Notified,
                        WatchEvent::Progress(Progress::Fetched { .. }) => Seen::Fetched,
                        WatchEvent::Progress(Progress::Applied { .. }) => Seen::Applied,
                        WatchEvent::Progress(Progress::Visible { .. }) => Seen::Visible,
                        WatchEvent::Synced(r) => Seen::Synced(r.received, r.taken_pushed),
                        _ => Seen::Other,
                    });
                },
            )
            .await
            .unwrap();
        tablet
    });
    next_round(&mut rx).await;

    // An edit from a device the watcher knows: shown straight after the
    // push, before the round fetches anything.
    laptop
        .edit_note(
            &case,
            "n1",
            &[("plan".into(), "walk daily, sleep log".into())],
        )
        .unwrap();
    sync(&mut laptop).await;
    let round = next_round(&mut rx).await;
    let notified = round.iter().position(|e| *e == Seen::Notified).unwrap();
    assert_eq!(
        round.get(notified + 1..notified + 3),
        Some(&[Seen::Fetched, Seen::Visible][..]),
        "the told document is taken and applied first: {round:?}"
    );
    // The relay pushed the edit's envelope with its change, and the
    // tablet, which had seen everything before it, took it without a fetch.
    assert!(
        matches!(round.last(), Some(Seen::Synced(n, pushed)) if *n >= 1 && *pushed >= 1),
        "{round:?}"
    );

    // An edit from a device paired while the tablet watches.
    let mut phone = pair(&mut laptop, dirs[2].path(), &relay).await;
    sync(&mut phone).await;
    phone
        .edit_note(
            &case,
            "n1",
            &[("plan".into(), "walk daily, sleep log, journal".into())],
        )
        .unwrap();
    sync(&mut phone).await;
    let mut tablet = loop {
        let round = next_round(&mut rx).await;
        if round.contains(&Seen::Visible) {
            let _ = stop_tx.send(());
            break watcher.await.unwrap();
        }
    };
    assert_eq!(
        plan_of(&mut tablet, &case),
        "walk daily, sleep log, journal"
    );
    relay.stop().await;
}
