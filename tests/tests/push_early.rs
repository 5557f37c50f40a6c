//! An edit sent before its round catches up (`sync::push_early`): it goes
//! out first, so another device sees it sooner, and never under a key that
//! a member removed or expired meanwhile still holds.

use casebook::sync::Progress;
use casebook_shared::envelope::Kind;
use casebook_shared::ids::DocId;
use casebook_tests::*;

/// Changes of `doc` the relay stores sealed under one of `epochs`: what a
/// colleague holding those keys could read, handed the relay's bytes.
fn readable_with(relay: &TestRelay, doc: &DocId, epochs: &[u32]) -> usize {
    stored_envelopes(relay, doc)
        .iter()
        .filter(|e| e.header.kind == Kind::Change && epochs.contains(&e.header.epoch))
        .count()
}

/// Rivera's laptop, caught up with a case shared with Dr. Chen (`role`,
/// ending `expires_in` seconds after it is shared), and Dr. Chen holding
/// its key.
async fn shared_case(
    relay: &TestRelay,
    dirs: &[tempfile::TempDir],
    role: &str,
    expires_in: Option<u64>,
) -> (casebook::Home, casebook::Home, DocId) {
    let mut rivera = init(dirs[0].path(), relay, "Dr. Rivera");
    let mut chen = init(dirs[1].path(), relay, "Dr. Chen");
    sync(&mut chen).await;
    let case = case_with_a_plan(&mut rivera, "walk daily");
    let (_, _, safety, card) = chen.whoami();
    rivera.contacts().add("Dr. Chen", &card).unwrap();
    rivera.contacts().verify("Dr. Chen", &safety).unwrap();
    let conn = rivera.connect().await.unwrap();
    let expires = expires_in.map(|s| casebook_shared::clock::Clock::system().now() + s);
    rivera
        .share(
            &conn,
            &case,
            "Dr. Chen",
            casebook::sharing::parse_role(role).unwrap(),
            "consultation",
            "signed release",
            expires,
            false,
        )
        .await
        .unwrap();
    rivera.sync(&conn, &mut |_| {}).await.unwrap();
    conn.close().await;
    sync(&mut chen).await;
    assert_eq!(plan_of(&mut chen, &case), "walk daily");
    (rivera, chen, case)
}

/// [`shared_case`] with write access, and a tablet of Rivera's that can
/// end the share; both of Rivera's devices caught up. Returns the epochs
/// Dr. Chen holds.
async fn owner_with_a_tablet(
    relay: &TestRelay,
    dirs: &[tempfile::TempDir],
) -> (casebook::Home, casebook::Home, DocId, Vec<u32>) {
    let (mut laptop, chen, case) = shared_case(relay, dirs, "write", None).await;
    let mut tablet = pair(&mut laptop, dirs[2].path(), relay).await;
    sync(&mut tablet).await;
    let held = chen.access().doc_epochs(&case).unwrap();
    let (_, _, safety, card) = chen.whoami();
    tablet.contacts().add("Dr. Chen", &card).unwrap();
    tablet.contacts().verify("Dr. Chen", &safety).unwrap();
    sync(&mut laptop).await;
    (laptop, tablet, case, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_sent_first_never_goes_out_under_a_removed_members_key() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case, held) = owner_with_a_tablet(&relay, &dirs).await;

    // The tablet ends the share (a new epoch) while the laptop, which
    // caught up just before, knows nothing of it and edits.
    tablet.unshare(&case, "Dr. Chen").unwrap();
    sync(&mut tablet).await;
    let before = readable_with(&relay, &case, &held);
    set_plan(&mut laptop, &case, "written after the share ended");
    let report = sync(&mut laptop).await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.held.is_empty(), "{:?}", report.held);
    assert_eq!(
        (report.pushed_first, report.access_moved),
        (0, 1),
        "the edit was sent first, and the relay refused it as sealed under an old epoch"
    );
    assert_eq!(
        readable_with(&relay, &case, &held),
        before,
        "no change after the removal is sealed under a key the colleague holds"
    );
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "written after the share ended");
    relay.stop().await;
}

/// Opens the laptop's home in a new session (so nothing goes out before
/// its round has pulled), gives that pull something new from the tablet,
/// and edits the plan on the laptop.
async fn laptop_edits_in_a_new_session(
    dirs: &[tempfile::TempDir],
    tablet: &mut casebook::Home,
    case: &DocId,
    plan: &str,
) -> casebook::Home {
    let mut laptop = casebook::Home::open(dirs[0].path(), PASSPHRASE).unwrap();
    case_with_a_plan(tablet, "another case");
    sync(tablet).await;
    set_plan(&mut laptop, case, plan);
    laptop
}

