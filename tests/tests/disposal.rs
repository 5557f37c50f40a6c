//! Disposing of a case whose retention ran out: refused under a legal hold
//! or before it is due (unless deliberately early); then gone from every
//! device of the owner (one offline until later too), from a colleague's,
//! from the relay, and from a device recovered afterwards; and no stored
//! form of its content or of any key that opened it is left in any file of
//! any home or of the relay, write-ahead logs and free pages included.

use std::path::Path;

use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};
use casebook_shared::access::Role;
use casebook_shared::ids::DocId;
use casebook_tests::*;
use rusqlite::{Connection, OpenFlags};

/// Every blob a SQLite file holds for `doc` under `queries` (each takes
/// the document's id, in bytes or hex, as ?1 and ?2).
fn blobs(db: &Path, doc: &DocId, queries: &[&str]) -> Vec<Vec<u8>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut out = Vec::new();
    for q in queries {
        let mut stmt = conn.prepare(q).unwrap();
        let mut rows = stmt
            .query(rusqlite::params![&doc.0[..], doc.to_hex()])
            .unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..r.as_ref().column_count() {
                if let Ok(Some(b)) = r.get::<_, Option<Vec<u8>>>(i)
                    && b.len() >= 32
                {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// What a device home stores of a document: content, summary, search
/// text, access log (with its key envelopes), keys and access state, all
/// sealed.
fn home_blobs(home: &Path, doc: &DocId) -> Vec<Vec<u8>> {
    blobs(
        &home.join("casebook.db"),
        doc,
        &[
            "SELECT body, summary FROM docs WHERE doc = ?1 AND ?2 = ?2",
            "SELECT sealed FROM search_text WHERE doc = ?1 AND ?2 = ?2",
            "SELECT sealed FROM logs WHERE owner = ?1 AND ?2 = ?2",
            "SELECT sealed FROM secrets WHERE ?1 = ?1 AND (name = 'doc/' || ?2 OR name = 'dockeys/' || ?2)",
        ],
    )
}

/// What the relay stores of a document: envelopes, snapshots, access log.
fn relay_blobs(data: &Path, doc: &DocId) -> Vec<Vec<u8>> {
    blobs(
        &data.join("relay.db"),
        doc,
        &[
            "SELECT bytes FROM envelopes WHERE doc = ?1 AND ?2 = ?2",
            "SELECT bytes FROM snapshots WHERE doc = ?1 AND ?2 = ?2",
            "SELECT entry FROM access_entries WHERE doc = ?1 AND ?2 = ?2",
        ],
    )
}

fn note(date: &str, text: &str) -> NoteInput {
    let mut n = NoteInput::new(date, NoteFormat::Free);
    n.fields = vec![("text".into(), text.into())];
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposed_case_is_gone_everywhere_with_every_key() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, words) = init_with_words(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    let mut spare = pair(&mut laptop, &dir.path().join("spare"), &relay).await;
    let mut chen = init(&dir.path().join("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let mut lee = init(&dir.path().join("lee"), &relay, "Dr. Lee");
    sync(&mut lee).await;

    let case = laptop.create_case("Jordan Avery", "2015-01-05").unwrap();
    laptop
        .add_note(&case, note("2015-03-02", "Sleep diary begun."))
        .unwrap();
    laptop
        .add_private_note(&case, "Process: guarded today.")
        .unwrap();
    let kept = laptop.create_case("Sam Okafor", "2026-11-01").unwrap();
    laptop
        .add_note(&kept, note("2026-11-02", "First session."))
        .unwrap();
    sync(&mut laptop).await;
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_with_private(&mut laptop, &case, "Dr. Chen", Role::Comment).await;
    // Dr. Lee consulted once; the share has ended, their copy stays theirs.
    befriend(&mut laptop, "Dr. Lee", &lee.account_id());
    share_with_private(&mut laptop, &case, "Dr. Lee", Role::Read).await;
    sync(&mut lee).await;
    laptop.unshare(&case, "Dr. Lee").unwrap();
    sync(&mut laptop).await;
    sync(&mut lee).await;
    assert!(lee.list_cases(true).unwrap().iter().any(|c| c.id == case));
    for dev in [&mut tablet, &mut spare, &mut chen] {
        sync(dev).await;
        assert!(dev.list_cases(true).unwrap().iter().any(|c| c.id == case));
    }
    let private = laptop
        .list_cases(true)
        .unwrap()
        .into_iter()
        .find(|c| c.id == case)
        .unwrap()
        .summary
        .private_doc
        .unwrap();

    // Not early by accident, never under a legal hold.
    assert!(laptop.dispose_case(&kept, false).is_err(), "not due");
    laptop
        .set_legal_hold(&case, Some("complaint pending"))
        .unwrap();
    let err = laptop.dispose_case(&case, false).unwrap_err();
    assert!(err.to_string().contains("legal hold"), "{err}");
    laptop.set_legal_hold(&case, None).unwrap();
    assert!(chen.dispose_case(&case, true).is_err(), "only the owner");
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    sync(&mut chen).await;

    // A search keeps each case's search text beside it.
    for h in [&mut laptop, &mut tablet] {
        assert!(!h.search("sleep", false).unwrap().is_empty());
    }
    // What each place stores of the case now, to look for afterwards.
    let homes: Vec<std::path::PathBuf> = [&laptop, &tablet, &spare, &chen, &lee]
        .iter()
        .map(|h| h.dir().to_path_buf())
        .collect();
    let mut stored = Vec::new();
    for doc in [case, private] {
        for h in &homes {
            stored.extend(home_blobs(h, &doc));
        }
        stored.extend(relay_blobs(relay.data.path(), &doc));
    }
    assert!(stored.len() > 20, "{}", stored.len());

    laptop.dispose_case(&case, false).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    sync(&mut chen).await;
    sync(&mut lee).await;
    let gone = |h: &Home| !h.list_cases(true).unwrap().iter().any(|c| c.id == case);
    assert!(gone(&laptop), "laptop");
    assert!(gone(&tablet), "tablet");
    assert!(gone(&chen), "chen");
    assert!(gone(&lee), "a colleague whose share had ended");
    assert!(!gone(&spare), "offline, it still holds the case");

    // The relay restarts meanwhile: it rebuilds the disposal from what it
    // kept (checked against the owner's account again), with its numbers.
    let addr = relay.handle.addr;
    let relay = TestRelay::restart(relay.stop().await, addr).await;
    sync(&mut spare).await;
    assert!(gone(&spare), "and deletes it at its next sync");
    for h in [&laptop, &tablet, &spare] {
        assert!(h.list_cases(true).unwrap().iter().any(|c| c.id == kept));
    }
    // Further rounds take the disposal as no news.
    for dev in [&mut laptop, &mut tablet, &mut spare, &mut chen, &mut lee] {
        let r = sync(dev).await;
        assert!(r.refused.is_empty(), "{:?}", r.refused);
    }
    let said = |h: &Home| {
        h.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.case == Some(case) && a.what.contains("disposed of by Dr. Rivera"))
    };
    assert!(said(&laptop), "laptop");
    assert!(said(&spare), "spare");
    // The colleague, who has no contact for the owner, knows them by the
    // name they signed the share with, marked so.
    assert!(
        chen.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.case == Some(case)
                && a.what.contains("disposed of by Dr. Rivera (not a contact)"))
    );

    // A device recovered afterwards never sees it.
    let mut recovered = casebook::devices::recover(
        &dir.path().join("recovered"),
        PASSPHRASE,
        &words,
        "Dr. Rivera",
        &relay.addr(),
        relay.handle.fingerprint,
    )
    .await
    .expect("recover");
    let r = sync(&mut recovered).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert!(gone(&recovered));
    assert!(
        recovered
            .list_cases(true)
            .unwrap()
            .iter()
            .any(|c| c.id == kept)
    );

    // Each home that deleted the case rebuilt its file after: no free
    // page is left in it (a deletion leaves some; a rebuild none), where
    // copies of moved rows could outlive them.
    for h in [&laptop, &tablet, &spare, &chen, &lee] {
        let conn = Connection::open_with_flags(
            h.dir().join("casebook.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let free: i64 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0, "{:?} was not rebuilt", h.dir());
    }

    // Nothing stored of it is left anywhere: not in a home, not in the
    // relay's files (the WAL and free pages are in the files searched).
    for h in [&laptop, &tablet, &spare, &chen, &lee, &recovered] {
        for doc in [case, private] {
            assert!(home_blobs(h.dir(), &doc).is_empty());
        }
    }
    let mut places: Vec<&Path> = homes.iter().map(|p| p.as_path()).collect();
    places.push(recovered.dir());
    places.push(relay.data.path());
    for blob in &stored {
        for place in &places {
            let found = files_containing(place, blob);
            assert!(
                found.is_empty(),
                "a stored form of the case is still in {found:?}"
            );
        }
    }
    relay.stop().await;
}

/// A hold placed on another device of the account wins over a disposal
/// signed here but not sent yet: the disposal is withdrawn, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_placed_elsewhere_withdraws_an_unsent_disposal() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    let case = laptop.create_case("Jordan Avery", "2015-01-05").unwrap();
    laptop
        .add_note(&case, note("2015-03-02", "Sleep diary begun."))
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;

    laptop.dispose_case(&case, false).unwrap();
    tablet
        .set_legal_hold(&case, Some("records subpoena 2026-118"))
        .unwrap();
    sync(&mut tablet).await;
    let r = sync(&mut laptop).await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    sync(&mut tablet).await;
    for dev in [&mut laptop, &mut tablet] {
        let view = dev.open_case(&case).unwrap();
        assert_eq!(view.notes.len(), 1);
        assert_eq!(
            view.summary.legal_hold.as_deref(),
            Some("records subpoena 2026-118")
        );
    }
    assert!(
        laptop
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.what.starts_with("disposal withdrawn"))
    );
    // The case goes on as before.
    laptop
        .add_note(&case, note("2026-11-30", "Seen again."))
        .unwrap();
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    assert_eq!(tablet.open_case(&case).unwrap().notes.len(), 2);
    relay.stop().await;
}
