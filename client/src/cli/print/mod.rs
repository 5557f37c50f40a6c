//! What commands print: plain text for people, or JSON with `--json`. Ids
//! are shown in hex; a unique prefix of one works wherever an id is asked for.
//! Cases, notes and search here; the account, devices, sharing and the
//! audit trail in [`account`].

mod account;
use account::{held_json, incomplete_json, shared_json, standing};
mod changed;
mod disclosures;
mod retention;

use crate::cli::term::{say, tell};
use anyhow::Result;
use casebook::Home;
use casebook::app::{CaseListed, CaseView};
use casebook::docs::Hit;
use casebook::notes::{Note, NoteSummary, PrivateEntry, Series};
use casebook::sync::SyncReport;
use casebook_shared::ids::DocId;
use serde_json::{Value, json};

use casebook::clock as time;

/// Chosen output style.
pub struct Out {
    json: bool,
}

pub(super) fn print_json(v: &Value) -> Result<()> {
    crate::cli::term::json_out(&serde_json::to_string_pretty(v)?);
    Ok(())
}

fn note_summary_json(case: &DocId, n: &NoteSummary) -> Value {
    json!({
        "id": n.id, "case": case.to_hex(), "date": n.date, "start_time": n.start_time,
        "format": n.format.as_str(), "signed": n.signed,
    })
}

