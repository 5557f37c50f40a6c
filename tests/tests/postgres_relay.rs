//! A practice on a relay that keeps its data in PostgreSQL: the same
//! devices, the same sync, through a real PostgreSQL server this test
//! starts itself, across a relay restart and a server crash, with
//! snapshots replacing what they cover.

#[path = "../../server/tests/common/postgres.rs"]
mod pg;

use casebook_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_syncs_through_a_relay_on_postgresql() {
    let Some(mut server) = pg::TestPostgres::start() else {
        return;
    };
    let url = server.create_db("relay").await;
    casebook_relay::postgres::migrate(&url, None)
        .await
        .expect("migrate");
    let relay = TestRelay::start_on_postgres(&url).await;
    let addr = relay.handle.addr;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs).await;
    assert_eq!(plan_of(&mut tablet, &case), "walk daily");

    // The relay stops and starts again over the same database; then the
    // database server itself crashes and comes back.
    let data = relay.stop().await;
    let relay = TestRelay::start_with(data, addr, Some(&url)).await;
    set_plan(&mut tablet, &case, "walk daily, sleep log");
    let sent = sync(&mut tablet).await;
    assert!(sent.pushed > 0, "{sent:?}");
    let data = relay.stop().await;
    server.crash_and_restart();
    let relay = TestRelay::start_with(data, addr, Some(&url)).await;
    sync(&mut laptop).await;
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep log");

    // Enough edits for a snapshot: the relay keeps it in place of the
    // changes it covers, and a device paired now starts from it.
    let mut snapshots = 0;
    for i in 0..casebook::sync::SNAPSHOT_EVERY + 2 {
        set_plan(&mut laptop, &case, &format!("week {i}"));
        snapshots += sync(&mut laptop).await.snapshots_out;
    }
    assert!(snapshots > 0, "the laptop uploaded a snapshot");
    let last = format!("week {}", casebook::sync::SNAPSHOT_EVERY + 1);
    let mut phone = pair(&mut laptop, dirs[2].path(), &relay).await;
    let got = sync(&mut phone).await;
    assert!(got.snapshots_in > 0, "{got:?}");
    assert_eq!(plan_of(&mut phone, &case), last);
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), last);
    let data = relay.stop().await;

    // All of it is in PostgreSQL, and none of it in the data folder.
    let files: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains("relay.db")), "{files:?}");
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert!(count("SELECT count(*) FROM envelopes").await > 0);
    assert_eq!(count("SELECT count(*) FROM snapshots").await, 1);
    assert!(count("SELECT count(*) FROM account_entries").await >= 2);
}

/// A fresh database on a server of the test's own, migrated.
async fn database() -> Option<(pg::TestPostgres, String)> {
    let server = pg::TestPostgres::start()?;
    let url = server.create_db("relay").await;
    casebook_relay::postgres::migrate(&url, None)
        .await
        .expect("migrate");
    Some((server, url))
}

/// Node B hears nothing of what node A writes: only the store's fences
/// and B's reading the store before it refuses keep it right. A device
/// paired through A is let in at B; a case made through A takes edits
/// through B; a device revoked through A is refused by B at its next
/// upload, and nothing it sent after the revocation is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_heard_nothing_still_keeps_to_the_logs() {
    let Some((_server, url)) = database().await else {
        return;
    };
    let a = TestRelay::start_on_postgres(&url).await;
    let b = a.another_node(&url, false).await;
    assert_eq!(a.handle.fingerprint, b.handle.fingerprint);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();

    let (mut laptop, mut tablet, case) = laptop_and_tablet(&a, &dirs).await;
    tablet
        .set_relay(&b.addr(), b.handle.fingerprint)
        .await
        .expect("node B lets in a device paired through node A");

    set_plan(&mut tablet, &case, "walk daily, sleep log");
    let sent = sync(&mut tablet).await;
    assert!(sent.pushed > 0 && sent.refused.is_empty(), "{sent:?}");
    sync(&mut laptop).await;
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep log");

    let tablet_id = tablet.device_id();
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet_id).await.unwrap();
    conn.close().await;
    set_plan(&mut tablet, &case, "written after the revocation");
    let refused = try_sync(&mut tablet).await;
    assert!(
        refused.is_err(),
        "node B took an upload from a revoked device: {refused:?}"
    );
    let got = sync(&mut laptop).await;
    assert_eq!(got.received, 0, "{got:?}");
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep log");
    b.stop().await;
    a.stop().await;
}

