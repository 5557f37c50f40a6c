//! Exporting a case for a records request or a disclosure: one [`Record`]
//! gathered from the store (narrowed to what was asked, psychotherapy notes
//! only when asked), then drawn as a PDF ([`pdf`]) or a FHIR R4 document
//! bundle ([`fhir`]). The export is recorded once in the audit trail, and a
//! disclosure in the accounting of disclosures too.
//!
//! The record leaves the encrypted store in the clear here, by the person's
//! choice: what is written is exactly what the audit says was.

pub mod fhir;
mod layout;
pub mod pdf;

use casebook_shared::ids::DocId;

use crate::audit::Disclosed;
use crate::notes::{Note, PrivateEntry, parse_date};
use crate::{Error, Home, Result};

/// Why an export was refused before anything was read, or could not be
/// drawn. Nothing is written or recorded in either case.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the first date, {since}, is after the last, {until}")]
    SinceAfterUntil { since: String, until: String },
    #[error(
        "no section named {0:?}: name note sections (subjective, plan, risk, ...) or {parts}",
        parts = PARTS.join(", ")
    )]
    UnknownSection(String),
    /// Psychotherapy notes go whole or not at all: a narrowed part of them
    /// would read as the whole.
    #[error(
        "not allowed: psychotherapy notes cannot be narrowed to some notes or sections: export them apart, whole within dates, or leave them out"
    )]
    PrivateNarrowed,
    /// A disclosure is recorded with who received it, why, and on what consent.
    #[error("not allowed: a disclosure needs a recipient, a purpose and the consent it rests on")]
    NoRecipient,
    #[error("not allowed: an export needs a format: PDF, FHIR or both")]
    NoFormat,
    /// The font built into casebook does not load: a broken build.
    #[error("the export could not be drawn: the embedded font does not load ({0})")]
    FontBroken(&'static str),
    #[error("the export could not be drawn")]
    Pdf(#[source] krilla::error::KrillaError),
}

/// What to export, and to whom.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Only these notes (ids or unique prefixes); every note if empty.
    pub notes: Vec<String>,
    /// Only notes dated on or after this day (YYYY-MM-DD).
    pub since: Option<String>,
    /// Only notes dated on or before this day (YYYY-MM-DD).
    pub until: Option<String>,
    /// Only these parts: note fields by name (`subjective`, `plan`, `risk`,
    /// ...) and `profile`, `addenda`, `comments`. Every part if empty.
    pub sections: Vec<String>,
    /// Psychotherapy notes too (left out of a records request by law
    /// unless the person means to include them).
    pub include_private: bool,
    /// Set when the export is a disclosure to someone.
    pub to: Option<Recipient>,
    /// Draw a PDF.
    pub pdf: bool,
    /// Draw a FHIR R4 document bundle.
    pub fhir: bool,
}

/// An export, drawn: the bytes of each format asked for, and what went in.
pub struct Exported {
    pub pdf: Option<Vec<u8>>,
    pub fhir: Option<Vec<u8>>,
    /// The session notes exported, by id.
    pub notes: Vec<String>,
    /// How many psychotherapy notes went in.
    pub private: usize,
}

pub use crate::audit::Recipient;

/// A case as exported: what both formats draw, and nothing else.
#[derive(Clone, Debug)]
pub struct Record {
    pub case: DocId,
    pub name: String,
    /// The day the case was opened.
    pub opened: String,
    /// Profile fields with text, in their order; empty when narrowed away.
    pub profile: Vec<(String, String)>,
    /// Session notes in date order, each narrowed to the asked sections.
    pub notes: Vec<Note>,
    /// Psychotherapy notes, only when asked for.
    pub private: Vec<PrivateEntry>,
    pub private_included: bool,
    /// Narrowed by notes, dates or sections: not the whole record.
    pub narrowed: bool,
    /// The parts kept when narrowed by section.
    pub sections: Vec<String>,
    /// When (unix seconds) and by whom the export was made.
    pub exported_at: u64,
    pub exported_by: String,
    pub to: Option<Recipient>,
}

/// The parts of a record besides note fields that `--sections` can name.
pub const PARTS: [&str; 4] = ["profile", "scores", "addenda", "comments"];

