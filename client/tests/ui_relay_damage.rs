//! What the page says when the relay serves what its device refuses: the
//! CLI's `sync` lists each refusal and exits with 3; the page, syncing in
//! the background, says so in its sync line until a sync finds nothing of
//! the kind.

mod common;

use common::damage::*;
use common::page::*;
use common::*;

/// Dr. Chen's page is open over a case Dr. Rivera shares. Someone with the
/// relay's disk flips a byte of Dr. Rivera's newest note: the page's sync
/// refuses it and the sync line says so. Put right, the next sync (set off
/// by Dr. Rivera's next note) takes both notes, and the warning goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_its_sync_refused_what_the_relay_served() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (rivera, chen, case) = shared_case(&relay, dir.path());
    note_synced(&rivera, &case, "Sleep diary.");
    let (seq, good) = flip_a_byte_of_newest(&relay, &case);

    let page = Page::start(&chen, &[]);
    let cookie = page.unlocked();
    eventually("the sync line saying what was refused", || {
        let body = page.get(&cookie, "/").body;
        body.contains("Warning: the relay served 1 thing(s) this device refused")
    });

    set_bytes(&relay, seq, &good);
    note_synced(&rivera, &case, "Breathing exercise.");
    eventually("both notes, and no warning", || {
        both_and_no_warning(&page, &cookie)
    });
}

/// Whether the page finds both of Dr. Rivera's notes and says nothing is
/// wrong.
fn both_and_no_warning(page: &Page, cookie: &str) -> bool {
    let found = |q: &str| {
        page.post(cookie, "/search", q)
            .body
            .contains("Jordan Avery")
    };
    let clear = !page.get(cookie, "/").body.contains("Warning:");
    clear && found("q=sleep+diary") && found("q=breathing+exercise")
}

/// The tablet's page is open; the relay loses the laptop's first note from
/// under its second. The page's sync takes the second, waiting for the
/// first, and the sync line names the case incomplete. Once the laptop has
/// sent the first again (asked by the tablet), the warning goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_names_a_case_its_sync_found_incomplete() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let (laptop, tablet, _) = first_lost_from_under_second(&relay, dir.path());

    let page = Page::start(&tablet, &[]);
    let cookie = page.unlocked();
    eventually("the sync line naming the case incomplete", || {
        let body = page.get(&cookie, "/").body;
        body.contains("Warning: incomplete: Jordan Avery: the relay has not served changes")
    });

    ok(&laptop, &["sync"]);
    eventually(
        "both notes, and no warning once the first is sent again",
        || {
            ok(&laptop, &["sync"]);
            both_and_no_warning(&page, &cookie)
        },
    );
}
