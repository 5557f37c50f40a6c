//! A relay that withholds a colleague's account log that a device holds:
//! it answers that it has no such log, and refuses the copy the device
//! sends back. Only what rests on that log waits, refused and named; the
//! rest of the practitioner's sync goes on, and once the relay serves the
//! log again the held edits go out.

use casebook_shared::envelope::Kind;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_tests::hostile_relay::HostileRelay;
use casebook_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_log_the_relay_withholds_holds_back_only_what_rests_on_it() {
    let relay = TestRelay::start().await;
    let hostile = HostileRelay::start(&relay).await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let mut laptop = init(&at("laptop"), &hostile, "Dr. Rivera");
    let mut chen = init(&at("chen"), &hostile, "Dr. Chen");
    sync(&mut chen).await;
    let shared = case_with_a_plan(&mut laptop, "walk daily");
    let own = case_with_a_plan(&mut laptop, "sleep diary");
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    share_case(&mut laptop, &shared, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    let mut tablet = pair(&mut laptop, &at("tablet"), &hostile).await;
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &shared), "walk daily");

    // A full round just before, so the next one's early push runs.
    sync(&mut laptop).await;
    let chen_id = chen.account_id();
    hostile.intercept(move |req| match req {
        Request::GetAccount { account, .. } if *account == chen_id => {
            Some(Response::error(ErrorCode::NotFound, "no such account"))
        }
        Request::CreateAccount { .. } => Some(Response::error(
            ErrorCode::Invalid,
            "the log does not verify",
        )),
        _ => None,
    });
    // An edit the round's early push sends before the logs are read (the
    // last round was moments ago): its claim, told to Dr. Chen's devices
    // in a signal of the case, waits with the case.
    set_plan(&mut laptop, &shared, "walk daily, slowly");
    let signals = |relay: &TestRelay| {
        let all = stored_envelopes(relay, &shared);
        all.iter().filter(|e| e.header.kind == Kind::Signal).count()
    };
    let told = signals(&relay);
    let r = try_sync(&mut laptop)
        .await
        .expect("the rest of the round goes on");
    assert_eq!(r.pushed_first, 1, "the edit went early: {r:?}");
    assert_eq!(signals(&relay), told, "nothing sealed for the case");
    let [refused] = &r.logs_refused[..] else {
        panic!("{r:?}")
    };
    assert_eq!(refused.account, chen_id);
    assert!(
        refused
            .reason
            .contains("does not serve it (it answered Invalid)")
            && !refused.reason.contains("does not verify"),
        "the relay's own words stay out: {refused:?}"
    );
    assert!(
        r.refused
            .iter()
            .any(|x| x.doc == shared && x.reason.contains("was refused this round")),
        "{r:?}"
    );
    // Remembered until the next round reads the logs: the next edit of the
    // shared case is held even from the early push; the other goes out.
    set_plan(&mut laptop, &shared, "walk daily, longer");
    set_plan(&mut laptop, &own, "sleep diary, week two");
    let stored = stored_envelopes(&relay, &shared).len();
    let r = try_sync(&mut laptop).await.expect("again");
    assert_eq!(r.logs_refused.len(), 1, "{r:?}");
    assert_eq!(
        stored_envelopes(&relay, &shared).len(),
        stored,
        "nothing sent"
    );
    assert!(r.held.iter().any(|h| h.doc == shared), "{r:?}");
    assert!(r.held.iter().all(|h| h.doc != own), "{r:?}");
    // The case of the laptop's own reaches the tablet, which holds Dr.
    // Chen's log too and refuses it the same way.
    let r = try_sync(&mut tablet).await.expect("the tablet's sync too");
    assert_eq!(r.logs_refused.len(), 1, "{r:?}");
    assert_eq!(plan_of(&mut tablet, &own), "sleep diary, week two");
    assert_eq!(plan_of(&mut tablet, &shared), "walk daily");

    // Served again: nothing is refused, the held edit goes out, and Dr.
    // Chen and the tablet read it.
    hostile.clear();
    let r = sync(&mut laptop).await;
    assert!(r.logs_refused.is_empty() && r.held.is_empty(), "{r:?}");
    assert!(signals(&relay) > told, "the claim that waited is told");
    sync(&mut chen).await;
    assert_eq!(plan_of(&mut chen, &shared), "walk daily, longer");
    sync(&mut tablet).await;
    assert_eq!(plan_of(&mut tablet, &shared), "walk daily, longer");
    drop(hostile);
    relay.stop().await;
}
