//! The record leaving the device. `casebook export`: a records request and
//! a narrowed disclosure, read back as a person and another system would
//! (the PDF through `pdftotext`, the FHIR bundle as JSON), each export
//! audited once. `casebook backup`: made, checked, refused when damaged,
//! restored.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// The PDF's text, through poppler's `pdftotext`; `None` (said loudly)
/// where it is not installed outside CI. CI installs it.
fn pdf_text(path: &Path) -> Option<String> {
    match std::process::Command::new("pdftotext")
        .args(["-layout".as_ref(), path.as_os_str(), "-".as_ref()])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("pdftotext is missing in CI: .ci/run installs poppler-utils")
        }
        Err(_) => {
            eprintln!("SKIPPED: pdftotext is not installed; the PDF's text was not read back");
            None
        }
    }
}

/// Checks a bundle with a FHIR validator (the `fhir.resources` R4B models;
/// CI installs them where `CASEBOOK_FHIR_PYTHONPATH` says). Skipped, said
/// loudly, where they are not installed outside CI.
fn fhir_validates(path: &Path) {
    let mut cmd = std::process::Command::new("python3");
    cmd.args([
        "-c",
        "import sys\nfrom fhir.resources.R4B.bundle import Bundle\nBundle.model_validate_json(open(sys.argv[1]).read())",
    ])
    .arg(path);
    if let Ok(p) = std::env::var("CASEBOOK_FHIR_PYTHONPATH") {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output();
    let said = out
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        .unwrap_or_default();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(_) if !said.contains("ModuleNotFoundError") => {
            panic!("the FHIR validator refuses {}: {said}", path.display())
        }
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the FHIR validator is missing in CI: .ci/run installs fhir.resources")
        }
        _ => eprintln!("SKIPPED: fhir.resources is not installed; the bundle was not validated"),
    }
}

/// Every `reference` in the bundle names an entry's `fullUrl`.
fn references_resolve(bundle: &Value) {
    let urls: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    out.push(r);
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(bundle, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(urls.contains(&r), "{r} names no entry");
    }
}

/// The session-note compositions of a bundle.
fn note_compositions(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| {
            r["resourceType"] == "Composition" && r["type"]["coding"][0]["code"] == "11506-3"
        })
        .collect()
}

