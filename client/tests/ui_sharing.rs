//! Sharing from the page, with a colleague on the CLI: a contact added from
//! a pasted card and verified by the number they read out, a case shared
//! with every choice spelled out, their comment coming back into the open
//! page, an unshare confirmed first; then the audit trail and the
//! accounting of disclosures filtered, and the chain verified.

mod common;

use common::page::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_shared_from_the_page_and_the_disclosure_accounted_for() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen) = (dir.path().join("rivera"), dir.path().join("chen"));
    init_at(&rivera, &relay, "Dr. Rivera");
    init_at(&chen, &relay, "Dr. Chen");
    befriend(&chen, &rivera, "Dr. Rivera");
    let theirs: serde_json::Value =
        serde_json::from_str(&ok(&chen, &["--json", "whoami"])).unwrap();
    let (card, number) = (
        theirs["card"].as_str().unwrap(),
        theirs["safety_number"].as_str().unwrap(),
    );

    let page = Page::start(&rivera, &[]);
    let cookie = page.unlocked();
    let people = page.get(&cookie, "/people").body;
    assert!(people.contains("Your safety number"), "{people}");

    // A card pasted; a wrong number refused with what was typed kept.
    let added = page.post(
        &cookie,
        "/people/contacts",
        &format!("contact_name=Dr.+Chen&card={}", form(card)),
    );
    assert_eq!(added.status, 303, "{added:?}");
    let unverified = page.get(&cookie, "/people").body;
    assert!(unverified.contains("not verified"), "{unverified}");
    assert!(
        unverified.contains(number),
        "both numbers shown: {unverified}"
    );
    let wrong = page.post(&cookie, "/people/verify", "contact=Dr.+Chen&number=12345");
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("value=\"12345\""), "{}", wrong.body);
    let bad_card = page.post(
        &cookie,
        "/people/contacts",
        "contact_name=Dr.+Ng&card=hello",
    );
    assert_eq!(bad_card.status, 400);
    assert!(bad_card.body.contains("Dr. Ng"), "{}", bad_card.body);
    let right = page.post(
        &cookie,
        "/people/verify",
        &format!("contact=Dr.+Chen&number={}", form(number)),
    );
    assert_eq!(right.status, 303, "{right:?}");

    let case = page.new_case(&cookie, "Jordan Avery");
    let case_id = case.trim_start_matches("/cases/").to_string();
    let note = page
        .post(
            &cookie,
            &format!("{case}/notes"),
            "format=soap&date=2026-11-20&f_subjective=Slept+badly.",
        )
        .header("location")
        .unwrap()
        .to_string();
    let note_id = note.rsplit('/').next().unwrap().to_string();

    // The form says every choice; leaving out the purpose is refused.
    let form_page = page.get(&cookie, &format!("{case}/share")).body;
    for said in [
        "Role",
        "Purpose",
        "Consent reference",
        "Expires",
        "Do not share the psychotherapy notes",
    ] {
        assert!(form_page.contains(said), "{said}: {form_page}");
    }
    let shared = page.post(
        &cookie,
        &format!("{case}/share"),
        "contact=Dr.+Chen&role=comment&purpose=consultation&consent=signed+release+2026-11-02&private=without",
    );
    assert_eq!(shared.status, 303, "{shared:?}");
    let case_page = page.get(&cookie, &case).body;
    assert!(case_page.contains("Dr. Chen, comment"), "{case_page}");

    // The colleague has it (sent by the page's background sync), and
    // comments.
    eventually("the share reaching the colleague", || {
        ok(&chen, &["sync"]);
        let listed = ok(&chen, &["case", "list"]);
        listed.contains("Jordan Avery") && listed.contains("shared with you by Dr. Rivera")
    });
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
    eventually("the colleague's comment reaching the page", || {
        page.get(&cookie, &note)
            .body
            .contains("Consider sleep hygiene.")
    });
    assert!(
        page.get(&cookie, &note)
            .body
            .contains("Comment by Dr. Chen")
    );

    // An unshare asks first.
    let member = case_page
        .split("name=\"with\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let asked = page.post(
        &cookie,
        &format!("{case}/unshare"),
        &format!("with={member}"),
    );
    assert!(
        asked.body.contains("Stop sharing with Dr. Chen?"),
        "{}",
        asked.body
    );
    let ended = page.post(
        &cookie,
        &format!("{case}/unshare/confirm"),
        &format!("with={member}"),
    );
    assert_eq!(ended.status, 303, "{ended:?}");
    // Sent by the page's background sync.
    eventually("the unshare reaching the colleague", || {
        ok(&chen, &["sync"]);
        ok(&chen, &["case", "list", "--all"]).contains("NO LONGER SHARED")
    });

    // The audit trail and the accounting of disclosures.
    let trail = page.get(&cookie, "/audit").body;
    assert!(trail.contains("contact Dr. Chen verified"), "{trail}");
    let this_case = page
        .get(&cookie, &format!("/audit?case={case_id}&since=&until="))
        .body;
    assert!(
        !this_case.contains("contact Dr. Chen verified"),
        "{this_case}"
    );
    assert!(this_case.contains("share revoked"), "{this_case}");
    let bad = page.get(&cookie, "/audit?since=soon").body;
    assert!(bad.contains("is not a date"), "{bad}");
    let disclosed = page.get(&cookie, "/disclosures").body;
    for said in [
        "Jordan Avery",
        "Dr. Chen (shared, comment)",
        "consultation",
        "signed release 2026-11-02",
    ] {
        assert!(disclosed.contains(said), "{said}: {disclosed}");
    }
    let none = page.get(&cookie, "/disclosures?until=2000-01-01").body;
    assert!(none.contains("No disclosures recorded."), "{none}");
    let verified = page.post(&cookie, "/audit/verify", "").body;
    assert!(verified.contains("The audit trail is intact"), "{verified}");
}
