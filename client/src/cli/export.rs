//! `casebook export`: a case written out as a PDF and/or a FHIR document,
//! for a records request or a disclosure.

use std::path::Path;

use anyhow::{Context, Result, bail};
use casebook::export::{Recipient, Request};

use super::print::Out;
use super::term::tell;
use super::{case_id, open};
use crate::{Cli, ExportArgs};

pub(super) fn export(cli: &Cli, out: &Out, a: &ExportArgs) -> Result<()> {
    // Every file is new: an export never writes over anything, and a name
    // taken is said before anything is read.
    let files: Vec<&Path> = a.pdf.iter().chain(&a.fhir).map(|p| p.as_path()).collect();
    if files.len() == 2 && files[0] == files[1] {
        bail!("--pdf and --fhir name the same file");
    }
    for f in &files {
        if f.exists() {
            bail!(
                "{} already exists; an export never writes over a file: choose a new name",
                f.display()
            );
        }
    }
    let mut home = open(cli)?;
    let id = case_id(&home, &a.case)?;
    let req = Request {
        notes: a.notes.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        sections: a.sections.clone(),
        include_private: a.include_private,
        to: a.to.as_ref().map(|to| Recipient {
            name: to.clone(),
            purpose: a.purpose.clone().unwrap_or_default(),
            consent: a.consent.clone().unwrap_or_default(),
        }),
        pdf: a.pdf.is_some(),
        fhir: a.fhir.is_some(),
    };
    let done = home.export(&id, &req)?;
    for (path, bytes) in [(&a.pdf, &done.pdf), (&a.fhir, &done.fhir)] {
        if let (Some(path), Some(bytes)) = (path, bytes) {
            casebook::files::write_new_private(path, bytes)
                .with_context(|| format!("the export was not written to {}", path.display()))?;
        }
    }
    if a.include_private {
        tell!("Psychotherapy notes INCLUDED ({}), as asked.", done.private);
    } else {
        tell!("Psychotherapy notes left out (--include-private includes them).");
    }
    let mut changed = out
        .changed("case.exported", id.to_hex())
        .with("notes", done.notes.clone())
        .with("private_notes", done.private);
    for (key, path) in [("pdf", &a.pdf), ("fhir", &a.fhir)] {
        if let Some(p) = path {
            changed = changed.with(key, p.display().to_string());
        }
    }
    if let Some(to) = &a.to {
        changed = changed.with("recipient", to.as_str());
    }
    changed.done(&format!(
        "{} note(s) exported{}; recorded in the audit trail{}",
        done.notes.len(),
        files
            .iter()
            .map(|f| format!(" to {}", f.display()))
            .collect::<Vec<_>>()
            .join(" and"),
        if a.to.is_some() {
            " and the accounting of disclosures"
        } else {
            ""
        }
    ))
}
