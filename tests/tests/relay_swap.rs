//! A relay that swapped the stored bytes of two envelopes, and was put
//! right afterwards: what a device took or refused in the order served is
//! mended once the relay serves the true order.

use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::DocId;
use casebook_tests::hostile_relay::HostileRelay;
use casebook_tests::*;

/// The change envelopes of `doc` the relay stores, oldest first:
/// sequence number, bytes and header.
fn changes(relay: &TestRelay, doc: &DocId) -> Vec<(i64, Vec<u8>, Header)> {
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT seq, bytes FROM envelopes WHERE doc = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([&doc.0[..]], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .filter_map(|(seq, b)| {
        let header = Envelope::decode(b.clone()).ok()?.header;
        (header.kind == Kind::Change).then_some((seq, b, header))
    })
    .collect()
}

fn set_bytes(relay: &TestRelay, seq: i64, bytes: &[u8]) {
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).unwrap();
    db.execute(
        "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2",
        rusqlite::params![bytes, seq],
    )
    .unwrap();
}

/// Blocks, from now on, every upload of `who`'s audit entries and of
/// signals: its changes land, but nothing claims them.
fn unclaimed(hostile: &HostileRelay, who: &casebook::Home) {
    let audit = casebook::audit_sync::audit_doc(&who.account_id());
    hostile.intercept(move |req| {
        let Request::Upload { envelopes } = req else {
            return None;
        };
        let claims = envelopes.iter().any(|b| {
            Envelope::decode(b.clone())
                .is_ok_and(|e| e.header.doc == audit || e.header.kind == Kind::Signal)
        });
        claims.then(|| Response::error(ErrorCode::Internal, "the connection dropped"))
    });
}

/// The colleague's device was served the stored bytes of a change it held
/// in place of one it had not fetched: the change lies below its seen mark
/// once the relay is put right. The next change builds on it, so the sync
/// that fetches that one finds the case lacking and, in the same round,
/// fetches it again from its start. One sync heals it; none reports the
/// case incomplete or anything refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_passed_while_its_bytes_were_swapped_arrives_in_the_sync_that_misses_it() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut rivera = init(dirs[0].path(), &hostile, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), &relay, "Dr. Chen");
    let case = case_with_a_plan(&mut rivera, "walk daily");
    sync(&mut rivera).await;
    sync(&mut chen).await;
    befriend(&mut rivera, "Dr. Chen", &chen.account_id());
    share_case(&mut rivera, &case, "Dr. Chen", "read", true).await;
    assert_clean(&sync(&mut chen).await);
    assert_eq!(plan_of(&mut chen, &case), "walk daily");

    // The laptop's change lands, but its round ends before the signal that
    // claims it and its audit entries go out: nothing tells Dr. Chen's
    // device yet that the relay took it.
    unclaimed(&hostile, &rivera);
    set_plan(&mut rivera, &case, "breathing exercise");
    let _ = try_sync(&mut rivera).await;
    hostile.clear();

    // Its bytes and those of the change before it, which Dr. Chen's device
    // holds, swapped: that device takes a copy of what it has.
    let mut rows = changes(&relay, &case);
    let (new, held) = (rows.pop().unwrap(), rows.pop().unwrap());
    set_bytes(&relay, new.0, &held.1);
    set_bytes(&relay, held.0, &new.1);
    assert_clean(&sync(&mut chen).await);
    assert_eq!(plan_of(&mut chen, &case), "walk daily");

    // Put right; the laptop writes on top of the change.
    set_bytes(&relay, new.0, &new.1);
    set_bytes(&relay, held.0, &held.1);
    set_plan(&mut rivera, &case, "sleep hygiene");
    assert_clean(&sync(&mut rivera).await);

    assert_clean(&sync(&mut chen).await);
    assert_eq!(plan_of(&mut chen, &case), "sleep hygiene");
}

/// Dr. Okafor's change, written while the share lasted, and the laptop's
/// first change under the key after it ended (which does not build on it):
/// the relay swapped their bytes, so the tablet was served the new
/// epoch's change first, and refused Dr. Okafor's as written after the
/// share ended. Only the relay's order said so: once it is put right, the
/// tablet fetches the case from its start and takes the change, as the
/// laptop did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_refused_for_the_relays_order_is_taken_once_the_order_is_put_right() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let mut okafor = init(dirs[1].path(), &hostile, "Dr. Okafor");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[2].path(), &relay).await;
    sync(&mut okafor).await;
    befriend(&mut laptop, "Dr. Okafor", &okafor.account_id());
    share_case(&mut laptop, &case, "Dr. Okafor", "write", true).await;
    assert_clean(&sync(&mut okafor).await);
    assert_clean(&sync(&mut tablet).await);

    // The laptop ends the share and writes a note before it syncs; Dr.
    // Okafor's edit lands first, unclaimed.
    laptop.unshare(&case, "Dr. Okafor").unwrap();
    laptop
        .edit_case(&case, "note", |c| {
            Ok(c.add_note(free_note("Under the new key."), "n2", "Dr. Rivera")?)
        })
        .unwrap();
    unclaimed(&hostile, &okafor);
    set_plan(&mut okafor, &case, "breathing exercise");
    let _ = try_sync(&mut okafor).await;
    sync(&mut laptop).await;
    assert_eq!(plan_of(&mut laptop, &case), "breathing exercise");

    let first_of = |who: casebook_shared::ids::AccountId, epoch: u32| {
        changes(&relay, &case)
            .into_iter()
            .find(|(.., h)| h.account == who && h.epoch == epoch)
            .unwrap()
    };
    let theirs = first_of(okafor.account_id(), 0);
    let ours = first_of(laptop.account_id(), 1);
    assert!(theirs.0 < ours.0);
    set_bytes(&relay, theirs.0, &ours.1);
    set_bytes(&relay, ours.0, &theirs.1);
    let r = sync(&mut tablet).await;
    assert!(
        r.refused
            .iter()
            .any(|x| x.reason.contains("share had ended")),
        "{:?}",
        r.refused
    );
    assert_eq!(plan_of(&mut tablet, &case), "walk daily");

    set_bytes(&relay, theirs.0, &theirs.1);
    set_bytes(&relay, ours.0, &ours.1);
    assert_clean(&sync(&mut tablet).await);
    assert_eq!(plan_of(&mut tablet, &case), "breathing exercise");
    assert_eq!(tablet.list_notes(&case).unwrap().len(), 2);
}