fn exports_audited(home: &Path) -> usize {
    let trail: Value =
        serde_json::from_str(&ok(home, &["--json", "audit", "--limit", "1000"])).unwrap();
    trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["what"].as_str().unwrap().starts_with("case exported"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_exports_whole_or_narrowed_audited_and_disclosed() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    ok(
        &home,
        &[
            "case",
            "edit",
            &case,
            "--field",
            "presenting_concerns=Insomnia <since> spring & \"worry\"",
        ],
    );
    let mut notes = Vec::new();
    for (date, subjective, plan) in [
        ("2026-10-02", "Sleeps four hours.", "Begin a sleep diary."),
        ("2026-10-16", "Diary kept most nights.", "Stimulus control."),
        ("2026-10-30", "Sleeping six hours.", "Taper sessions."),
    ] {
        let n = ok(
            &home,
            &[
                "note",
                "add",
                &case,
                "--date",
                date,
                "--field",
                &format!("subjective={subjective}"),
                "--field",
                &format!("plan={plan}"),
            ],
        );
        notes.push(n.trim().to_string());
    }
    ok(&home, &["note", "sign", &case, &notes[0]]);
    ok(
        &home,
        &[
            "note",
            "addendum",
            &case,
            &notes[0],
            "--text",
            "Diary sheet given.",
        ],
    );
    ok(
        &home,
        &[
            "private",
            "add",
            &case,
            "--text",
            "Countertransference: impatience.",
        ],
    );

    // A records request: every note, no psychotherapy note, said so.
    let (pdf, fhir) = (
        dir.path().join("record.pdf"),
        dir.path().join("record.json"),
    );
    let out = run(
        &home,
        &[
            "export",
            "Jordan",
            "--pdf",
            pdf.to_str().unwrap(),
            "--fhir",
            fhir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Psychotherapy notes left out"));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    if let Some(text) = pdf_text(&pdf) {
        for needle in [
            "Clinical record: Jordan Avery",
            "Insomnia <since> spring & \"worry\"",
            "Begin a sleep diary.",
            "Stimulus control.",
            "Taper sessions.",
            "Diary sheet given.",
            "signed by Dr. Rivera",
            "exported",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        assert!(!text.contains("Countertransference"), "{text}");
        // Date order, as written.
        let at = |s: &str| text.find(s).unwrap();
        assert!(at("Begin a sleep diary.") < at("Stimulus control."));
        assert!(at("Stimulus control.") < at("Taper sessions."));
    }
    let bundle: Value = serde_json::from_slice(&std::fs::read(&fhir).unwrap()).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "document");
    assert_eq!(
        bundle["entry"][0]["resource"]["resourceType"],
        "Composition"
    );
    references_resolve(&bundle);
    fhir_validates(&fhir);
    let composed = note_compositions(&bundle);
    assert_eq!(composed.len(), 3);
    let first = composed.iter().find(|c| c["date"] == "2026-10-02").unwrap();
    assert_eq!(first["status"], "final", "signed");
    assert_eq!(first["attester"][0]["mode"], "legal");
    let plan = first["section"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "18776-5")
        .expect("the plan, LOINC-coded");
    assert!(
        plan["text"]["div"]
            .as_str()
            .unwrap()
            .contains("Begin a sleep diary.")
    );
    let profile = bundle["entry"][0]["resource"]["section"].to_string();
    assert!(
        profile.contains("Insomnia &lt;since&gt; spring &amp;"),
        "{profile}"
    );
    assert!(!bundle.to_string().contains("Countertransference"));

    // With the psychotherapy notes, deliberately.
    let whole = dir.path().join("whole.pdf");
    let out = run(
        &home,
        &[
            "export",
            &case,
            "--pdf",
            whole.to_str().unwrap(),
            "--include-private",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("INCLUDED"));
    if let Some(text) = pdf_text(&whole) {
        assert!(text.contains("Countertransference: impatience."), "{text}");
    }

    // A disclosure of the minimum necessary: one note's plan, to an insurer.
    let part = dir.path().join("part.json");
    let answer: Value = serde_json::from_str(&ok(
        &home,
        &[
            "--json",
            "export",
            &case,
            "--fhir",
            part.to_str().unwrap(),
            "--notes",
            &notes[1][..6],
            "--sections",
            "plan",
            "--to",
            "Acme Health Plan",
            "--purpose",
            "claim review",
            "--consent",
            "signed authorization 2026-10-20",
        ],
    ))
    .unwrap();
    assert_eq!(answer["action"], "case.exported");
    assert_eq!(answer["notes"], serde_json::json!([notes[1]]));
    let narrowed: Value = serde_json::from_slice(&std::fs::read(&part).unwrap()).unwrap();
    fhir_validates(&part);
    let composed = note_compositions(&narrowed);
    assert_eq!(composed.len(), 1);
    let text = narrowed.to_string();
    assert!(text.contains("Stimulus control."));
    for absent in [
        "Diary kept most nights.",
        "Begin a sleep diary.",
        "Insomnia",
    ] {
        assert!(!text.contains(absent), "{absent} was not asked for");
    }
    let disclosures: Value = serde_json::from_str(&ok(&home, &["--json", "disclosures"])).unwrap();
    let d = &disclosures.as_array().unwrap()[0];
    assert_eq!(d["kind"], "export");
    assert_eq!(d["recipient"], "Acme Health Plan");
    assert!(d["account"].is_null());
    assert_eq!(d["purpose"], "claim review");
    assert_eq!(d["notes"], serde_json::json!([notes[1]]));
    assert_eq!(
        disclosures.as_array().unwrap().len(),
        1,
        "only the disclosure"
    );
    assert_eq!(exports_audited(&home), 3, "each export once");

    // A taken file name is refused before anything is read or recorded.
    fails(
        &home,
        &["export", &case, "--pdf", pdf.to_str().unwrap()],
        "never writes over",
    );
    fails(&home, &["export", &case], "--pdf");
    fails(
        &home,
        &[
            "export",
            &case,
            "--fhir",
            dir.path().join("x.json").to_str().unwrap(),
            "--sections",
            "gossip",
        ],
        "no section named",
    );
    assert!(!dir.path().join("x.json").exists());
    fails(
        &home,
        &[
            "export",
            &case,
            "--fhir",
            dir.path().join("y.json").to_str().unwrap(),
            "--include-private",
            "--sections",
            "plan",
        ],
        "cannot be narrowed",
    );
    // The words of the command line are the CLI's hint, not the library's.
    fails(
        &home,
        &[
            "export",
            &case,
            "--fhir",
            dir.path().join("y.json").to_str().unwrap(),
            "--include-private",
            "--notes",
            "1",
        ],
        "another with --include-private and dates only",
    );
    fails(
        &home,
        &[
            "export",
            &case,
            "--fhir",
            dir.path().join("z.json").to_str().unwrap(),
            "--since",
            "2026-12-01",
            "--until",
            "2026-01-01",
        ],
        "give --since a date on or before --until",
    );
    assert_eq!(exports_audited(&home), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_made_checked_and_restored_from_the_command_line() {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let case = new_case(&home, "Jordan Avery");
    ok(
        &home,
        &["note", "add", &case, "--field", "plan=Sleep diary."],
    );
    let file = dir.path().join("laptop.backup");
    let with_secret = |args: &[&str]| {
        casebook(&home)
            .env("CASEBOOK_BACKUP_PASSPHRASE", "kept in the safe")
            .args(args)
            .output()
            .unwrap()
    };
    let out = with_secret(&["backup", "create", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = with_secret(&["backup", "create", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("never writes over"));
    let out = with_secret(&["backup", "verify", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("whole and opens"));

    // Damaged: refused, with a code a script can read, and nothing restored.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = dir.path().join("bad.backup");
    std::fs::write(&bad, &bytes).unwrap();
    let out = with_secret(&["--json", "backup", "verify", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "backup_failed", "{err}");
    let out = casebook(&home)
        .env("CASEBOOK_BACKUP_PASSPHRASE", "a wrong guess")
        .args(["--json", "backup", "verify", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "wrong_backup_secret", "{err}");

    let fresh = dir.path().join("fresh");
    let out = casebook(&fresh)
        .env("CASEBOOK_BACKUP_PASSPHRASE", "kept in the safe")
        .args(["backup", "restore", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ok(&fresh, &["case", "list"]).contains("Jordan Avery"));
    ok(&fresh, &["sync"]);
    let trail = ok(&home, &["audit", "--limit", "100"]);
    assert!(trail.contains("backup made"), "{trail}");
}