pub(super) fn report_json(r: &SyncReport) -> Value {
    json!({
        "pushed": r.pushed, "received": r.received, "docs_updated": r.docs_updated,
        "snapshots_in": r.snapshots_in, "snapshots_out": r.snapshots_out,
        "left_queued": r.left_queued, "resent": r.resent,
        "rewound": r.rewound.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
        "access_healed": r.access_healed.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
        "logs_healed": r.logs_healed.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
        "logs_turned": r.logs_turned.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
        "stay_revoked": r.stay_revoked.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
        "disposals_healed": r.disposals_healed.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
        "kept_under_hold": r.kept_under_hold.iter().map(|k| json!({
            "case": k.case.to_hex(), "client": k.client, "hold": k.hold,
        })).collect::<Vec<_>>(),
        "refused": r.refused.iter().map(|x| json!({
            "doc": x.doc.to_hex(), "seq": x.seq, "reason": x.reason,
        })).collect::<Vec<_>>(),
        "logs_refused": r.logs_refused.iter().map(|x| json!({
            "account": x.account.to_hex(), "reason": x.reason,
        })).collect::<Vec<_>>(),
        "held": r.held.iter().map(held_json).collect::<Vec<_>>(),
        "incomplete": r.incomplete.iter().map(incomplete_json).collect::<Vec<_>>(),
    })
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    /// A new home: this device, in an account that `action` made
    /// ("account.created") or joined ("device.joined", "device.recovered").
    pub fn init(&self, home: &Home, action: &str) -> Result<()> {
        let (relay, _) = home.relay();
        if self.json {
            return self
                .changed(action, home.device_id().to_hex())
                .with("account", home.account_id().to_hex())
                .with("home", home.dir().display().to_string())
                .with("relay", relay)
                .done("");
        }
        say!("account {}", home.account_id().to_hex());
        say!("device  {}", home.device_id().to_hex());
        Ok(())
    }

    pub fn cases(&self, cases: &[CaseListed]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                cases
                    .iter()
                    .map(|c| {
                        let s = &c.summary;
                        json!({
                            "id": c.id.to_hex(), "name": s.name, "created_date": s.created,
                            "closed": s.closed, "notes": s.notes.len(),
                            "last_session_date": s.notes.iter().map(|n| n.date.clone()).max(),
                            "legal_hold": s.legal_hold,
                            "shared_with_me": c.shared.as_ref().map(shared_json),
                        })
                    })
                    .collect(),
            ));
        }
        if cases.is_empty() {
            tell!("no cases yet: `casebook case new NAME` opens one");
        }
        for c in cases {
            let s = &c.summary;
            let last = s.notes.iter().map(|n| n.date.as_str()).max().unwrap_or("-");
            let mut marks = String::new();
            if s.closed {
                marks.push_str("  (closed)");
            }
            if s.legal_hold.is_some() {
                marks.push_str("  (legal hold)");
            }
            if let Some(shared) = &c.shared {
                marks.push_str(&format!("  ({})", standing(shared)));
            }
            say!(
                "{}  {:<28}  {:>3} {}  last {}{}",
                c.id.short(),
                s.name,
                s.notes.len(),
                if s.notes.len() == 1 { "note " } else { "notes" },
                last,
                marks
            );
        }
        Ok(())
    }

    pub fn case(&self, view: &CaseView) -> Result<()> {
        let CaseView {
            id,
            summary: s,
            profile,
            notes,
            shared,
        } = view;
        if self.json {
            return print_json(&json!({
                "id": id.to_hex(), "name": s.name, "created_date": s.created,
                "closed": s.closed, "legal_hold": s.legal_hold, "profile": profile,
                "notes": notes, "shared_with_me": shared.as_ref().map(shared_json),
            }));
        }
        say!("{}  (case {}, opened {})", s.name, id.to_hex(), s.created);
        if let Some(shared) = shared {
            say!("{}", standing(shared));
        }
        if let Some(reason) = &s.legal_hold {
            say!("under a legal hold: {reason}");
        }
        for (k, v) in profile.fields() {
            if !v.is_empty() {
                say!("{k}: {v}");
            }
        }
        say!();
        for n in notes {
            let signed = match (n.is_signed(), n.late_edits.is_empty()) {
                (false, _) => "draft",
                (true, true) => "signed",
                (true, false) => "signed; a late edit to settle",
            };
            say!("{}  {}  {:<5} {}", n.id, n.date, n.format.as_str(), signed);
        }
        Ok(())
    }

    pub fn note_list(&self, case: &DocId, notes: &[NoteSummary]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                notes.iter().map(|n| note_summary_json(case, n)).collect(),
            ));
        }
        for n in notes {
            let signed = if n.signed { "signed" } else { "draft" };
            say!(
                "{}  {} {}  {:<5} {}",
                n.id,
                n.date,
                n.start_time.as_deref().unwrap_or("     "),
                n.format.as_str(),
                signed
            );
        }
        Ok(())
    }

    pub fn note(&self, case: &DocId, n: &Note) -> Result<()> {
        if self.json {
            let mut v = serde_json::to_value(n)?;
            v["case"] = case.to_hex().into();
            return print_json(&v);
        }
        say!("note {}  {}  {}", n.id, n.date, n.format.as_str());
        if let Some(t) = &n.start_time {
            say!("start {t}");
        }
        if let Some(d) = n.duration {
            say!("{d} minutes");
        }
        say!(
            "by {}{}",
            n.created_by,
            if n.creator_unverified {
                " (UNVERIFIED: written or altered by a device this one cannot vouch for)"
            } else {
                ""
            }
        );
        if !n.edited_by.is_empty() {
            say!("edited by {}", n.edited_by.join(", "));
        }
        if let (Some(by), Some(at)) = (&n.signed_by, &n.signed_at) {
            let when = time::local_text(at);
            match &n.signed_as {
                Some(was) => say!("signed by {by} (signed as {was:?}) at {when}"),
                None => say!("signed by {by} at {when}"),
            }
        }
        for (k, v) in &n.fields {
            if !v.is_empty() {
                say!("\n## {k}\n{}", body(v));
            }
        }
        if !n.scores.is_empty() {
            say!("\n## scores");
            for (m, v) in &n.scores {
                say!("{m}: {v}{}", band_text(m, v));
            }
        }
        if n.signature_broken {
            say!(
                "WARNING: this signature cannot be relied on: the content does not match what was signed, or its signer is not one this device can vouch for"
            );
        }
        for a in &n.addenda {
            say!(
                "\n## addendum ({}, {}{})\n{}",
                a.by,
                time::local_text(&a.at),
                unverified(a),
                body(&a.text)
            );
        }
        for l in &n.late_edits {
            say!(
                "\n## {} — written on another device before it saw the signature (not part of the signed note)\n{}",
                l.field,
                body(&l.merged)
            );
        }
        for c in &n.comments {
            say!(
                "\n## comment ({}, {}{})\n{}",
                c.by,
                time::local_text(&c.at),
                unverified(c),
                body(&c.text)
            );
        }
        Ok(())
    }

    /// Each measure's scores over a case, one session a line.
    pub fn scores(&self, case: &DocId, series: &[Series]) -> Result<()> {
        if self.json {
            return print_json(&json!({ "case": case.to_hex(), "measures": series }));
        }
        if series.is_empty() {
            say!(
                "no scores yet: add one to a note with --score MEASURE=SCORE, e.g. --score PHQ-9=12"
            );
        }
        for (i, s) in series.iter().enumerate() {
            say!("{}{}", if i > 0 { "\n" } else { "" }, s.measure);
            for p in &s.points {
                let v = p.value.to_string();
                say!(
                    "  {}  {:>6}{}  {}",
                    p.date,
                    v,
                    band_text(&s.measure, &v),
                    if p.signed { "signed" } else { "draft" }
                );
            }
        }
        Ok(())
    }

    pub fn private(&self, case: &DocId, entries: &[PrivateEntry]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                entries
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id, "case": case.to_hex(), "private": true,
                            "at": e.at, "by": e.by, "text": e.text,
                            "device": e.device, "unverified": e.unverified,
                        })
                    })
                    .collect(),
            ));
        }
        for e in entries {
            say!(
                "{}  {}  {}{}\n{}\n",
                e.id,
                time::local_text(&e.at),
                e.by,
                if e.unverified {
                    " (UNVERIFIED: written or altered by a device this one cannot vouch for)"
                } else {
                    ""
                },
                body(&e.text)
            );
        }
        Ok(())
    }

    pub fn search(&self, hits: &[Hit]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                hits.iter()
                    .map(|h| {
                        // A hit is about a note (or psychotherapy note), or
                        // about the case when it is in its name or profile.
                        let id = h.note.clone().unwrap_or_else(|| h.case.to_hex());
                        json!({
                            "id": id, "case": h.case.to_hex(), "case_name": h.case_name, "private": h.private,
                            "note": h.note, "field": h.field, "snippet": h.snippet,
                        })
                    })
                    .collect(),
            ));
        }
        if hits.is_empty() {
            tell!("no matches");
        }
        for h in hits {
            let place = match (&h.note, h.private) {
                (Some(n), false) => format!("note {n} {}", h.field),
                (Some(n), true) => format!("private {n}"),
                (None, _) => h.field.clone(),
            };
            say!(
                "{}  {}  {}: {}",
                h.case.short(),
                h.case_name,
                place,
                h.snippet
            );
        }
        Ok(())
    }
}

/// Text someone wrote, indented: a line in it that reads like a heading
/// ("## comment (Dr. Rivera, ...)") cannot pass for one of ours.
fn body(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A remark whose author this device cannot vouch for says so.
fn unverified(r: &casebook::notes::Remark) -> &'static str {
    if r.unverified {
        "; UNVERIFIED: written or altered by a device this one cannot vouch for"
    } else {
        ""
    }
}

/// " (moderate)" after a standard measure's score; nothing otherwise.
fn band_text(measure: &str, value: &str) -> String {
    value
        .parse()
        .ok()
        .and_then(|v| casebook::notes::band(measure, v))
        .map_or_else(String::new, |b| format!(" ({b})"))
}
