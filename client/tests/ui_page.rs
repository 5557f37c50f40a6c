//! `casebook ui` as a browser and an attacker meet it: the real binary on a
//! loopback port, spoken to over plain HTTP/1.1 so that each bad request
//! (another Host, another Origin, no cookie, a used link, a change by GET)
//! is sent exactly as an attacker would send it, and seen refused.

mod common;

use common::page::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lets_in_only_its_own_browser_and_escapes_what_it_shows() {
    let (page, home, _kept) = started().await;

    // DNS rebinding: a name pointed at 127.0.0.1 is not this page.
    let rebound = page.send(
        "GET",
        &format!("/?token={}", page.token),
        &[("Host", &format!("evil.example:{}", page.port))],
        "",
    );
    assert_eq!(rebound.status, 421, "{rebound:?}");
    // Nothing without the cookie; a wrong token is not one.
    assert_eq!(page.send("GET", "/", &[], "").status, 401);
    assert_eq!(page.send("GET", "/?token=00", &[], "").status, 403);
    // The link lets one browser in, once.
    let cookie = page.sign_in();
    let again = page.send("GET", &format!("/?token={}", page.token), &[], "");
    assert_eq!(again.status, 403, "a used link: {again:?}");
    // Opened again in the browser let in, it simply shows the page.
    let reopened = page.get(&cookie, &format!("/?token={}", page.token));
    assert_eq!(
        (reopened.status, reopened.header("location")),
        (303, Some("/"))
    );
    // A page on another port of this machine (the same site, so the
    // cookie rides along) or another site loading anything here.
    for site in ["same-site", "cross-site"] {
        let loaded = page.send(
            "GET",
            "/",
            &[("Cookie", &cookie), ("Sec-Fetch-Site", site)],
            "",
        );
        assert_eq!(loaded.status, 403, "{site}: {loaded:?}");
    }
    let typed_in = page.send(
        "GET",
        "/",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "none")],
        "",
    );
    assert_eq!(typed_in.status, 200, "{typed_in:?}");
    // A cookie of the same name set by another port does not shadow it.
    let shadowed = format!("casebook_{}=00; {cookie}", page.port);
    assert_eq!(page.get(&shadowed, "/").status, 200);
    assert_eq!(
        page.get(&format!("casebook_{}=00", page.port), "/").status,
        401
    );

    // Locked: the passphrase form, with the headers every answer carries.
    let locked = page.get(&cookie, "/");
    assert_eq!(locked.status, 200);
    for label in ["Passphrase", "Unlock"] {
        assert!(locked.body.contains(label), "{label}: {}", locked.body);
    }
    let csp = locked.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(locked.header("cache-control"), Some("no-store"));
    assert_eq!(locked.header("referrer-policy"), Some("no-referrer"));

    // Another site posting here is refused, and so is a post without Origin.
    let body = format!("passphrase={}", form(PASS));
    let cross = page.send(
        "POST",
        "/unlock",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        &body,
    );
    assert_eq!(cross.status, 403, "{cross:?}");
    let bare = page.send("POST", "/unlock", &[("Cookie", &cookie)], &body);
    assert_eq!(bare.status, 403, "{bare:?}");
    // What a browser says of another site's form, whatever its Origin.
    for (origin, site) in [
        ("null", "cross-site"),
        ("null", "same-site"),
        ("null", "none"),
    ] {
        let forged = page.send(
            "POST",
            "/unlock",
            &[
                ("Cookie", &cookie),
                ("Origin", origin),
                ("Sec-Fetch-Site", site),
            ],
            &body,
        );
        assert_eq!(forged.status, 403, "{site}: {forged:?}");
    }
    let own_origin = page.origin();
    let mixed = page.send(
        "POST",
        "/unlock",
        &[
            ("Cookie", &cookie),
            ("Origin", &own_origin),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        &body,
    );
    assert_eq!(mixed.status, 403, "{mixed:?}");
    let wrong = page.post(&cookie, "/unlock", "passphrase=not+it");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("does not open"), "{}", wrong.body);
    assert!(
        !wrong.body.contains("not it"),
        "the passphrase is not shown back"
    );
    assert_eq!(page.post(&cookie, "/unlock", &body).status, 303);

    // A case whose name is markup: shown as text, and the URL holds its id.
    let name = "<script>alert(1)</script> Avery";
    let made = page.post(&cookie, "/cases", &format!("client_name={}", form(name)));
    assert_eq!(made.status, 303, "{made:?}");
    let at = made.header("location").unwrap().to_string();
    assert!(
        at.starts_with("/cases/") && !at.to_lowercase().contains("avery"),
        "ids only in URLs: {at}"
    );
    let shown = page.get(&cookie, &at);
    assert_eq!(shown.status, 200);
    assert!(
        shown
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; Avery")
    );
    assert!(!shown.body.contains("<script>"), "{}", shown.body);
    let list = page.get(&cookie, "/");
    for label in ["New case", "Lock"] {
        assert!(list.body.contains(label), "{label}: {}", list.body);
    }
    // Refused input keeps what was typed.
    let refused = page.post(
        &cookie,
        "/cases",
        &format!("client_name={}", form("Bad\u{1b}Name")),
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("value=\"Bad"), "{}", refused.body);
    // The case is the CLI's too: one core.
    let listed = ok(&home, &["--json", "case", "list"]);
    assert!(listed.contains("alert(1)"), "{listed}");

    // No change by GET; "Lock" forgets the home.
    assert_eq!(page.get(&cookie, "/lock").status, 405);
    assert_eq!(page.post(&cookie, "/lock", "").status, 303);
    let relocked = page.get(&cookie, "/");
    assert!(relocked.body.contains("Passphrase"), "{}", relocked.body);
    assert_eq!(page.get(&cookie, &at).status, 401, "locked: no case");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_locks_itself_after_a_spell_without_use() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    // A spell of a second and a half.
    let page = Page::start(&home, &["--lock-after", "0.025"]);
    let cookie = page.sign_in();
    let body = format!("passphrase={}", form(PASS));
    assert_eq!(page.post(&cookie, "/unlock", &body).status, 303);
    assert!(page.get(&cookie, "/").body.contains("New case"));
    // Waits for the lock, however long the machine takes to get there.
    // Each look counts as use, so each waits longer than the spell.
    let mut locked = false;
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_secs(3));
        if page.get(&cookie, "/").body.contains("Passphrase") {
            locked = true;
            break;
        }
    }
    assert!(locked, "the page never locked");
}

