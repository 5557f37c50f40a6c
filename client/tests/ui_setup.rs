//! First run from the page: an account set up where no home exists (its
//! recovery words shown once, behind a confirmation), mistakes refused with
//! what was typed kept and the passphrase never sent back, and a second
//! machine joined to the account by the code the first one's page shows.

mod common;

use common::page::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_set_up_and_a_second_device_joined_from_the_page() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet) = (dir.path().join("laptop"), dir.path().join("tablet"));
    let args = init_args(&relay, "unused");
    let (addr, fp) = (form(&args[4]), form(&args[6]));

    let page = Page::start(&laptop, &[]);
    let cookie = page.sign_in();
    let first = page.get(&cookie, "/").body;
    for said in [
        "Set up a new account",
        "Add this device to your account",
        "Relay fingerprint",
    ] {
        assert!(first.contains(said), "{said}: {first}");
    }
    // Mistakes: said, what was typed kept, no passphrase sent back.
    let differ = page.post(
        &cookie,
        "/setup",
        &format!("name=Dr.+Rivera&relay={addr}&fingerprint={fp}&passphrase=one+long+phrase&passphrase_again=another+phrase"),
    );
    assert_eq!(differ.status, 400);
    assert!(
        differ.body.contains("The two passphrases differ"),
        "{}",
        differ.body
    );
    assert!(
        differ.body.contains("value=\"Dr. Rivera\""),
        "{}",
        differ.body
    );
    assert!(!differ.body.contains("one long phrase"), "{}", differ.body);
    let short = page.post(
        &cookie,
        "/setup",
        &format!(
            "name=Dr.+Rivera&relay={addr}&fingerprint={fp}&passphrase=short&passphrase_again=short"
        ),
    );
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    let wrong_fp = page.post(
        &cookie,
        "/setup",
        &format!("name=Dr.+Rivera&relay={addr}&fingerprint=sha256%3A{}&passphrase={p}&passphrase_again={p}", "ab".repeat(32), p = form(PASS)),
    );
    assert!(
        wrong_fp.body.contains("Nothing was set up"),
        "{}",
        wrong_fp.body
    );
    assert!(!ok_exists(&laptop), "a refused setup leaves no home");

    let made = page.post(
        &cookie,
        "/setup",
        &format!("name=Dr.+Rivera&relay={addr}&fingerprint={fp}&device_name=laptop&passphrase={p}&passphrase_again={p}", p = form(PASS)),
    );
    assert_eq!(made.status, 200, "{made:?}");
    let words = made
        .body
        .split("<code class=\"words\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert_eq!(words.split_whitespace().count(), 12, "{words}");
    assert!(made.body.contains("I have written these words down"));
    assert_eq!(page.post(&cookie, "/setup/done", "written=yes").status, 303);
    // Unlocked, and set up once only.
    assert!(page.get(&cookie, "/").body.contains("New case"));
    let again = page.post(&cookie, "/setup", "name=x");
    assert_eq!(again.status, 303);

    // A second machine joins by the code this page shows.
    assert_eq!(page.post(&cookie, "/devices/pair", "").status, 303);
    let pairing = page.get(&cookie, "/devices/pair").body;
    let code = pairing
        .split("casebook device join ")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .trim()
        .to_string();
    let second = Page::start(&tablet, &[]);
    let tab_cookie = second.sign_in();
    let joined = second.post(
        &tab_cookie,
        "/setup/join",
        &format!("code={}&relay={addr}&fingerprint={fp}&device_name=tablet&passphrase={p}&passphrase_again={p}", form(&code), p = form(PASS)),
    );
    assert_eq!(joined.status, 303, "{joined:?}");
    eventually("the first page to say it paired", || {
        page.get(&cookie, "/devices/pair")
            .body
            .contains("Paired device")
    });
    assert!(second.get(&tab_cookie, "/devices").body.contains("tablet"));
    // The laptop's name arrives with the background sync.
    eventually("the laptop's name reaching the tablet", || {
        second.get(&tab_cookie, "/devices").body.contains("laptop")
    });
    drop(second);
    // The tablet's home opens with the passphrase chosen on its page.
    assert!(ok(&tablet, &["whoami"]).contains("Dr. Rivera"));
}

/// Whether `home` holds a home the CLI can open.
fn ok_exists(home: &std::path::Path) -> bool {
    run(home, &["whoami"]).status.success()
}