/// What the tablet does while the laptop's round waits.
type Pause<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// One round of the laptop's, with `between` run on the tablet once the
/// round has pulled and before it pushes.
async fn round_with_a_pause(
    laptop: &mut casebook::Home,
    tablet: &mut casebook::Home,
    between: impl for<'a> FnOnce(&'a mut casebook::Home) -> Pause<'a> + Send,
) -> casebook::sync::SyncReport {
    let conn = laptop.connect().await.unwrap();
    let mut between = Some(between);
    let report = laptop
        .sync(&conn, &mut |p| {
            if matches!(p, Progress::Visible { .. })
                && let Some(f) = between.take()
            {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(f(&mut *tablet))
                });
            }
        })
        .await
        .unwrap();
    conn.close().await;
    assert!(
        between.is_none(),
        "the round paused between its pull and push"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_sent_by_a_round_that_pulled_before_a_new_epoch_is_sealed_again() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (laptop, mut tablet, case, held) = owner_with_a_tablet(&relay, &dirs).await;
    drop(laptop);
    let mut laptop =
        laptop_edits_in_a_new_session(&dirs, &mut tablet, &case, "written as the share ended")
            .await;
    let before = readable_with(&relay, &case, &held);

    // The tablet ends the share after the laptop's round has pulled and
    // before it pushes: the edit was sealed under the epoch Dr. Chen holds.
    let report = round_with_a_pause(&mut laptop, &mut tablet, |tablet| {
        Box::pin(async move {
            tablet.unshare(&case, "Dr. Chen").unwrap();
            sync(tablet).await;
        })
    })
    .await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.held.is_empty(), "{:?}", report.held);
    assert_eq!(
        report.access_moved, 1,
        "the relay refused the edit as sealed under an old epoch; the round sealed it again"
    );
    assert_eq!(
        readable_with(&relay, &case, &held),
        before,
        "no change after the removal is sealed under a key the colleague holds"
    );
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "written as the share ended");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_pulled_before_a_device_was_revoked_seals_again_under_the_new_keys() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case, _) = owner_with_a_tablet(&relay, &dirs).await;
    let mut phone = pair(&mut tablet, dirs[3].path(), &relay).await;
    sync(&mut phone).await;
    let held = phone.access().doc_epochs(&case).unwrap();
    let phone = phone.device_id();
    sync(&mut laptop).await;
    drop(laptop);
    let mut laptop = laptop_edits_in_a_new_session(
        &dirs,
        &mut tablet,
        &case,
        "written as the phone was revoked",
    )
    .await;
    let before = readable_with(&relay, &case, &held);

    // The tablet revokes the phone (the account log grows, then every owned
    // document rotates) after the laptop's round has pulled and before it
    // pushes: the retry must check the rotation against the new account log.
    let report = round_with_a_pause(&mut laptop, &mut tablet, |tablet| {
        Box::pin(async move {
            let c = tablet.connect().await.unwrap();
            tablet.revoke(&c, &phone).await.unwrap();
            c.close().await;
            sync(tablet).await;
        })
    })
    .await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.held.is_empty(), "{:?}", report.held);
    assert_eq!(report.access_moved, 1);
    assert_eq!(
        readable_with(&relay, &case, &held),
        before,
        "nothing written after the revocation is sealed under a key the phone holds"
    );
    sync(&mut tablet).await;
    assert_eq!(
        plan_of(&mut tablet, &case),
        "written as the phone was revoked"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_sent_first_never_goes_out_under_a_revoked_devices_key() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut chen, case) = shared_case(&relay, &dirs, "write", None).await;
    let mut phone = pair(&mut chen, dirs[2].path(), &relay).await;
    sync(&mut phone).await;
    assert_eq!(plan_of(&mut phone, &case), "walk daily");
    let held = phone.access().doc_epochs(&case).unwrap();
    sync(&mut laptop).await;

    // Dr. Chen revokes his phone (his account key moves on) while Rivera's
    // laptop, which caught up just before, knows nothing of it and edits.
    let conn = chen.connect().await.unwrap();
    chen.revoke(&conn, &phone.device_id()).await.unwrap();
    conn.close().await;
    let before = readable_with(&relay, &case, &held);
    set_plan(&mut laptop, &case, "written after the phone was revoked");
    let report = sync(&mut laptop).await;
    assert_eq!(
        (report.pushed_first, report.access_moved),
        (0, 1),
        "the edit was sent first, and the relay refused it: a rotation is owed"
    );
    assert_eq!(
        readable_with(&relay, &case, &held),
        before,
        "no change after the revocation is sealed under a key the phone holds"
    );
    sync(&mut chen).await;
    assert_eq!(
        plan_of(&mut chen, &case),
        "written after the phone was revoked"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_after_a_share_expired_waits_for_the_new_key() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut rivera, chen, case) = shared_case(&relay, &dirs, "read", Some(3)).await;
    let expires = rivera.shares(&case).unwrap()[0].expires.unwrap();
    let held = chen.access().doc_epochs(&case).unwrap();
    let before = readable_with(&relay, &case, &held);
    // Rivera caught up before the expiry; the relay's epoch has not moved
    // (only the owner's devices rotate), so only Rivera can tell.
    sync(&mut rivera).await;
    while casebook_shared::clock::Clock::system().now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    set_plan(&mut rivera, &case, "written after the share expired");
    let report = sync(&mut rivera).await;
    assert_eq!((report.pushed_first, report.access_moved), (0, 0));
    assert!(rivera.shares(&case).unwrap().is_empty(), "the share ended");
    assert_eq!(
        readable_with(&relay, &case, &held),
        before,
        "no change after the expiry is sealed under a key the colleague holds"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_goes_out_before_the_round_fetches() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut laptop, mut tablet, case) = laptop_and_tablet(&relay, &dirs).await;
    sync(&mut laptop).await;

    // Something for the laptop's round to fetch, and an edit of its own.
    let other = case_with_a_plan(&mut tablet, "sleep log");
    sync(&mut tablet).await;
    set_plan(&mut laptop, &case, "walk twice daily");
    let conn = laptop.connect().await.unwrap();
    let mut events = Vec::new();
    let report = laptop
        .sync(&conn, &mut |p| {
            events.push(match p {
                Progress::Pushed { .. } => "pushed",
                Progress::Fetched { .. } => "fetched",
                _ => "other",
            })
        })
        .await
        .unwrap();
    conn.close().await;
    assert_eq!(report.pushed_first, 1);
    let first = |what: &str| events.iter().position(|e| *e == what);
    assert!(
        matches!((first("pushed"), first("fetched")), (Some(p), Some(f)) if p < f),
        "the edit went out before anything was fetched: {events:?}"
    );
    assert_eq!(plan_of(&mut laptop, &other), "sleep log");
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &case), "walk twice daily");
    relay.stop().await;
}
