//! Live push and the node's connection limit, at the protocol: a change
//! reaches the watching devices of its document's readers and nobody
//! else's, and a node full of connections refuses the next one until one
//! ends.

use std::time::Duration;

use casebook::net::Relay;
use casebook_relay::Config;
use casebook_shared::frames::{Request, Response};
use casebook_tests::uploader::uploader;
use casebook_tests::*;

async fn upload_one(
    up: &casebook_tests::uploader::Uploader,
    doc_of: &casebook_tests::uploader::Uploader,
) -> u64 {
    let envelopes = up.seal_into(doc_of.doc, &doc_of.key, 1);
    match up
        .relay
        .request(&Request::Upload { envelopes })
        .await
        .unwrap()
    {
        Response::Uploaded { results } => results[0].expect("stored"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_pushed_to_its_readers_and_nobody_else() {
    let relay = TestRelay::start().await;
    let (addr, fp) = (relay.addr(), relay.fingerprint());
    let mut owner = uploader(&addr, fp).await.unwrap();
    let reader = uploader(&addr, fp).await.unwrap();
    let stranger = uploader(&addr, fp).await.unwrap();
    assert!(matches!(
        owner.add_writer(&reader.state).await.unwrap(),
        Response::Ok
    ));
    let mut reader_sees = reader.relay.subscribe().await.unwrap();
    let mut stranger_sees = stranger.relay.subscribe().await.unwrap();
    // The reader's own connection, watching twice: both are told.
    let second = Relay::connect(&addr, fp).await.unwrap();
    second
        .authenticate(&reader.signer, Some(reader.account))
        .await
        .unwrap();
    let mut reader_again = second.subscribe().await.unwrap();

    let seq = upload_one(&owner, &owner).await;
    let next = upload_one(&owner, &owner).await;
    let wait = Duration::from_secs(5);
    for sub in [&mut reader_sees, &mut reader_again] {
        // Each change comes with its envelope and what precedes it in its
        // document, so the two chain from nothing.
        let mut prev = 0;
        for expected in [seq, next] {
            let told = tokio::time::timeout(wait, sub.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!((told.doc, told.seq), (owner.doc, expected));
            let pushed = told.pushed.expect("a short envelope is pushed along");
            assert_eq!(pushed.prev, prev);
            let Response::Changes { items, .. } = reader
                .relay
                .request(&Request::Fetch {
                    docs: vec![(owner.doc, prev)],
                    max_bytes: 1 << 20,
                })
                .await
                .unwrap()
            else {
                panic!("a fetch answers changes");
            };
            assert_eq!(items[0].seq, expected);
            assert_eq!(items[0].envelope, pushed.envelope, "the envelope stored");
            prev = expected;
        }
    }
    // The stranger's first notice is of its own document, written after.
    let own = upload_one(&stranger, &stranger).await;
    let told = tokio::time::timeout(wait, stranger_sees.next())
        .await
        .unwrap()
        .unwrap();
    let told = told.unwrap();
    assert_eq!(
        (told.doc, told.seq),
        (stranger.doc, own),
        "told of a document it cannot read"
    );
    drop((reader_sees, stranger_sees, reader_again));
    second.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_refuses_the_next_connection_until_one_ends() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path());
    config.limits.connections = 2;
    let handle = casebook_relay::start(config).await.unwrap();
    let (addr, fp) = (handle.addr.to_string(), handle.fingerprint);
    let a = Relay::connect(&addr, fp).await.unwrap();
    let b = Relay::connect(&addr, fp).await.unwrap();
    for c in [&a, &b] {
        assert!(matches!(
            c.request(&Request::Challenge).await.unwrap(),
            Response::Challenge { .. }
        ));
    }
    let refused = match Relay::connect(&addr, fp).await {
        Ok(c) => c.request(&Request::Challenge).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a third connection was served");
    a.close().await;
    // The slot comes back once the relay sees the connection end.
    let mut served = false;
    for _ in 0..50 {
        if let Ok(c) = Relay::connect(&addr, fp).await
            && c.request(&Request::Challenge).await.is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "no connection was served after one ended");
    b.close().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_while_it_watches_is_cut_off_before_the_next_push() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs).await;
    let watching = tablet.connect().await.unwrap();
    let mut pushes = watching.subscribe().await.unwrap();

    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet.device_id()).await.unwrap();
    conn.close().await;
    // Written under the key the tablet holds, before any rotation: the
    // relay must not hand it to the revoked device's open subscription.
    let edit = |text: &str| vec![("plan".to_string(), text.to_string())];
    laptop
        .edit_note(&case, "n1", &edit("walk daily, sleep log"))
        .unwrap();
    let conn = laptop.connect().await.unwrap();
    laptop.sync(&conn, &mut |_| {}).await.unwrap();
    conn.close().await;
    let wait = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(wait, pushes.next()).await.unwrap() {
            Ok(Some(told)) => assert!(
                told.pushed.is_none(),
                "an envelope pushed to a revoked device: {told:?}"
            ),
            Err(e) => {
                assert!(e.to_string().contains("revoked"), "{e}");
                break;
            }
            Ok(None) => panic!("the stream ended without saying why"),
        }
    }
    watching.close().await;
    relay.stop().await;
}
