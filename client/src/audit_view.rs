//! The audit trail as front ends show it: which entries a person asked for
//! (a case, a span of dates, disclosures only), and each disclosure in one
//! shape, so the CLI and the page say the same thing of the same entry.

use casebook_shared::ids::DocId;

use crate::audit::{AuditRecord, Disclosed};

/// Which entries to show; every entry by default.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub case: Option<DocId>,
    /// Entries at or after this instant (Unix seconds).
    pub since: Option<u64>,
    /// Entries before this instant.
    pub until: Option<u64>,
    /// Only shares granted and exports made to someone.
    pub disclosures_only: bool,
}

impl Selection {
    pub fn keeps(&self, a: &AuditRecord) -> bool {
        self.case.is_none_or(|c| a.case == Some(c))
            && self.since.is_none_or(|s| a.at >= s)
            && self.until.is_none_or(|u| a.at < u)
            && (!self.disclosures_only || a.disclosure.is_some())
    }
}

/// One disclosure as the accounting of disclosures shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureRow {
    /// "share" or "export".
    pub kind: &'static str,
    pub case_name: String,
    /// The recipient's account (hex), for a share.
    pub account: Option<String>,
    pub recipient: String,
    /// The role granted, for a share.
    pub role: Option<String>,
    /// What was disclosed, in words.
    pub what: String,
    /// The session notes exported, for an export.
    pub notes: Option<Vec<String>>,
    /// The psychotherapy notes exported, for an export.
    pub private_notes: Option<Vec<String>>,
    pub purpose: String,
    pub consent: String,
    /// When a share ends (Unix seconds).
    pub expires: Option<u64>,
}

impl AuditRecord {
    /// The disclosure this entry records, if it records one.
    pub fn disclosure_row(&self) -> Option<DisclosureRow> {
        Some(match &self.disclosure {
            Disclosed::Nothing => return None,
            Disclosed::Share(d) => DisclosureRow {
                kind: "share",
                case_name: d.case_name.clone(),
                account: Some(d.recipient_account.to_hex()),
                recipient: d.recipient.clone(),
                role: Some(d.role.clone()),
                what: match d.private_included {
                    true => "case file and psychotherapy notes".into(),
                    false => "case file".into(),
                },
                notes: None,
                private_notes: None,
                purpose: d.purpose.clone(),
                consent: d.consent.clone(),
                expires: d.expires,
            },
            Disclosed::Export(d) => {
                let private = match d.private.is_empty() {
                    true => String::new(),
                    false => format!(" and {} psychotherapy note(s)", d.private.len()),
                };
                let sections = match d.sections.is_empty() {
                    true => String::new(),
                    false => format!(" (sections {})", d.sections.join(", ")),
                };
                DisclosureRow {
                    kind: "export",
                    case_name: d.case_name.clone(),
                    account: None,
                    recipient: d.to.name.clone(),
                    role: None,
                    what: format!("{} session note(s){private}{sections}", d.notes.len()),
                    notes: Some(d.notes.clone()),
                    private_notes: Some(d.private.clone()),
                    purpose: d.to.purpose.clone(),
                    consent: d.to.consent.clone(),
                    expires: None,
                }
            }
        })
    }
}

impl crate::audit::Trail<'_> {
    /// The entries `selection` keeps, newest first.
    pub fn select(&self, selection: &Selection) -> crate::Result<Vec<AuditRecord>> {
        let mut all = self.entries()?;
        all.retain(|a| selection.keeps(a));
        Ok(all)
    }
}
