//! The accounting of disclosures: every share granted and every export
//! made to someone, from the audit trail, in one shape.

use crate::cli::term::{say, tell};
use anyhow::Result;
use casebook::audit_view::DisclosureRow;
use casebook::home::AuditRecord;
use serde_json::{Value, json};

use casebook::clock as time;

use super::account::entry_id;
use super::{Out, print_json};

impl Out {
    pub fn disclosures(&self, trail: &[AuditRecord]) -> Result<()> {
        let rows: Vec<(&AuditRecord, DisclosureRow)> = trail
            .iter()
            .filter_map(|a| Some((a, a.disclosure_row()?)))
            .collect();
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|(entry, r)| {
                        json!({
                            "id": entry_id(entry), "at": time::rfc3339(entry.at),
                            "kind": r.kind,
                            "case": entry.case.map(|c| c.to_hex()), "case_name": r.case_name,
                            "recipient": r.recipient, "account": r.account,
                            "account_name": r.account.as_ref().map(|_| &r.recipient),
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
        for (entry, r) in rows {
            let how = match r.role {
                Some(role) => format!("shared, {role}"),
                None => "exported".into(),
            };
            say!(
                "{}  {}  to {} ({how})  {}  purpose {:?}  consent {:?}",
                time::date(entry.at),
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