/// A node so far behind that the changes it missed were pruned from the
/// list reads every log again: a device revoked through the other node is
/// refused by it at once, although the revocation is no longer listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_pruned_log_changes_reads_every_log_again() {
    let Some((_server, url)) = database().await else {
        return;
    };
    let a = TestRelay::start_on_postgres(&url).await;
    let b = a.another_node(&url, false).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &a, "Dr. Rivera");
    case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &a).await;
    tablet
        .set_relay(&b.addr(), b.handle.fingerprint)
        .await
        .expect("node B lets the tablet in, and holds its account");
    sync(&mut tablet).await;

    // Through A: the revocation, then another practitioner's new account
    // (nothing of the laptop's); then the list keeps only the newest.
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet.device_id()).await.unwrap();
    conn.close().await;
    let other = tempfile::tempdir().unwrap();
    let mut colleague = init(other.path(), &a, "Dr. Okafor");
    sync(&mut colleague).await;
    let store = casebook_relay::postgres::PgStore::open(&url, None)
        .await
        .unwrap();
    assert!(store.prune_log_changes(1).await.unwrap() > 0);

    assert!(
        tablet.connect().await.is_err(),
        "node B let a device in that was revoked through node A"
    );
    b.stop().await;
    a.stop().await;
}

/// Two nodes that follow each other: a tablet joins the laptop's account
/// through node B while the laptop waits on node A; watching on B, it sees the
/// laptop's edit made through node A without asking; a colleague on node
/// B is given a case through A, and after the share ends through A, B
/// keeps nothing the colleague sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_one_database_act_as_one_relay() {
    let Some((_server, url)) = database().await else {
        return;
    };
    let a = TestRelay::start_on_postgres(&url).await;
    let b = a.another_node(&url, true).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &a, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    // Paired across nodes: the laptop on A, the tablet joining through B.
    let mut tablet = pair(&mut laptop, dirs[1].path(), &b).await;
    assert_eq!(tablet.relay().0, b.addr());
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "walk daily");

    // Live: the watcher on B is told of what was stored through A.
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
                    if let casebook::sync::WatchEvent::Synced(r) = e {
                        let _ = tx.send(r.received);
                    }
                },
            )
            .await
            .unwrap();
        tablet
    });
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await;
    assert!(first.is_ok(), "the watcher's first round");
    set_plan(&mut laptop, &case, "walk daily, sleep log");
    sync(&mut laptop).await;
    loop {
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("the watcher on node B is told within 30 s of an edit through node A")
            .unwrap();
        if got > 0 {
            break;
        }
    }
    let _ = stop_tx.send(());
    let mut tablet = watcher.await.unwrap();
    assert_eq!(plan_of(&mut tablet, &case), "walk daily, sleep log");

    // A colleague on node B, given the case through node A.
    let mut chen = init(dirs[2].path(), &b, "Dr. Chen");
    sync(&mut chen).await;
    let (_, chen_account, _, _) = chen.whoami();
    befriend(&mut laptop, "Dr. Chen", &chen_account);
    share_case(&mut laptop, &case, "Dr. Chen", "write", true).await;
    let got = sync(&mut chen).await;
    assert!(got.received > 0, "{got:?}");
    assert_eq!(plan_of(&mut chen, &case), "walk daily, sleep log");
    laptop.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut laptop).await;
    set_plan(&mut chen, &case, "after the share ended");
    let _ = try_sync(&mut chen).await;
    sync(&mut laptop).await;
    assert_eq!(plan_of(&mut laptop, &case), "walk daily, sleep log");
    b.stop().await;
    a.stop().await;
}

