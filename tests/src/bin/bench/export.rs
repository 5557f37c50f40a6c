//! 5. Exporting a case of 100 notes: to PDF, and to a FHIR bundle, against
//!    reading the same case in full (`open_case`) in the same run.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use casebook::Home;
use casebook::export::Request;
use casebook::notes::{NoteFormat, NoteInput};

use super::{PASS, Words};

/// Median seconds of `runs` runs of `f`.
fn median(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[runs / 2])
}

/// (PDF s, FHIR s, read s, PDF bytes, pages) for one case of `notes` notes.
pub fn export(dir: &Path, notes: usize) -> Result<(f64, f64, f64, usize)> {
    let fp = [0u8; 32];
    let (mut home, _) = Home::init(&dir.join("exporter"), PASS, "Dr. Bench", "127.0.0.1:9", fp)?;
    let case = home.create_case("Client Export", "2026-01-05")?;
    let mut words = Words(0x2545_F491_4F6C_DD1D);
    let fields = [
        "subjective",
        "objective",
        "assessment",
        "plan",
        "interventions",
        "homework",
    ];
    home.edit_case(&case, "notes", |c| {
        for n in 0..notes {
            let mut input = NoteInput::new(
                format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
                NoteFormat::Soap,
            );
            for f in fields {
                input.fields.push((f.to_string(), words.text(300)));
            }
            c.add_note(input, &format!("n{n:03}"), "Dr. Bench")?;
        }
        Ok(())
    })?;
    let req = |pdf: bool| Request {
        pdf,
        fhir: !pdf,
        ..Request::default()
    };
    let mut size = 0;
    let pdf = median(5, || {
        size = home.export(&case, &req(true))?.pdf.map_or(0, |b| b.len());
        Ok(())
    })?;
    let fhir = median(5, || {
        home.export(&case, &req(false))?;
        Ok(())
    })?;
    let read = median(5, || {
        home.open_case(&case)?;
        Ok(())
    })?;
    Ok((pdf, fhir, read, size))
}
