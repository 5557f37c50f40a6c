//! `casebook ui` in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`), finding every
//! control by its visible label, as a person using the keyboard or a
//! screen reader would. Each main page is saved as a screenshot under
//! `target/tmp/ui-screens/`.
//!
//! Where the two programs are missing this says so loudly and passes;
//! with `CI=true` their absence fails the run (`.ci/run` installs them).

mod common;

use common::browser::*;
use common::*;
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_therapist_unlocks_writes_signs_finds_and_locks_in_a_browser() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let (_driver, driver_port) = start_driver(&driver);
    let (page, url) = start_ui(&home, &[]);
    let _page = Running(page);
    let c = session(&chromium, driver_port).await;

    c.goto(&url).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert_eq!(at.query(), None, "the token left the address: {at}");
    screenshot(&c, "1-unlock").await;
    fill(&c, "Passphrase", PASS).await;
    control(&c, "Unlock").await.click().await.unwrap();

    control(&c, "New case").await.click().await.unwrap();
    fill(&c, "Client name", "Jordan Avery").await;
    control(&c, "Create case").await.click().await.unwrap();
    shows(&c, "Session notes").await;
    let case_id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/cases/")
        .to_string();
    screenshot(&c, "2-case").await;

    // The page's merge of a draft's field, when another device changed it
    // while it was typed in: both sides stay, also where they meet.
    for (base, remote, local, merged) in [
        (
            "Sleep poor",
            "Sleep poor, wakes at 4",
            "Sleep poor. Diary",
            "Sleep poor, wakes at 4. Diary",
        ),
        (
            "one two three",
            "one 2 three",
            "one two! three",
            "one 2! three",
        ),
        ("abc def", "xyz def", "abQef", "xyzQef"),
        ("Plan", "Plan", "Plan: diary", "Plan: diary"),
    ] {
        let got = c
            .execute(
                "return casebookMerge(arguments[0], arguments[1], arguments[2]).text;",
                vec![base.into(), remote.into(), local.into()],
            )
            .await
            .unwrap();
        assert_eq!(
            got,
            serde_json::json!(merged),
            "{base:?} {remote:?} {local:?}"
        );
    }
    // The caret stays after what the person typed where the two met.
    let caret = c
        .execute(
            "return casebookMerge('abcdef', 'abXYef', 'abcQdef', 4);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(caret, serde_json::json!({"text": "abXYQef", "caret": 5}));

    control(&c, "New note").await.click().await.unwrap();
    labelled(&c, "Format").await;
    labelled(&c, "Date").await;
    labelled(&c, "Subjective")
        .await
        .send_keys("Slept badly; worried about work.")
        .await
        .unwrap();
    fill(&c, "Plan", "Keep a sleep diary.").await;
    screenshot(&c, "3-new-note").await;
    control(&c, "Save").await.click().await.unwrap();
    control(&c, "Sign").await.click().await.unwrap();
    shows(&c, "Signed by Dr. Rivera").await;
    screenshot(&c, "4-signed-note").await;

    c.goto(url.split("/?").next().unwrap()).await.unwrap();
    fill(&c, "Search", "diary").await;
    c.find(Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The hit: its case, the section it is in, and its words.
    shows(&c, "<h1>Search</h1>").await;
    let hits = c
        .find(Locator::Css("ul.hits"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        hits.contains("Jordan Avery") && hits.contains("Plan") && hits.contains("diary"),
        "{hits}"
    );
    screenshot(&c, "5-search").await;

    // The same record in the CLI: one core.
    let cli = ok(&home, &["note", "list", "Jordan"]);
    assert!(cli.contains("signed"), "{cli}");

    control(&c, "Lock").await.click().await.unwrap();
    labelled(&c, "Passphrase").await;

    // The keyboard alone, at a tablet's width: the passphrase field has
    // the focus, Enter unlocks, Tab reaches "New case", Enter follows it.
    c.set_window_size(768, 1024).await.unwrap();
    let active = c.active_element().await.unwrap();
    assert_eq!(
        active.attr("id").await.unwrap().as_deref(),
        Some("passphrase")
    );
    active.send_keys(&format!("{PASS}\u{E007}")).await.unwrap();
    shows(&c, "<h1>Cases</h1>").await;
    let mut reached = false;
    for _ in 0..30 {
        let now = c.active_element().await.unwrap();
        if now.text().await.unwrap_or_default() == "New case" {
            now.send_keys("\u{E007}").await.unwrap();
            reached = true;
            break;
        }
        now.send_keys("\u{E004}").await.unwrap();
    }
    assert!(reached, "Tab never reached \"New case\"");
    let name = labelled(&c, "Client name").await;
    assert_eq!(
        c.active_element().await.unwrap().attr("id").await.unwrap(),
        name.attr("id").await.unwrap(),
        "the form's first field has the focus"
    );
    // Nothing wider than the screen, on the list and in a note.
    for page in ["/", &format!("/cases/{case_id}/notes/new")] {
        c.goto(&format!("{}{page}", url.split("/?").next().unwrap()))
            .await
            .unwrap();
        let wide = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            wide,
            serde_json::json!(false),
            "{page} is wider than a tablet"
        );
    }
    screenshot(&c, "10-tablet-note").await;
    c.close().await.unwrap();
}
