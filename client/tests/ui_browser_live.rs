//! The page kept current in a real browser: a draft saved as it is typed,
//! a second device's edit to the same note appearing in the open page
//! while the person goes on typing (neither side's words lost), outcome
//! scores drawn as a chart, a share made from the page reaching a
//! colleague whose comment then appears without a reload, and the page
//! locking itself and asking for the passphrase again.
//!
//! Skipped loudly without chromium and chromedriver, except under CI.

mod common;

use std::time::Duration;

use common::browser::*;
use common::page::eventually;
use common::*;
use fantoccini::{Client, Locator};

/// A control's current value, as the page holds it.
async fn value(c: &Client, label: &str) -> String {
    labelled(c, label)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits until `check` holds of the page, failing with what it showed.
async fn until(c: &Client, what: &str, check: impl AsyncFn(&Client) -> bool) {
    for _ in 0..100 {
        if check(c).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} never happened: {}", c.source().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_page_follows_other_devices_and_colleagues_without_losing_typing() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, chen) = (
        dir.path().join("laptop"),
        dir.path().join("tablet"),
        dir.path().join("chen"),
    );
    let args = init_args(&relay, "Dr. Rivera");
    let init = run(
        &laptop,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(init.status.success());
    let recovered = casebook(&tablet)
        .env("CASEBOOK_RECOVERY_WORDS", shown_words(&init.stderr))
        .args(["recover", "--name", "Dr. Rivera", "--device-name", "tablet"])
        .args(&args[3..])
        .output()
        .unwrap();
    assert!(recovered.status.success(), "{recovered:?}");
    init_at(&chen, &relay, "Dr. Chen");
    befriend(&laptop, &chen, "Dr. Chen");
    befriend(&chen, &laptop, "Dr. Rivera");

    let (_driver, driver_port) = start_driver(&driver);
    let (page, url) = start_ui(&laptop, &[]);
    let _page = Running(page);
    let c = session(&chromium, driver_port).await;
    c.goto(&url).await.unwrap();
    fill(&c, "Passphrase", PASS).await;
    control(&c, "Unlock").await.click().await.unwrap();
    control(&c, "New case").await.click().await.unwrap();
    fill(&c, "Client name", "Jordan Avery").await;
    control(&c, "Create case").await.click().await.unwrap();
    // The case's own page, before its address is read.
    shows(&c, "Session notes").await;
    let case_url = c.current_url().await.unwrap();
    let case_id = case_url.path().trim_start_matches("/cases/").to_string();

    control(&c, "New note").await.click().await.unwrap();
    fill(&c, "Subjective", "Slept badly.").await;
    fill(&c, "PHQ-9 (0–27)", "14").await;
    fill(&c, "GAD-7 (0–21)", "9").await;
    control(&c, "Save").await.click().await.unwrap();
    // The draft's own page, before its address is read.
    shows(&c, "Session of ").await;
    let note_id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // Saved as it is typed: no button pressed.
    fill(&c, "Plan", "Keep a sleep diary.").await;
    shows(&c, "Saved ").await;
    let cli = ok(&laptop, &["note", "show", &case_id, &note_id]);
    assert!(cli.contains("Keep a sleep diary."), "{cli}");

    // The tablet edits the same note; the page shows it while the person
    // goes on typing in the plan.
    ok(&tablet, &["sync"]);
    ok(
        &tablet,
        &[
            "note",
            "edit",
            &case_id,
            &note_id,
            "--field",
            "subjective=Slept badly. Nightmares twice.",
        ],
    );
    ok(&tablet, &["sync"]);
    let plan = labelled(&c, "Plan").await;
    plan.send_keys(" Review in two weeks.").await.unwrap();
    until(&c, "the tablet's words reaching the open page", async |c| {
        value(c, "Subjective").await == "Slept badly. Nightmares twice."
    })
    .await;
    plan.send_keys(" Bring it next time.").await.unwrap();
    assert_eq!(
        value(&c, "Plan").await,
        "Keep a sleep diary. Review in two weeks. Bring it next time."
    );
    screenshot(&c, "6-draft-merged").await;
    control(&c, "Sign").await.click().await.unwrap();
    shows(&c, "Signed by Dr. Rivera").await;
    ok(&tablet, &["sync"]);
    let on_tablet = ok(&tablet, &["note", "show", &case_id, &note_id]);
    for both in [
        "Nightmares twice.",
        "Keep a sleep diary. Review in two weeks. Bring it next time.",
    ] {
        assert!(on_tablet.contains(both), "{both}: {on_tablet}");
    }

    // The chart of the scores entered.
    c.goto(case_url.as_str()).await.unwrap();
    shows(&c, "PHQ-9 over 1 session(s): 14 on").await;
    let chart = c.find(Locator::Css("figure.chart svg")).await.unwrap();
    assert!(
        chart
            .html(false)
            .await
            .unwrap()
            .contains("moderately severe")
    );
    screenshot(&c, "7-chart").await;

    // A share made from the page reaches the colleague.
    control(&c, "Share this case").await.click().await.unwrap();
    labelled(&c, "Role")
        .await
        .select_by_value("comment")
        .await
        .unwrap();
    fill(&c, "Purpose", "consultation").await;
    fill(&c, "Consent reference", "signed release").await;
    screenshot(&c, "8-share").await;
    control(&c, "Share").await.click().await.unwrap();
    shows(&c, "Dr. Chen, comment").await;
    // Sent by the page's background sync.
    eventually("the share reaching the colleague", || {
        ok(&chen, &["sync"]);
        ok(&chen, &["case", "list"]).contains("Jordan Avery")
    });

    // Their comment appears in the open note without a reload.
    c.goto(&format!("{}/notes/{note_id}", case_url.as_str()))
        .await
        .unwrap();
    shows(&c, "Signed by Dr. Rivera").await;
    ok(
        &chen,
        &[
            "note",
            "comment",
            &case_id,
            &note_id,
            "--text",
            "Consider sleep hygiene.",
        ],
    );
    ok(&chen, &["sync"]);
    shows(&c, "Consider sleep hygiene.").await;
    c.close().await.unwrap();

    // A page left alone locks itself and asks for the passphrase.
    let (tab_page, tab_url) = start_ui(&tablet, &["--lock-after", "0.05"]);
    let _tab_page = Running(tab_page);
    let c = session(&chromium, driver_port).await;
    c.goto(&tab_url).await.unwrap();
    fill(&c, "Passphrase", PASS).await;
    control(&c, "Unlock").await.click().await.unwrap();
    shows(&c, "Jordan Avery").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    shows(&c, "Unlock casebook").await;
    screenshot(&c, "9-locked").await;
    c.close().await.unwrap();
}
