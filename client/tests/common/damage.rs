//! What the tests of a damaged relay share: Dr. Rivera's case shared with
//! a colleague, or held on a laptop and a tablet, and the relay's database
//! edited as someone with its disk (or an unlucky restore) would.

use rusqlite::params;

use super::*;

/// A relay, Dr. Rivera's case of Jordan Avery shared with Dr. Chen to
/// read, who has synced it once.
pub fn shared_case(
    relay: &Relay,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    shared_case_as(relay, dir, "read")
}

/// The same, shared in `role`.
pub fn shared_case_as(
    relay: &Relay,
    dir: &std::path::Path,
    role: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (rivera, chen) = (dir.join("rivera"), dir.join("chen"));
    init_at(&rivera, relay, "Dr. Rivera");
    init_at(&chen, relay, "Dr. Chen");
    let case = new_case(&rivera, "Jordan Avery");
    befriend(&rivera, &chen, "Dr. Chen");
    ok(&rivera, &share_args(&case, "Dr. Chen", role, &[]));
    ok(&chen, &["sync"]);
    (rivera, chen, case)
}

/// The relay's stored envelopes of changes of `case` (not the signals
/// members tell each other), newest first: sequence number and the row as
/// stored.
pub fn envelopes(relay: &Relay, case: &str) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let db = rusqlite::Connection::open(relay.data().join("relay.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT seq, env_id, bytes FROM envelopes WHERE doc = ?1 ORDER BY seq DESC")
        .unwrap();
    stmt.query_map([hex::decode(case).unwrap()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .filter(|(_, _, bytes): &(i64, Vec<u8>, Vec<u8>)| bytes[1] == 0)
    .collect()
}

/// Whether `home` finds `phrase` in its notes.
pub fn finds(home: &std::path::Path, phrase: &str) -> bool {
    ok(home, &["search", phrase]).contains("Jordan Avery")
}

pub fn relay_db(relay: &Relay) -> rusqlite::Connection {
    rusqlite::Connection::open(relay.data().join("relay.db")).unwrap()
}

/// Dr. Rivera adds a note whose plan is `plan`, and syncs.
pub fn note_synced(rivera: &std::path::Path, case: &str, plan: &str) {
    ok(
        rivera,
        &["note", "add", case, "--field", &format!("plan={plan}")],
    );
    ok(rivera, &["sync"]);
}

/// Flips a byte in the middle of the newest stored envelope of `case`, as
/// someone with the relay's disk would; returns its sequence number and
/// its good bytes, to put back with [`set_bytes`].
pub fn flip_a_byte_of_newest(relay: &Relay, case: &str) -> (i64, Vec<u8>) {
    let (seq, _, good) = envelopes(relay, case).remove(0);
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    set_bytes(relay, seq, &bad);
    (seq, good)
}

/// Sets the stored bytes of the envelope numbered `seq`.
pub fn set_bytes(relay: &Relay, seq: i64, bytes: &[u8]) {
    relay_db(relay)
        .execute(
            "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2",
            params![bytes, seq],
        )
        .unwrap();
}

/// Deletes the stored envelope numbered `seq`, as a relay losing it would.
pub fn lose(relay: &Relay, seq: i64) {
    relay_db(relay)
        .execute("DELETE FROM envelopes WHERE seq = ?1", [seq])
        .unwrap();
}

/// Puts a stored envelope back where it was, as whoever runs the relay
/// would from a good copy.
pub fn put_back(relay: &Relay, case: &str, (seq, env_id, bytes): (i64, Vec<u8>, Vec<u8>)) {
    relay_db(relay)
        .execute(
            "INSERT INTO envelopes(seq, doc, env_id, bytes) VALUES (?1, ?2, ?3, ?4)",
            params![seq, hex::decode(case).unwrap(), env_id, bytes],
        )
        .unwrap();
}

/// [`laptop_and_tablet`], the laptop's two notes (a sleep diary, then a
/// breathing exercise) synced, and the relay losing the first from under
/// the second before the tablet fetched either.
pub fn first_lost_from_under_second(
    relay: &Relay,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (laptop, tablet, case) = laptop_and_tablet(relay, dir);
    for plan in ["plan=Sleep diary.", "plan=Breathing exercise."] {
        ok(&laptop, &["note", "add", &case, "--field", plan]);
        ok(&laptop, &["sync"]);
    }
    let (seq, _, _) = envelopes(relay, &case).remove(1);
    lose(relay, seq);
    (laptop, tablet, case)
}

/// A relay, and Dr. Rivera's laptop and tablet (recovered from the words),
/// both holding the case of Jordan Avery.
pub fn laptop_and_tablet(
    relay: &Relay,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (laptop, tablet) = (dir.join("laptop"), dir.join("tablet"));
    let init = casebook(&laptop)
        .args(init_args(relay, "Dr. Rivera"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(init.status.success());
    let case = new_case(&laptop, "Jordan Avery");
    ok(&laptop, &["sync"]);
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    let recovered = casebook(&tablet)
        .args(["recover", "--relay", &addr, "--relay-fingerprint", &fp])
        .args(["--name", "Dr. Rivera", "--device-name", "tablet"])
        .env("CASEBOOK_RECOVERY_WORDS", shown_words(&init.stderr))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        recovered.status.success(),
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    ok(&tablet, &["sync"]);
    assert!(ok(&tablet, &["case", "list"]).contains("Jordan Avery"));
    (laptop, tablet, case)
}

/// Loses `case`'s newest change from the relay.
pub fn lose_newest(relay: &Relay, case: &str) {
    let (seq, _, _) = envelopes(relay, case).remove(0);
    lose(relay, seq);
}

/// `home`'s sync names the case INCOMPLETE (exit 4); what it printed.
pub fn names_a_gap(home: &std::path::Path) -> String {
    let out = run(home, &["sync"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("Jordan Avery (") && err.contains("is INCOMPLETE"),
        "{err}"
    );
    err
}