#[test]
fn only_a_loopback_address_is_listened_on() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    let out = run(&home, &["ui", "--no-browser", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("served to this machine only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_is_written_edited_and_signed_from_the_page() {
    let (page, home, _kept) = started().await;
    let cookie = page.sign_in();
    assert_eq!(
        page.post(&cookie, "/unlock", &format!("passphrase={}", form(PASS)))
            .status,
        303
    );
    let case = page.new_case(&cookie, "Jordan Avery");
    assert!(page.get(&cookie, &case).body.contains("New note"));

    // The format's own sections, each labelled.
    let blank = page.get(&cookie, &format!("{case}/notes/new"));
    for label in [
        "Format",
        "Date",
        "Subjective",
        "Objective",
        "Assessment",
        "Plan",
        "Risk",
        "Save",
    ] {
        assert!(blank.body.contains(label), "{label}: {}", blank.body);
    }
    let dap = page.get(&cookie, &format!("{case}/notes/new?format=dap"));
    assert!(dap.body.contains(">Data<"), "{}", dap.body);

    // A refused save keeps every word typed.
    let refused = page.post(
        &cookie,
        &format!("{case}/notes"),
        "format=soap&date=2026-11-20&duration=an+hour&f_plan=Keep+a+sleep+diary",
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("Keep a sleep diary"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("an hour"), "{}", refused.body);

    let saved = page.post(
        &cookie,
        &format!("{case}/notes"),
        "format=soap&date=2026-11-20&duration=50&f_subjective=Slept+badly.&f_plan=Keep+a+sleep+diary",
    );
    assert_eq!(saved.status, 303, "{saved:?}");
    let note = saved.header("location").unwrap().to_string();
    let shown = page.get(&cookie, &note);
    for said in ["Slept badly.", "50 minutes", "Save", "Sign"] {
        assert!(shown.body.contains(said), "{said}: {}", shown.body);
    }
    let edited = page.post(
        &cookie,
        &note,
        "format=soap&f_subjective=Slept+badly+all+week.&f_plan=Keep+a+sleep+diary",
    );
    assert_eq!(edited.status, 303, "{edited:?}");

    // Choosing another format keeps what was typed, and shows what the
    // new one has no section for.
    let switched = page.post(
        &cookie,
        &format!("{case}/notes/new"),
        "format=dap&date=2026-11-21&f_subjective=Anxious+on+waking.&f_plan=Walk+daily.",
    );
    assert_eq!(switched.status, 200, "{switched:?}");
    for kept in [">Data<", "Walk daily.", "Anxious on waking.", "2026-11-21"] {
        assert!(switched.body.contains(kept), "{kept}: {}", switched.body);
    }

    // Locked while writing: nothing saved, nothing typed thrown away.
    assert_eq!(page.post(&cookie, "/lock", "").status, 303);
    let late = page.post(
        &cookie,
        &note,
        "format=soap&f_subjective=Written+while+it+locked.",
    );
    assert_eq!(late.status, 401, "{late:?}");
    assert!(
        late.body.contains("Written while it locked."),
        "{}",
        late.body
    );
    assert!(late.body.contains("Nothing was saved"), "{}", late.body);
    assert_eq!(
        page.post(&cookie, "/unlock", &format!("passphrase={}", form(PASS)))
            .status,
        303
    );

    // "Sign" saves what the form holds, then signs it.
    let signed_as_seen = page.post(
        &cookie,
        &format!("{note}/sign"),
        "format=soap&f_subjective=Slept+badly+all+week.&f_plan=Keep+a+sleep+diary+nightly.",
    );
    assert_eq!(signed_as_seen.status, 303, "{signed_as_seen:?}");

    // Signed: shown as signed, no longer a form; an addendum is added.
    assert_eq!(
        page.post(&cookie, &format!("{note}/sign"), "").status,
        400,
        "signed already"
    );
    let signed = page.get(&cookie, &note);
    assert!(
        signed.body.contains("Keep a sleep diary nightly."),
        "{}",
        signed.body
    );
    assert!(
        signed.body.contains("Signed by Dr. Rivera"),
        "{}",
        signed.body
    );
    assert!(signed.body.contains("Slept badly all week."));
    assert!(
        !signed.body.contains("name=\"f_subjective\""),
        "no longer editable"
    );
    assert_eq!(
        page.post(
            &cookie,
            &format!("{note}/addenda"),
            "text=Called+back+on+Friday."
        )
        .status,
        303
    );
    assert!(
        page.get(&cookie, &note)
            .body
            .contains("Called back on Friday.")
    );

    // Found by search, posted (what is looked for stays out of the URL);
    // psychotherapy notes only when asked for, and marked.
    let case_id = case.trim_start_matches("/cases/");
    ok(
        &home,
        &["private", "add", case_id, "--text", "Sleep and old grief."],
    );
    let found = page.post(&cookie, "/search", "q=sleep");
    assert_eq!(found.status, 200, "{found:?}");
    assert!(found.body.contains(&note), "{}", found.body);
    assert!(!found.body.contains("old grief"), "{}", found.body);
    let with_private = page.post(&cookie, "/search", "q=sleep&private=on");
    assert!(
        with_private.body.contains("old grief") && with_private.body.contains("psychotherapy note"),
        "{}",
        with_private.body
    );
    let trail = ok(&home, &["audit"]);
    assert!(trail.contains("search results shown"), "{trail}");

    // The same note, through the CLI: one core.
    let note_id = note.rsplit('/').next().unwrap();
    let cli = ok(&home, &["note", "show", case_id, note_id]);
    assert!(
        cli.contains("Slept badly all week.") && cli.contains("Called back on Friday."),
        "{cli}"
    );
    assert!(cli.contains("signed by Dr. Rivera"), "{cli}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_syncs_in_the_background_both_ways() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet) = (dir.path().join("laptop"), dir.path().join("tablet"));
    let args = init_args(&relay, "Dr. Rivera");
    let init = run(
        &laptop,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(init.status.success());
    let words = shown_words(&init.stderr);
    // A second device of the account: the tablet, recovered from the words.
    let recovered = casebook(&tablet)
        .env("CASEBOOK_RECOVERY_WORDS", &words)
        .args(["recover", "--name", "Dr. Rivera", "--device-name", "tablet"])
        .args(&args[3..])
        .output()
        .unwrap();
    assert!(recovered.status.success(), "{recovered:?}");

    let page = Page::start(&laptop, &[]);
    let cookie = page.sign_in();
    let unlock = format!("passphrase={}", form(PASS));
    assert_eq!(page.post(&cookie, "/unlock", &unlock).status, 303);
    let case = page.new_case(&cookie, "Jordan Avery");
    let case_id = case.trim_start_matches("/cases/").to_string();

    // Sent without a sync of the page's own asking.
    eventually("the case reaching the tablet", || {
        ok(&tablet, &["sync"]);
        ok(&tablet, &["case", "list"]).contains("Jordan Avery")
    });
    // Taken in while the page is open.
    let note = ok(
        &tablet,
        &[
            "note",
            "add",
            &case_id,
            "--format",
            "free",
            "--field",
            "text=Seen on the tablet.",
        ],
    )
    .trim()
    .to_string();
    ok(&tablet, &["sync"]);
    let at = format!("{case}/notes/{note}");
    eventually("the tablet's note reaching the page", || {
        page.get(&cookie, &at).body.contains("Seen on the tablet.")
    });
    let shown = page.get(&cookie, "/");
    assert!(shown.body.contains("Connected"), "{}", shown.body);
    assert!(shown.body.contains("· 0 unsent"), "{}", shown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psychotherapy_notes_are_on_their_own_tab_and_found_only_when_asked() {
    let (page, home, _kept) = started().await;
    let cookie = page.unlocked();
    let case = page.new_case(&cookie, "Jordan Avery");
    let private = format!("{case}/private");
    assert!(page.get(&cookie, &case).body.contains(&private));
    let added = page.post(&cookie, &private, "text=Countertransference%3A+impatience.");
    assert_eq!(added.status, 303, "{added:?}");

    let tab = page.get(&cookie, &private).body;
    assert!(tab.contains("Countertransference: impatience."), "{tab}");
    assert!(tab.contains("Private: kept apart from the record"), "{tab}");
    let record = page.get(&cookie, &case).body;
    assert!(!record.contains("Countertransference"), "{record}");

    let plain = page.post(&cookie, "/search", "q=impatience").body;
    assert!(plain.contains("Nothing found."), "{plain}");
    let asked = page
        .post(&cookie, "/search", "q=impatience&private=on")
        .body;
    assert!(asked.contains("psychotherapy note"), "{asked}");
    assert!(asked.contains(&format!("href=\"{private}\"")), "{asked}");

    // Locked while writing one: nothing saved, nothing thrown away.
    assert_eq!(page.post(&cookie, "/lock", "").status, 303);
    let late = page.post(&cookie, &private, "text=Felt+protective.");
    assert_eq!(late.status, 401);
    assert!(late.body.contains("Felt protective."), "{}", late.body);

    // Opening the tab is on the audit trail.
    drop(page);
    let trail = ok(&home, &["audit"]);
    assert!(trail.contains("psychotherapy notes viewed"), "{trail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_changed_elsewhere_while_typed_is_not_signed_unread() {
    let (page, home, _kept) = started().await;
    let cookie = page.unlocked();
    let case = page.new_case(&cookie, "Jordan Avery");
    let note = page
        .post(
            &cookie,
            &format!("{case}/notes"),
            "format=soap&date=2026-11-20&f_subjective=Slept+badly.&f_plan=Diary.",
        )
        .header("location")
        .unwrap()
        .to_string();
    let drawn = page.get(&cookie, &note).body;
    let heads = hidden(&drawn, "heads");
    // Meanwhile, from the terminal: the plan.
    let (case_id, note_id) = (
        case.trim_start_matches("/cases/"),
        note.rsplit('/').next().unwrap(),
    );
    ok(
        &home,
        &[
            "note",
            "edit",
            case_id,
            note_id,
            "--field",
            "plan=Diary; review in two weeks.",
        ],
    );

    // "Sign" on the form drawn before: saved with the other words, not signed.
    let form_body = format!(
        "format=soap&heads={}&date=2026-11-20&f_subjective=Slept+badly+all+week.&f_plan=Diary.",
        form(&heads)
    );
    let refused = page.post(&cookie, &format!("{note}/sign"), &form_body);
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("Another device changed this note"),
        "{}",
        refused.body
    );
    for both in ["Slept badly all week.", "Diary; review in two weeks."] {
        assert!(refused.body.contains(both), "{both}: {}", refused.body);
    }
    assert!(!refused.body.contains("Signed by"), "{}", refused.body);
    // The same form sent again changes nothing twice, and still signs nothing.
    let again = page.post(&cookie, &format!("{note}/sign"), &form_body);
    assert_eq!(again.status, 400);
    let shown = ok(&home, &["note", "show", case_id, note_id]);
    assert_eq!(shown.matches("all week").count(), 1, "{shown}");

    // Read, then signed from the page as it now reads.
    let now = page.get(&cookie, &note).body;
    let heads = hidden(&now, "heads");
    let signed = page.post(
        &cookie,
        &format!("{note}/sign"),
        &format!(
            "format=soap&heads={}&date=2026-11-20&f_subjective=Slept+badly+all+week.&f_plan={}",
            form(&heads),
            form("Diary; review in two weeks.")
        ),
    );
    assert_eq!(signed.status, 303, "{signed:?}");
    assert!(
        page.get(&cookie, &note)
            .body
            .contains("Signed by Dr. Rivera")
    );
}

/// A search that finds more than the page shows draws the best 100, the
/// best first, and says how many there were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_shows_the_best_hundred_and_says_how_many_there_were() {
    let (page, _, _kept) = started().await;
    let cookie = page.unlocked();
    let case = page.new_case(&cookie, "Jordan Avery");
    for day in 0..104 {
        let made = page.post(
            &cookie,
            &format!("{case}/notes"),
            &format!(
                "format=soap&date=2026-{:02}-{:02}&f_plan=Sleep%3A+a+diary+{day}",
                1 + day / 28,
                1 + day % 28
            ),
        );
        assert_eq!(made.status, 303, "{made:?}");
    }
    // One note holds the phrase: it comes first.
    let made = page.post(
        &cookie,
        &format!("{case}/notes"),
        "format=soap&date=2026-11-02&f_plan=Keep+the+sleep+diary",
    );
    let best = made.header("location").unwrap().to_string();
    let found = page.post(&cookie, "/search", "q=sleep+diary").body;
    assert!(found.contains("The best 100 of 105 matches"), "{found}");
    assert_eq!(found.matches("<li>").count(), 100, "{found}");
    let first = found.split("<li>").nth(1).unwrap();
    assert!(first.contains(&best), "the phrase first: {first}");
}
