//! A record as a FHIR R4 document: a `Bundle` of type `document` whose
//! first entry is the `Composition` of the whole export (the profile, and a
//! section listing the notes), then the `Patient`, the `Practitioner`s, and
//! one `Composition` per session note (and per psychotherapy note when
//! asked for, marked restricted).
//!
//! SOAP sections carry their LOINC codes; other formats' sections carry
//! their titles. Ids are UUIDs derived from the case and note ids, so
//! exporting the same record twice names its parts alike. Narrative is
//! XHTML with every character of note text escaped.

use serde_json::{Value, json};

use super::{Record, title_case};
use crate::clock;
use crate::notes::{Note, PrivateEntry};

const LOINC: &str = "http://loinc.org";

/// LOINC codes of the sections that have one.
fn section_code(field: &str) -> Option<(&'static str, &'static str)> {
    Some(match field {
        "subjective" => ("61150-9", "Subjective Narrative"),
        "objective" => ("61149-1", "Objective Narrative"),
        "assessment" => ("51848-0", "Evaluation note"),
        "plan" => ("18776-5", "Plan of care note"),
        _ => return None,
    })
}

/// A stable `urn:uuid:` for a part of the record (RFC 9562 version 8: the
/// bits are ours, from a hash of what the part is).
fn uuid(record: &Record, part: &str) -> String {
    let h = casebook_shared::crypto::hash(
        "casebook/v1/export/fhir-id",
        format!("{}/{part}", record.case.to_hex()).as_bytes(),
    );
    let mut b: [u8; 16] = h.0[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// Text as XHTML narrative: escaped, paragraphs kept.
fn narrative(text: &str) -> Value {
    let mut div = String::from("<div xmlns=\"http://www.w3.org/1999/xhtml\">");
    for para in text.split('\n') {
        div.push_str("<p>");
        for c in para.chars() {
            match c {
                '<' => div.push_str("&lt;"),
                '>' => div.push_str("&gt;"),
                '&' => div.push_str("&amp;"),
                '"' => div.push_str("&quot;"),
                '\'' => div.push_str("&#39;"),
                // XML 1.0 has no place for other control characters, nor
                // for the two non-characters.
                c if (c.is_control() && c != '\t') || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                    div.push(' ')
                }
                c => div.push(c),
            }
        }
        div.push_str("</p>");
    }
    div.push_str("</div>");
    json!({ "status": "generated", "div": div })
}

fn section(field: &str, text: &str) -> Value {
    let mut s = json!({ "title": title_case(field), "text": narrative(text) });
    if let Some((code, display)) = section_code(field) {
        s["code"] = json!({ "coding": [{ "system": LOINC, "code": code, "display": display }] });
    }
    s
}

/// The people named as authors and signers, each once.
struct People<'a> {
    record: &'a Record,
    names: Vec<String>,
}

impl People<'_> {
    fn reference(&mut self, name: &str) -> Value {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
        json!({ "reference": uuid(self.record, &format!("practitioner/{name}")), "display": name })
    }
}

