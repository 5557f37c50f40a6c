//! The accounting of disclosures: every share granted and every export
//! made to someone, from the audit trail, in one shape.

use crate::cli::term::{say, tell};
use anyhow::Result;
use casebook::audit::Disclosed;
use casebook::home::AuditRecord;
use serde_json::{Value, json};

use casebook::clock as time;

use super::account::entry_id;
use super::{Out, print_json};

/// One disclosure as both outputs show it.
struct Row<'a> {
    entry: &'a AuditRecord,
    kind: &'static str,
    case_name: &'a str,
    account: Option<String>,
    recipient: &'a str,
    role: Option<&'a str>,
    what: String,
    notes: Option<&'a [String]>,
    private_notes: Option<&'a [String]>,
    purpose: &'a str,
    consent: &'a str,
    expires: Option<u64>,
}

fn row(a: &AuditRecord) -> Option<Row<'_>> {
    Some(match &a.disclosure {
        Disclosed::Nothing => return None,
        Disclosed::Share(d) => Row {
            entry: a,
            kind: "share",
            case_name: &d.case_name,
            account: Some(d.recipient_account.to_hex()),
            recipient: &d.recipient,
            role: Some(&d.role),
            what: if d.private_included {
                "case file and psychotherapy notes".into()
            } else {
                "case file".into()
            },
            notes: None,
            private_notes: None,
            purpose: &d.purpose,
            consent: &d.consent,
            expires: d.expires,
        },
        Disclosed::Export(d) => Row {
            entry: a,
            kind: "export",
            case_name: &d.case_name,
            account: None,
            recipient: &d.to.name,
            role: None,
            what: format!(
                "{} session note(s){}{}",
                d.notes.len(),
                if d.private.is_empty() {
                    String::new()
                } else {
                    format!(" and {} psychotherapy note(s)", d.private.len())
                },
                if d.sections.is_empty() {
                    String::new()
                } else {
                    format!(" (sections {})", d.sections.join(", "))
                }
            ),
            notes: Some(&d.notes),
            private_notes: Some(&d.private),
            purpose: &d.to.purpose,
            consent: &d.to.consent,
            expires: None,
        },
    })
}

impl Out {
    pub fn disclosures(&self, trail: &[AuditRecord]) -> Result<()> {
        let rows: Vec<Row> = trail.iter().filter_map(row).collect();
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|r| {
                        json!({
                            "id": entry_id(r.entry), "at": time::rfc3339(r.entry.at),
                            "kind": r.kind,
                            "case": r.entry.case.map(|c| c.to_hex()), "case_name": r.case_name,
                            "recipient": r.recipient, "account": r.account,
                            "account_name": r.account.as_ref().map(|_| r.recipient),
                            "role": r.role, "what": r.what, "notes": r.notes,
                            "private_notes": r.private_notes,
                            "purpose": r.purpose, "consent": r.consent,
                            "expires_at": r.expires.map(time::rfc3339),
                        })
                    })
                    .collect(),
            ));
        }
        if rows.is_empty() {
            tell!("no disclosures recorded");
        }
        for r in rows {
            let how = match r.role {
                Some(role) => format!("shared, {role}"),
                None => "exported".into(),
            };
            say!(
                "{}  {}  to {} ({how})  {}  purpose {:?}  consent {:?}",
                time::date(r.entry.at),
                r.case_name,
                r.recipient,
                r.what,
                r.purpose,
                r.consent
            );
        }
        Ok(())
    }
}
