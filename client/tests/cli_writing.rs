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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_any_order_best_first_and_private_only_when_asked() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = ok(&home, &["case", "new", "Jordan Avery"])
        .trim()
        .to_string();
    let add = |fields: &[&str]| {
        let mut args = vec![
            "note",
            "add",
            &case,
            "--format",
            "soap",
            "--date",
            "2026-11-20",
        ];
        for f in fields {
            args.extend_from_slice(&["--field", f]);
        }
        ok(&home, &args).trim().to_string()
    };
    let spread = add(&["subjective=Sleeps badly.", "plan=A diary, maybe."]);
    let together = add(&["plan=Keep a sleep diary."]);
    ok(
        &home,
        &[
            "private",
            "add",
            &case,
            "--text",
            "Sleep diary shows guilt.",
        ],
    );
    let out = ok(&home, &["search", "diary sleep"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains(&together), "best first: {out}");
    assert!(lines[1].contains(&spread), "{out}");
    assert!(
        !out.contains("guilt"),
        "a psychotherapy note without --private"
    );
    let out = ok(&home, &["search", "diary sleep", "--private"]);
    assert!(out.contains("guilt"), "{out}");
}