fn note_composition(r: &Record, n: &Note, people: &mut People, patient: &str) -> Value {
    let mut sections: Vec<Value> = Vec::new();
    let mut session = format!("Session on {}", n.date);
    if let Some(t) = &n.start_time {
        session.push_str(&format!(" at {t} (local time)"));
    }
    if let Some(d) = n.duration {
        session.push_str(&format!(", {d} minutes"));
    }
    session.push_str(&format!(", {} format.", n.format.as_str().to_uppercase()));
    if !n.edited_by.is_empty() {
        session.push_str(&format!(" Edited by {}.", n.edited_by.join(", ")));
    }
    sections.push(json!({ "title": "Session", "text": narrative(&session) }));
    sections.extend(n.fields.iter().map(|(k, v)| section(k, v)));
    if !n.scores.is_empty() {
        sections.push(section("scores", &super::scores_text(&n.scores)));
    }
    for l in &n.late_edits {
        sections.push(json!({
            "title": format!("{} (written on another device before it saw the signature; not part of the signed note)", title_case(&l.field)),
            "text": narrative(&l.merged),
        }));
    }
    for (kind, remarks) in [("Addendum", &n.addenda), ("Comment", &n.comments)] {
        for a in remarks {
            sections.push(json!({
                "title": format!("{kind} by {}, {}", a.by, a.at),
                "author": [people.reference(&a.by)],
                "text": narrative(&a.text),
            }));
        }
    }
    let signed = n.signed_by.is_some() && !n.signature_broken;
    let mut c = json!({
        "resourceType": "Composition",
        "id": id_of(&uuid(r, &format!("note/{}", n.id))),
        "identifier": { "system": "urn:ietf:rfc:3986", "value": uuid(r, &format!("note/{}", n.id)) },
        "status": if signed { "final" } else { "preliminary" },
        "type": { "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }] },
        "subject": { "reference": patient },
        // The day alone: a start time is local wall time, and FHIR
        // refuses a time without its offset.
        "date": n.date,
        "author": [people.reference(&n.created_by)],
        "title": format!("Session note {}", n.date),
        "section": sections,
    });
    if let (true, Some(by), Some(at)) = (signed, &n.signed_by, &n.signed_at) {
        c["attester"] = json!([{ "mode": "legal", "time": at, "party": people.reference(by) }]);
    }
    c
}

fn private_composition(r: &Record, e: &PrivateEntry, people: &mut People, patient: &str) -> Value {
    json!({
        "resourceType": "Composition",
        "id": id_of(&uuid(r, &format!("private/{}", e.id))),
        "status": "final",
        "type": { "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }] },
        "subject": { "reference": patient },
        "date": e.at,
        "author": [people.reference(&e.by)],
        "title": "Psychotherapy note",
        "confidentiality": "R",
        "section": [{ "title": "Psychotherapy note", "text": narrative(&e.text) }],
    })
}

/// A resource's `id`: the UUID without its `urn:uuid:`.
fn id_of(urn: &str) -> String {
    urn.trim_start_matches("urn:uuid:").to_string()
}

/// The record as a FHIR R4 document bundle.
pub fn bundle(r: &Record) -> Value {
    let patient = uuid(r, "patient");
    let mut people = People {
        record: r,
        names: Vec::new(),
    };
    let exporter = people.reference(&r.exported_by);
    let mut notes: Vec<(String, Value)> = r
        .notes
        .iter()
        .map(|n| {
            (
                uuid(r, &format!("note/{}", n.id)),
                note_composition(r, n, &mut people, &patient),
            )
        })
        .collect();
    notes.extend(r.private.iter().map(|e| {
        (
            uuid(r, &format!("private/{}", e.id)),
            private_composition(r, e, &mut people, &patient),
        )
    }));
    let mut sections: Vec<Value> = r.profile.iter().map(|(k, v)| section(k, v)).collect();
    let listed = |title: &str, entries: &[(String, Value)]| {
        json!({
            "title": title,
            "text": narrative(&format!("{} note(s).", entries.len())),
            "entry": entries.iter().map(|(u, _)| json!({ "reference": u })).collect::<Vec<_>>(),
        })
    };
    let (session, private) = notes.split_at(r.notes.len());
    if !session.is_empty() {
        sections.push(listed("Session notes", session));
    }
    if !private.is_empty() {
        sections.push(listed("Psychotherapy notes", private));
    }
    let mut about = format!("Exported by {}.", r.exported_by);
    about.push_str(if r.private_included {
        " Psychotherapy notes are included."
    } else {
        " Psychotherapy notes are not part of this export."
    });
    if r.narrowed {
        about.push_str(" A partial record.");
    }
    if let Some(to) = &r.to {
        about.push_str(&format!(
            " Disclosed to {}. Purpose: {}. Consent: {}.",
            to.name, to.purpose, to.consent
        ));
    }
    sections.insert(
        0,
        json!({ "title": "About this export", "text": narrative(&about) }),
    );
    let at = clock::rfc3339(r.exported_at);
    let document = uuid(r, &format!("export/{}", r.exported_at));
    let composition = json!({
        "resourceType": "Composition",
        "id": id_of(&document),
        "status": "final",
        "type": { "coding": [{ "system": LOINC, "code": "11503-0", "display": "Medical records" }] },
        "subject": { "reference": patient, "display": r.name },
        "date": at,
        "author": [exporter],
        "title": format!("Clinical record: {}", r.name),
        "confidentiality": if r.private_included { "R" } else { "N" },
        "section": sections,
    });
    let mut entry = vec![
        json!({ "fullUrl": document, "resource": composition }),
        json!({ "fullUrl": patient, "resource": {
            "resourceType": "Patient",
            "id": id_of(&patient),
            "name": [{ "text": r.name }],
        }}),
    ];
    for name in &people.names {
        let u = uuid(r, &format!("practitioner/{name}"));
        entry.push(json!({ "fullUrl": u, "resource": {
            "resourceType": "Practitioner",
            "id": id_of(&u),
            "name": [{ "text": name }],
        }}));
    }
    entry.extend(
        notes
            .into_iter()
            .map(|(u, c)| json!({ "fullUrl": u, "resource": c })),
    );
    json!({
        "resourceType": "Bundle",
        "id": id_of(&uuid(r, &format!("bundle/{}", r.exported_at))),
        "identifier": { "system": "urn:ietf:rfc:3986", "value": uuid(r, &format!("bundle/{}", r.exported_at)) },
        "type": "document",
        "timestamp": at,
        "entry": entry,
    })
}
