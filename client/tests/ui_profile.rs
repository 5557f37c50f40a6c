//! A case's profile edited from the page: the client renamed, a field set,
//! another field changed meanwhile in the CLI left as the CLI wrote it (the
//! form only writes what the person changed since it was drawn), and a
//! refused save showing every word again.

mod common;

use common::page::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_is_edited_from_the_page_without_undoing_another_edit() {
    let (page, home, _kept) = started().await;
    let cookie = page.unlocked();
    let case = page.new_case(&cookie, "Jordan Avery");
    let case_id = case.trim_start_matches("/cases/");
    assert!(page.get(&cookie, &case).body.contains("Edit profile"));
    let drawn = page.get(&cookie, &format!("{case}/profile")).body;
    let heads = hidden(&drawn, "heads");

    // Meanwhile, from the terminal: the goals.
    ok(
        &home,
        &[
            "case",
            "edit",
            case_id,
            "--field",
            "goals=Sleep through the night.",
        ],
    );

    // The form drawn before saves its own change; the goals stay.
    let saved = page.post(
        &cookie,
        &format!("{case}/profile"),
        &format!(
            "heads={}&drawn_name=Jordan+Avery&client_name=Jordan+A.+Avery&presenting_concerns=Insomnia.&treatment_plan=&goals=",
            form(&heads)
        ),
    );
    assert_eq!(saved.status, 303, "{saved:?}");
    let shown = page.get(&cookie, &case).body;
    for said in ["Jordan A. Avery", "Insomnia.", "Sleep through the night."] {
        assert!(shown.contains(said), "{said}: {shown}");
    }

    // An empty name is refused, the typed words shown again.
    let refused = page.post(
        &cookie,
        &format!("{case}/profile"),
        &format!(
            "heads={}&drawn_name=Jordan+A.+Avery&client_name=+&presenting_concerns=Insomnia+and+worry.",
            form(&hidden(&page.get(&cookie, &format!("{case}/profile")).body, "heads"))
        ),
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("Insomnia and worry."),
        "{}",
        refused.body
    );
}
