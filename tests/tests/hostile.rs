//! What a relay (or someone with its disk) might do, and what the clients
//! make of it: plaintext never rests anywhere, a tampered upload is refused,
//! a revoked device is shut out, a tampered stored envelope changes nothing
//! on the device that fetches it, and one the relay lost is sent back by
//! the device that wrote it.

use casebook::Error;
use casebook::notes::{NoteFormat, NoteInput};
use casebook_shared::frames::{Request, Response};
use casebook_tests::*;

const PHRASE: &str = "marmalade lighthouse";
const CLIENT: &str = "Quintessa Vorhees";

fn note(text: &str) -> NoteInput {
    let mut n = NoteInput::new("2026-11-20", NoteFormat::Soap);
    n.fields = vec![("subjective".into(), text.into())];
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_readable_rests_on_any_disk() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut laptop, words) = init_with_words(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case(CLIENT, "2026-11-20").unwrap();
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(
                note(&format!("Talked about the {PHRASE}.")),
                "n1",
                "Dr. Rivera",
            )?)
        })
        .unwrap();
    laptop
        .edit_private(&case, |p| {
            Ok(p.add(
                &format!("private {PHRASE}"),
                "Dr. Rivera",
                "2026-11-20T10:00:00Z",
            )?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;
    assert_eq!(
        tablet.docs().cases().unwrap()[0].1.name,
        CLIENT,
        "the data did arrive"
    );
    // Homes still open: their WAL files are on disk too.
    let first_word = words.split_whitespace().next().unwrap().to_string();
    let mut found = Vec::new();
    for dir in [relay.data.path(), dirs.0.path(), dirs.1.path()] {
        for needle in [PHRASE, CLIENT, words.as_str()] {
            found.extend(files_containing(dir, needle.as_bytes()));
        }
    }
    assert!(found.is_empty(), "plaintext found in {found:?}");
    assert!(!all_bytes(dirs.0.path()).is_empty() && !first_word.is_empty());
    drop((laptop, tablet));
    let data = relay.stop().await;
    for needle in [PHRASE, CLIENT] {
        assert!(files_containing(data.path(), needle.as_bytes()).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_tampered_and_foreign_uploads_and_revoked_devices() {
    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case(CLIENT, "2026-11-20").unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;

    // A stored envelope of the laptop's, re-uploaded with a byte flipped,
    // and as it is from the tablet's connection (the wrong author).
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).unwrap();
    let stored: Vec<u8> = db
        .query_row(
            "SELECT bytes FROM envelopes WHERE doc = ?1 AND length(bytes) > 0 LIMIT 1",
            [&case.0[..]],
            |r| r.get(0),
        )
        .unwrap();
    let conn = laptop.connect().await.unwrap();
    for i in [0usize, 20, 120, stored.len() - 1] {
        let mut bad = stored.clone();
        bad[i] ^= 1;
        let Response::Uploaded { results } = conn
            .request(&Request::Upload {
                envelopes: vec![bad],
            })
            .await
            .unwrap()
        else {
            panic!("no upload answer");
        };
        assert!(results[0].is_err(), "byte {i} flipped was stored");
    }
    let Response::Uploaded { results } = conn
        .request(&Request::Upload {
            envelopes: vec![stored.clone()],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(results[0].is_ok(), "the untouched envelope is recognised");
    let tconn = tablet.connect().await.unwrap();
    let Response::Uploaded { results } = tconn
        .request(&Request::Upload {
            envelopes: vec![stored],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        results[0].is_err(),
        "an envelope authored by another device"
    );
    tconn.close().await;

    // Revoke the tablet: it is shut out.
    let tablet_id = tablet.device_id();
    laptop.revoke(&conn, &tablet_id).await.unwrap();
    laptop.sync(&conn, &mut |_| {}).await.unwrap();
    conn.close().await;
    assert!(matches!(try_sync(&mut tablet).await, Err(Error::Revoked)));
    let epoch = laptop.access().doc_meta(&case).unwrap().unwrap().epoch;
    assert!(epoch > 0, "the case moved to a new key");
    assert!(
        !tablet.access().doc_epochs(&case).unwrap().contains(&epoch),
        "one the tablet never had"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_envelope_changes_nothing_and_a_lost_one_is_sent_back() {
    let relay = TestRelay::start().await;
    let addr = relay.handle.addr;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case(CLIENT, "2026-11-20").unwrap();
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("first"), "n1", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(note("second"), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    sync(&mut laptop).await;

    // Someone with the relay's disk flips a byte inside the newest envelope.
    let data = relay.stop().await;
    {
        let db = rusqlite::Connection::open(data.path().join("relay.db")).unwrap();
        let (seq, mut bytes): (i64, Vec<u8>) = db
            .query_row(
                "SELECT seq, bytes FROM envelopes WHERE doc = ?1 ORDER BY seq DESC LIMIT 1",
                [&case.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        db.execute(
            "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2",
            rusqlite::params![bytes, seq],
        )
        .unwrap();
    }
    let relay = TestRelay::restart(data, addr).await;
    let before = tablet.docs().read_case(&case, |c| c.notes()).unwrap();
    let r = sync(&mut tablet).await;
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    assert_eq!(
        tablet.docs().read_case(&case, |c| c.notes()).unwrap(),
        before,
        "nothing applied"
    );

    // Now the relay loses the damaged envelope altogether. The tablet,
    // which never took it, sees nothing amiss and keeps what it has; the
    // laptop, whose upload the relay acknowledged, sees the relay hold
    // less than that, fetches again what it has and sends back what it
    // holds, and the tablet gets the note at last.
    let data = relay.stop().await;
    {
        let db = rusqlite::Connection::open(data.path().join("relay.db")).unwrap();
        db.execute(
            "DELETE FROM envelopes WHERE seq = (SELECT MAX(seq) FROM envelopes WHERE doc = ?1)",
            [&case.0[..]],
        )
        .unwrap();
    }
    let relay = TestRelay::restart(data, addr).await;
    let r = sync(&mut tablet).await;
    assert!(r.refused.is_empty() && r.rewound.is_empty(), "{r:?}");
    assert_eq!(
        tablet.docs().read_case(&case, |c| c.notes()).unwrap(),
        before,
        "local data kept"
    );
    let r = sync(&mut laptop).await;
    assert_eq!(r.rewound, vec![case], "{r:?}");
    sync(&mut tablet).await;
    assert_eq!(tablet.list_notes(&case).unwrap().len(), 2);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_an_unreachable_relay_and_lands_once() {
    let relay = TestRelay::start().await;
    let addr = relay.handle.addr;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case(CLIENT, "2026-11-20").unwrap();
    sync(&mut laptop).await;
    for i in 0..5 {
        laptop
            .edit_case(&case, "note", |c| {
                Ok(c.add_note(note(&format!("note {i}")), &format!("n{i}"), "Dr. Rivera")?)
            })
            .unwrap();
    }
    let data = relay.stop().await;
    assert!(try_sync(&mut laptop).await.is_err(), "the relay is down");
    assert_eq!(laptop.pending().unwrap(), 5, "nothing was dropped");
    let relay = TestRelay::restart(data, addr).await;
    sync(&mut laptop).await;
    assert_eq!(laptop.pending().unwrap(), 0);
    sync(&mut laptop).await;
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).unwrap();
    let rows: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM envelopes WHERE doc = ?1",
            [&case.0[..]],
            |r| r.get(0),
        )
        .unwrap();
    let distinct: i64 = db
        .query_row(
            "SELECT COUNT(DISTINCT env_id) FROM envelopes WHERE doc = ?1",
            [&case.0[..]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, distinct, "each change once");
    assert_eq!(rows, 6, "the case's creation and five notes");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_an_error_and_the_relay_keeps_serving() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = casebook::net::Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    for raw in [
        vec![0, 0, 0],                            // truncated length prefix
        vec![0xff, 0xff, 0xff, 0xff, 1, 2],       // length over the limit
        vec![0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef], // garbage body
        vec![0, 0, 0, 9, 1],                      // shorter than it says
    ] {
        let answer = conn.raw_exchange(&raw).await.unwrap();
        let resp = casebook_shared::codec::unframe::<Response>(&answer);
        assert!(
            matches!(resp, Ok(Response::Error { .. })),
            "{raw:?} got {resp:?}"
        );
    }
    conn.close().await;
    let mut home = init(dir.path(), &relay, "Dr. Rivera");
    home.create_case(CLIENT, "2026-11-20").unwrap();
    assert_eq!(sync(&mut home).await.pushed, 4, "the relay still serves");
    relay.stop().await;
}

/// The relay checks an upload's signatures in one batch; one bad envelope
/// among good ones is refused alone, and the good ones around it are
/// stored, whatever its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forged_envelope_in_a_batch_is_refused_alone() {
    use casebook_shared::frames::ErrorCode;
    let relay = TestRelay::start().await;
    let up = casebook_tests::uploader::uploader(&relay.addr(), relay.fingerprint())
        .await
        .unwrap();
    for bad_at in [0usize, 13, 31] {
        let mut envelopes = up.seal(32);
        let n = envelopes[bad_at].len();
        envelopes[bad_at][n - 70] ^= 0x40;
        let Response::Uploaded { results } = up
            .relay
            .request(&Request::Upload { envelopes })
            .await
            .unwrap()
        else {
            panic!("no upload answer");
        };
        for (i, r) in results.iter().enumerate() {
            if i == bad_at {
                assert_eq!(*r, Err(ErrorCode::Invalid), "the forged one, at {i}");
            } else {
                assert!(
                    r.is_ok(),
                    "envelope {i} beside a forged one at {bad_at}: {r:?}"
                );
            }
        }
    }
    relay.stop().await;
}
