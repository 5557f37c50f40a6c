//! A practice on a relay that keeps its data in PostgreSQL: the same
//! devices, the same sync, through a real PostgreSQL server this test
//! starts itself, across a relay restart and a server crash, with
//! snapshots replacing what they cover.

#[path = "../../server/tests/common/postgres.rs"]
mod pg;

use casebook::notes::{NoteFormat, NoteInput};
use casebook_tests::*;

fn plan_of(home: &mut casebook::Home, case: &casebook_shared::ids::DocId) -> String {
    home.read_case(case, |c| c.note("n1").unwrap().field("plan").to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_syncs_through_a_relay_on_postgresql() {
    let Some(mut server) = pg::TestPostgres::start() else {
        return;
    };
    let url = server.create_db("relay").await;
    casebook_relay::postgres::migrate(&url)
        .await
        .expect("migrate");
    let relay = TestRelay::start_on_postgres(&url).await;
    let addr = relay.handle.addr;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![("plan".into(), "walk daily".into())];
    laptop
        .edit_case(&case, "note", |c| Ok(c.add_note(n, "n1", "Dr. Rivera")?))
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "walk daily");

    // The relay stops and starts again over the same database; then the
    // database server itself crashes and comes back.
    let data = relay.stop().await;
    let relay = TestRelay::start_with(data, addr, Some(&url)).await;
    tablet
        .edit_case(&case, "note", |c| {
            Ok(c.edit_note("n1", &[("plan".into(), "walk daily, sleep log".into())])?)
        })
        .unwrap();
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
        laptop
            .edit_case(&case, "note", |c| {
                Ok(c.edit_note("n1", &[("plan".into(), format!("week {i}"))])?)
            })
            .unwrap();
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