/// Node B let a colleague's connection in while they were a member and
/// took one upload from it; then the owner removed them through node A,
/// which node B (following nothing) has not heard.
struct RemovedBehindB {
    _server: pg::TestPostgres,
    a: TestRelay,
    b: TestRelay,
    owner: casebook_tests::uploader::Uploader,
    colleague: casebook_tests::uploader::Uploader,
}

async fn removed_behind_b() -> Option<RemovedBehindB> {
    use casebook_shared::access::DocOp;
    use casebook_shared::frames::Response;
    use casebook_tests::uploader::uploader;

    let (server, url) = database().await?;
    let a = TestRelay::start_on_postgres(&url).await;
    let b = a.another_node(&url, false).await;
    let fp = a.handle.fingerprint;
    let mut owner = uploader(&a.addr(), fp).await.unwrap();
    let colleague = uploader(&b.addr(), fp).await.unwrap();
    let colleague_state = colleague.state.clone();
    let added = owner.add_writer(&colleague_state).await.unwrap();
    assert!(matches!(added, Response::Ok), "{added:?}");
    // Node B learns of the share when the colleague authenticates again.
    colleague
        .relay
        .authenticate(&colleague.signer, Some(colleague.account))
        .await
        .unwrap();
    let first = colleague
        .relay
        .request(&casebook_shared::frames::Request::Upload {
            envelopes: colleague.seal_into(owner.doc, &owner.key, 1),
        })
        .await
        .unwrap();
    assert!(
        matches!(&first, Response::Uploaded { results } if results.iter().all(Result::is_ok)),
        "{first:?}"
    );
    let removed = owner
        .change_access(
            DocOp::RemoveMember {
                member: colleague.account,
            },
            &[&colleague_state],
        )
        .await
        .unwrap();
    assert!(matches!(removed, Response::Ok), "{removed:?}");
    Some(RemovedBehindB {
        _server: server,
        a,
        b,
        owner,
        colleague,
    })
}

/// The store's fence at work: node B's memory still says "member" when the
/// removed colleague's next upload comes; the store finds the access log
/// longer than B checked, B reads it again, and refuses the upload.
/// Nothing of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_checked_against_an_old_access_log_is_refused_at_the_store() {
    use casebook_shared::frames::{ErrorCode, Request, Response};
    let Some(t) = removed_behind_b().await else {
        return;
    };
    let late = t
        .colleague
        .relay
        .request(&Request::Upload {
            envelopes: t.colleague.seal_into(t.owner.doc, &t.owner.key, 3),
        })
        .await
        .unwrap();
    let Response::Uploaded { results } = &late else {
        panic!("{late:?}")
    };
    assert!(
        results.iter().all(|r| *r == Err(ErrorCode::Forbidden)),
        "node B stored an upload from a removed member: {late:?}"
    );
    let Response::Changes { items, .. } = t
        .owner
        .relay
        .request(&Request::Fetch {
            docs: vec![(t.owner.doc, 0)],
            max_bytes: 1 << 20,
        })
        .await
        .unwrap()
    else {
        panic!("the owner fetches")
    };
    assert_eq!(items.len(), 1, "only the upload made while a member");
    t.b.stop().await;
    t.a.stop().await;
}

/// Reads too: the removed colleague's next fetch through node B, on the
/// connection B let in before, is refused; B reads the logs that changed
/// before it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_through_a_node_that_heard_nothing_of_a_removal_is_refused() {
    use casebook_shared::frames::{ErrorCode, Request};
    let Some(t) = removed_behind_b().await else {
        return;
    };
    let read = t
        .colleague
        .relay
        .request(&Request::Fetch {
            docs: vec![(t.owner.doc, 0)],
            max_bytes: 1 << 20,
        })
        .await;
    assert!(
        matches!(
            read,
            Err(casebook::net::NetError::Relay {
                code: ErrorCode::Forbidden,
                ..
            })
        ),
        "a removed member read through node B: {read:?}"
    );
    t.b.stop().await;
    t.a.stop().await;
}
