//! The fixture of the tests of an account log that took another turn on
//! a restored relay: Dr. Rivera's devices, Dr. Chen, a copy of the relay's
//! data, and a device paired after it.

use casebook::Home;
use casebook_shared::ids::DocId;

use crate::*;

/// Dr. Rivera's laptop, phone and desk computer and a case, and Dr. Chen,
/// from before a copy of the relay's data was taken; the tablet the laptop
/// paired after it. The relay goes on.
pub struct PairedAfterTheCopy {
    pub copy: tempfile::TempDir,
    pub dir: tempfile::TempDir,
    pub laptop: Home,
    pub phone: Home,
    pub desk: Home,
    pub tablet: Home,
    pub chen: Home,
    pub case: DocId,
}

pub async fn paired_after_the_copy() -> (TestRelay, PairedAfterTheCopy) {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (mut laptop, _) = init_with_words(&at("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut desk = pair(&mut laptop, &at("desk"), &relay).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    for home in [&mut phone, &mut desk, &mut chen] {
        sync(home).await;
    }
    let (relay, copy) = relay.copy().await;
    let mut tablet = pair(&mut laptop, &at("tablet"), &relay).await;
    sync(&mut tablet).await;
    let t = PairedAfterTheCopy {
        copy,
        dir,
        laptop,
        phone,
        desk,
        tablet,
        chen,
        case,
    };
    (relay, t)
}

/// The relay is restored from the copy, and the phone, which never heard of
/// the tablet, pairs a watch on top of what the relay kept.
pub async fn restored_and_written_to(t: &mut PairedAfterTheCopy, relay: TestRelay) -> TestRelay {
    let relay = relay.restore(t.copy.path()).await;
    let watch = t.dir.path().join("watch");
    let _watch = pair(&mut t.phone, &watch, &relay).await;
    relay
}

/// The refusal `home` meets syncing: a turn it may not take, for `why`.
pub async fn refuses_the_turn(home: &mut Home, why: &str) {
    let refused = try_sync(home).await.unwrap_err().to_string();
    assert!(
        refused.contains("took another turn") && refused.contains(why),
        "{refused}"
    );
}

/// The refusal a colleague's device meets syncing: Dr. Rivera's log, a
/// turn it may not take, for `why`. Its sync goes on; `case`, which
/// rests on that log, waits, refused.
pub async fn colleague_refuses_the_turn(home: &mut Home, case: &DocId, why: &str) {
    let r = try_sync(home).await.expect("the rest of the round goes on");
    let [refused] = &r.logs_refused[..] else {
        panic!("{r:?}")
    };
    assert!(
        refused.reason.contains("took another turn") && refused.reason.contains(why),
        "{refused:?}"
    );
    assert!(
        r.refused
            .iter()
            .any(|x| x.doc == *case && x.reason.contains("was refused this round")),
        "{r:?}"
    );
}

/// The laptop takes the relay's log, signing the tablet in again.
pub async fn laptop_joins(t: &mut PairedAfterTheCopy) {
    let joined = sync(&mut t.laptop).await;
    assert_eq!(
        joined.logs_turned,
        vec![t.laptop.account_id()],
        "{joined:?}"
    );
}

/// The relay is restored from the copy, and the desk computer, which never
/// heard of the tablet, revokes the phone there as lost.
pub async fn revoked_on_the_restored_relay(
    t: &mut PairedAfterTheCopy,
    relay: TestRelay,
) -> TestRelay {
    let relay = relay.restore(t.copy.path()).await;
    let conn = t.desk.connect().await.unwrap();
    t.desk.revoke(&conn, &t.phone.device_id()).await.unwrap();
    conn.close().await;
    relay
}

/// Whether `home`'s trail has an entry that says `what`.
pub fn trail_says(home: &Home, what: &str) -> bool {
    (home.trail().entries().unwrap().iter()).any(|r| r.what.contains(what))
}
