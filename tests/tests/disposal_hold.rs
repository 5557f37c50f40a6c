//! A case under a legal hold is never destroyed, even by a disposal signed
//! on another of the owner's devices before the hold reached it: the
//! owner's device that holds it under the hold keeps it (alone: the relay
//! holds nothing more of it), says so every sync, and carries the disposal
//! out once the hold is lifted there. So with a hold placed offline while
//! the disposal went out, and with one placed after a restore undid the
//! disposal, before a device that kept it gave it back.

use casebook::Home;
use casebook::app::KeptCase;
use casebook_shared::ids::DocId;
use casebook_tests::*;

const SUBPOENA: &str = "records subpoena 2026-118";

fn holds(home: &Home, case: &DocId) -> bool {
    home.list_cases(true).unwrap().iter().any(|c| c.id == *case)
}

fn kept_lines(home: &Home, case: &DocId) -> usize {
    home.trail()
        .entries()
        .unwrap()
        .iter()
        .filter(|a| a.case == Some(*case) && a.what.contains("not carried out on this device"))
        .count()
}

/// A relay, and Dr. Rivera's laptop and tablet, both holding a case.
async fn laptop_and_tablet() -> (TestRelay, tempfile::TempDir, Home, Home, DocId) {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    (relay, dir, laptop, tablet, case)
}

/// What a sync that keeps `case` under its hold reports: the case, no
/// refusal, and `edits` edits held with why.
fn kept_so(r: &casebook::sync::SyncReport, case: &DocId, edits: usize) {
    assert_eq!(
        r.kept_under_hold,
        vec![KeptCase {
            case: *case,
            client: "Jordan Avery".into(),
            hold: SUBPOENA.into(),
        }],
        "{r:?}"
    );
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert!(r.incomplete.is_empty(), "{:?}", r.incomplete);
    let held: usize = r.held.iter().map(|h| h.edits).sum();
    assert_eq!(held, edits, "{:?}", r.held);
    assert!(
        r.held.iter().all(|h| h.reason.contains("legal hold")),
        "{:?}",
        r.held
    );
}

/// The tablet places a hold offline while the laptop disposes of the case:
/// the tablet keeps it, with its hold and notes, and the next note written
/// there, for as long as the hold stands; lifted, the disposal is carried
/// out there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_placed_offline_outlives_a_disposal_signed_elsewhere() {
    let (relay, dir, mut laptop, mut tablet, case) = laptop_and_tablet().await;

    tablet.set_legal_hold(&case, Some(SUBPOENA)).unwrap();
    // The laptop's last note, which the tablet never fetched, goes with
    // the case; the claim that the laptop made it does not make the case
    // kept on the tablet incomplete.
    laptop
        .add_note(&case, free_note("before the disposal"))
        .unwrap();
    sync(&mut laptop).await;
    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;
    assert!(!holds(&laptop, &case));

    let r = sync(&mut tablet).await;
    kept_so(&r, &case, 1);
    let view = tablet.open_case(&case).unwrap();
    assert_eq!(view.notes.len(), 1);
    assert_eq!(view.summary.legal_hold.as_deref(), Some(SUBPOENA));
    assert_eq!(kept_lines(&tablet, &case), 1);

    // Every sync says so again, and the trail once; an edit waits with the
    // hold's, and the laptop never sees either.
    tablet
        .add_note(&case, free_note("Records request received."))
        .unwrap();
    let r = sync(&mut tablet).await;
    kept_so(&r, &case, 2);
    assert_eq!(kept_lines(&tablet, &case), 1);
    assert_eq!(tablet.open_case(&case).unwrap().notes.len(), 2);
    let r = sync(&mut laptop).await;
    assert!(
        r.kept_under_hold.is_empty() && r.refused.is_empty(),
        "{r:?}"
    );
    assert!(!holds(&laptop, &case));
    let phone = pair(&mut laptop, &dir.path().join("phone"), &relay).await;
    assert!(!holds(&phone, &case), "a device paired since never sees it");

    tablet.set_legal_hold(&case, None).unwrap();
    let r = sync(&mut tablet).await;
    assert!(r.kept_under_hold.is_empty() && r.held.is_empty(), "{r:?}");
    assert!(
        !holds(&tablet, &case),
        "carried out once the hold is lifted"
    );
    assert!(
        tablet
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|a| a.case == Some(case) && a.what.contains("disposed of by Dr. Rivera"))
    );
    assert!(sync(&mut tablet).await.kept_under_hold.is_empty());
    relay.stop().await;
}

/// The relay is restored from a copy older than the disposal; the tablet,
/// which never saw the disposal, places a hold and syncs before the laptop
/// gives the disposal back. The relay deletes the case again; the tablet
/// keeps it under the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_placed_after_a_restore_outlives_the_disposal_given_back() {
    let (relay, _dir, mut laptop, mut tablet, case) = laptop_and_tablet().await;
    let (relay, copy) = relay.copy().await;

    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;
    assert!(!holds(&laptop, &case));

    let relay = relay.restore(copy.path()).await;
    tablet.set_legal_hold(&case, Some(SUBPOENA)).unwrap();
    let r = sync(&mut tablet).await;
    assert!(r.held.is_empty() && r.kept_under_hold.is_empty(), "{r:?}");
    let back = sync(&mut laptop).await;
    assert!(back.disposals_healed.contains(&case), "{back:?}");

    let r = sync(&mut tablet).await;
    kept_so(&r, &case, 0);
    let view = tablet.open_case(&case).unwrap();
    assert_eq!(view.notes.len(), 1);
    assert_eq!(view.summary.legal_hold.as_deref(), Some(SUBPOENA));
    let r = sync(&mut tablet).await;
    kept_so(&r, &case, 0);
    assert_eq!(kept_lines(&tablet, &case), 1);

    // Restored from the same copy again, the relay holds the case without
    // its disposal: the tablet sends its edits as any others, until the
    // laptop gives the disposal back again.
    let relay = relay.restore(copy.path()).await;
    tablet.add_note(&case, free_note("Records sent.")).unwrap();
    let r = sync(&mut tablet).await;
    assert!(r.kept_under_hold.is_empty() && r.held.is_empty(), "{r:?}");
    assert!(r.pushed > 0, "{r:?}");
    let back = sync(&mut laptop).await;
    assert!(back.disposals_healed.contains(&case), "{back:?}");
    let r = sync(&mut tablet).await;
    kept_so(&r, &case, 0);
    assert_eq!(tablet.open_case(&case).unwrap().notes.len(), 2);
    relay.stop().await;
}