/// A note's scores as one line each, "PHQ-9: 12 (moderate)", for the
/// exports that print them.
fn scores_text(scores: &[(String, String)]) -> String {
    scores
        .iter()
        .map(|(m, v)| {
            let band = v.parse().ok().and_then(|v| crate::notes::band(m, v));
            match band {
                Some(b) => format!("{m}: {v} ({b})"),
                None => format!("{m}: {v}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A field's name as a heading: `presenting_concerns` → "Presenting concerns".
fn title_case(field: &str) -> String {
    let s = field.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

impl Request {
    fn keeps(&self, part: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == part)
    }

    /// Refuses what cannot be honoured before anything is read.
    fn check(&self) -> Result<()> {
        for d in self.since.iter().chain(&self.until) {
            parse_date(d)?;
        }
        if let (Some(s), Some(u)) = (&self.since, &self.until)
            && s > u
        {
            return Err(ExportError::SinceAfterUntil {
                since: s.clone(),
                until: u.clone(),
            }
            .into());
        }
        for s in &self.sections {
            let known = PARTS.contains(&s.as_str())
                || crate::notes::NoteFormat::ALL
                    .iter()
                    .any(|f| f.has_text_field(s));
            if !known {
                return Err(ExportError::UnknownSection(s.clone()).into());
            }
        }
        if self.include_private && (!self.notes.is_empty() || !self.sections.is_empty()) {
            return Err(ExportError::PrivateNarrowed.into());
        }
        if let Some(r) = &self.to
            && [&r.name, &r.purpose, &r.consent]
                .iter()
                .any(|s| s.trim().is_empty())
        {
            return Err(ExportError::NoRecipient.into());
        }
        Ok(())
    }
}

impl Home {
    /// Exports a case as `req` asks: gathers it, draws each format asked
    /// for, and records the export (once in the audit trail, and as a
    /// disclosure when it goes to someone) before handing the bytes over.
    pub fn export(&mut self, case: &DocId, req: &Request) -> Result<Exported> {
        req.check()?;
        if !req.pdf && !req.fhir {
            return Err(ExportError::NoFormat.into());
        }
        let record = self.gather(case, req)?;
        let pdf = req.pdf.then(|| pdf::render(&record)).transpose()?;
        let fhir = req.fhir.then(|| {
            serde_json::to_vec_pretty(&fhir::bundle(&record))
                .expect("a JSON value always serializes")
        });
        self.audit_export(&record, req)?;
        Ok(Exported {
            pdf,
            fhir,
            notes: record.notes.iter().map(|n| n.id.clone()).collect(),
            private: record.private.len(),
        })
    }

    /// The record as `req` narrows it, vouched like every read.
    fn gather(&mut self, case: &DocId, req: &Request) -> Result<Record> {
        let exported_by = self.name().trim().to_string();
        if exported_by.is_empty() {
            return Err(Error::NoName);
        }
        let (summary, profile, mut notes) = self
            .docs()
            .read_case(case, |c| (c.summary(), c.profile(), c.notes()))?;
        let wanted: Vec<String> = req
            .notes
            .iter()
            .map(|n| {
                self.docs()
                    .read_case(case, |c| c.resolve_note_id(n))?
                    .map_err(Error::from)
            })
            .collect::<Result<_>>()?;
        let (authors, meta) = (self.authors()?, self.access().doc_meta(case)?);
        notes.retain(|n| wanted.is_empty() || wanted.contains(&n.id));
        notes.retain(|n| req.since.as_ref().is_none_or(|s| n.date >= *s));
        notes.retain(|n| req.until.as_ref().is_none_or(|u| n.date <= *u));
        notes.sort_by(|a, b| (&a.date, &a.start_time, &a.id).cmp(&(&b.date, &b.start_time, &b.id)));
        let notes: Vec<Note> = notes
            .into_iter()
            .map(|n| {
                let mut n = self.vouch(&authors, meta.as_ref(), n);
                n.fields.retain(|(k, v)| !v.is_empty() && req.keeps(k));
                n.late_edits.retain(|l| req.keeps(&l.field));
                n.late_edits.retain(|l| {
                    crate::notes::score_field(&l.field).is_none() || req.keeps("scores")
                });
                if !req.keeps("scores") {
                    n.scores.clear();
                }
                if !req.keeps("addenda") {
                    n.addenda.clear();
                }
                if !req.keeps("comments") {
                    n.comments.clear();
                }
                n
            })
            .collect();
        let private = match (req.include_private, summary.private_doc) {
            (true, Some(_)) => {
                // Entries carry an instant; its day is the local day, as
                // --since and --until are.
                let day = |e: &PrivateEntry| {
                    crate::clock::parse_instant(&e.at)
                        .map(crate::clock::date)
                        .unwrap_or_else(|| e.at.get(..10).unwrap_or(&e.at).to_string())
                };
                let mut p = self.read_private_vouched(case)?;
                p.retain(|e| req.since.as_ref().is_none_or(|s| day(e) >= *s));
                p.retain(|e| req.until.as_ref().is_none_or(|u| day(e) <= *u));
                p
            }
            _ => Vec::new(),
        };
        let record = Record {
            case: *case,
            name: summary.name.clone(),
            opened: summary.created.clone(),
            profile: if req.keeps("profile") {
                profile
                    .fields()
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            } else {
                Vec::new()
            },
            notes,
            private,
            private_included: req.include_private,
            narrowed: !req.notes.is_empty()
                || req.since.is_some()
                || req.until.is_some()
                || !req.sections.is_empty(),
            sections: req.sections.clone(),
            exported_at: self.now(),
            exported_by,
            to: req.to.clone(),
        };
        Ok(record)
    }

    fn audit_export(&self, record: &Record, req: &Request) -> Result<()> {
        let ids: Vec<String> = record.notes.iter().map(|n| n.id.clone()).collect();
        let what = format!(
            "case exported ({}): {} note(s){}{}; psychotherapy notes {}{}",
            match (req.pdf, req.fhir) {
                (true, true) => "PDF and FHIR",
                (true, false) => "PDF",
                _ => "FHIR",
            },
            ids.len(),
            if record.narrowed && !ids.is_empty() {
                format!(" ({})", ids.join(", "))
            } else {
                String::new()
            },
            if record.sections.is_empty() {
                String::new()
            } else {
                format!(", sections {}", record.sections.join(", "))
            },
            if record.private_included {
                format!("included ({})", record.private.len())
            } else {
                "left out".to_string()
            },
            match &record.to {
                Some(r) => format!(", disclosed to {}", r.name),
                None => String::new(),
            },
        );
        let disclosed = match &record.to {
            Some(to) => Disclosed::Export(crate::audit::ExportDisclosure {
                to: to.clone(),
                case_name: record.name.clone(),
                notes: ids,
                private: record.private.iter().map(|e| e.id.clone()).collect(),
                sections: record.sections.clone(),
            }),
            None => Disclosed::Nothing,
        };
        self.trail()
            .record_with(&what, Some(record.case), disclosed)
    }
}
