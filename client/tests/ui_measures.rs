//! Outcome measures from the page and the CLI: scores entered on session
//! notes, checked, kept when refused, and drawn over time on the case page
//! with PHQ-9's cut-offs; the CLI reads the same scores back.

mod common;

use common::page::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_entered_on_notes_are_drawn_over_time() {
    let (page, home, setup) = started().await;
    let cookie = page.unlocked();
    let case = page.new_case(&cookie, "Jordan Avery");

    // The form offers PHQ-9 and GAD-7, each labelled with its range.
    let blank = page.get(&cookie, &format!("{case}/notes/new"));
    for label in [
        "Outcome measures",
        "PHQ-9 (0–27)",
        "GAD-7 (0–21)",
        "Another measure",
    ] {
        assert!(blank.body.contains(label), "{label}: {}", blank.body);
    }

    // Out of range: refused, and every score and word typed comes back.
    let refused = page.post(
        &cookie,
        &format!("{case}/notes"),
        "format=soap&date=2026-10-01&f_subjective=Low+mood.&s_PHQ-9=31&s_GAD-7=12",
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    for kept in ["Low mood.", "value=\"31\"", "value=\"12\"", "0 to 27"] {
        assert!(refused.body.contains(kept), "{kept}: {}", refused.body);
    }

    let mut notes = Vec::new();
    for (date, phq, gad) in [
        ("2026-10-01", 19, 12),
        ("2026-10-15", 14, 9),
        ("2026-11-12", 8, 6),
    ] {
        let saved = page.post(
            &cookie,
            &format!("{case}/notes"),
            &format!("format=soap&date={date}&f_subjective=Seen.&s_PHQ-9={phq}&s_GAD-7={gad}"),
        );
        assert_eq!(saved.status, 303, "{saved:?}");
        notes.push(saved.header("location").unwrap().to_string());
    }
    // A measure of the therapist's own, named on the note, then changed.
    let own = page.post(
        &cookie,
        &notes[2],
        "format=soap&f_subjective=Seen.&s_PHQ-9=8&s_GAD-7=6&new_measure=Sleep+hours&new_score=5.5",
    );
    assert_eq!(own.status, 303, "{own:?}");
    let shown = page.get(&cookie, &notes[2]);
    assert!(shown.body.contains("value=\"5.5\""), "{}", shown.body);
    assert_eq!(
        page.post(&cookie, &format!("{}/sign", notes[2]), "").status,
        303
    );
    let signed = page.get(&cookie, &notes[2]);
    assert!(signed.body.contains("PHQ-9: 8 (mild)"), "{}", signed.body);

    let case_page = page.get(&cookie, &case).body;
    assert_eq!(case_page.matches("<svg").count(), 3, "{case_page}");
    for drawn in [
        "PHQ-9 over 3 session(s): 19 on 2026-10-01, 14 on 2026-10-15, 8 on 2026-11-12",
        "GAD-7 over 3 session(s)",
        "Sleep hours over 1 session(s): 5.5 on 2026-11-12",
        "10 moderate",
        "15 moderately severe",
        "moderately severe</td>",
    ] {
        assert!(case_page.contains(drawn), "{drawn}: {case_page}");
    }

    // The CLI reads the same scores, and checks them as the page does.
    drop(page);
    let out = ok(&home, &["case", "scores", "Jordan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let phq = &v["measures"][0];
    assert_eq!(phq["measure"], "PHQ-9");
    let values: Vec<f64> = phq["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [19.0, 14.0, 8.0]);
    let text = ok(&home, &["case", "scores", "Jordan"]);
    assert!(text.contains("2026-11-12       8 (mild)  signed"), "{text}");
    fails(
        &home,
        &["note", "add", "Jordan", "--score", "gad7=22"],
        "a GAD-7 total is a whole number from 0 to 21",
    );
    fails(
        &home,
        &["note", "add", "Jordan", "--score", "12"],
        "write it as MEASURE=SCORE",
    );
    ok(
        &home,
        &[
            "note",
            "add",
            "Jordan",
            "--date",
            "2026-11-26",
            "--score",
            "phq 9=5",
        ],
    );
    let shown = ok(&home, &["case", "scores", "Jordan"]);
    assert!(
        shown.contains("2026-11-26       5 (mild)  draft"),
        "{shown}"
    );

    // An export carries the scores, with their bands; a disclosure of the
    // plan alone does not.
    let fhir = setup.dir.path().join("record.json");
    ok(
        &home,
        &["export", "Jordan", "--fhir", fhir.to_str().unwrap()],
    );
    let record = std::fs::read_to_string(&fhir).unwrap();
    assert!(record.contains("PHQ-9: 19 (moderately severe)"), "{record}");
    assert!(record.contains("Sleep hours: 5.5"), "{record}");
    let plan = setup.dir.path().join("plan.json");
    ok(
        &home,
        &[
            "export",
            "Jordan",
            "--fhir",
            plan.to_str().unwrap(),
            "--sections",
            "plan",
        ],
    );
    assert!(!std::fs::read_to_string(&plan).unwrap().contains("PHQ-9"));
}
