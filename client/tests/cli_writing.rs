//! Writing notes from the CLI: what is refused, and said plainly.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_notes_two_lengths_and_a_second_signature_are_refused() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = ok(&home, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
    let add = |extra: &[&str]| {
        let mut args = vec![
            "note",
            "add",
            &case,
            "--format",
            "soap",
            "--date",
            "2026-11-20",
        ];
        args.extend_from_slice(extra);
        run(&home, &args)
    };
    let says = |out: std::process::Output, what: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "should fail: {what}");
        assert!(err.contains(what), "{err:?} does not say {what:?}");
        assert!(out.stdout.is_empty(), "printed before failing");
    };
    says(add(&[]), "write at least one section");
    says(add(&["--field", "plan="]), "write at least one section");
    says(
        add(&[
            "--minutes",
            "50",
            "--field",
            "duration=45",
            "--field",
            "plan=Diary.",
        ]),
        "given twice and the two disagree (50 and 45 minutes)",
    );
    // The same length twice is no disagreement.
    let note = add(&[
        "--minutes",
        "50",
        "--field",
        "duration=50",
        "--field",
        "plan=Diary.",
    ]);
    assert!(
        note.status.success(),
        "{}",
        String::from_utf8_lossy(&note.stderr)
    );
    let note = String::from_utf8(note.stdout).unwrap().trim().to_string();
    assert!(ok(&home, &["note", "list", &case]).lines().count() == 1);
    ok(&home, &["note", "sign", &case, &note]);
    says(
        run(&home, &["note", "sign", &case, &note]),
        "already signed",
    );
}
