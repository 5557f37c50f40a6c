//! A record as a PDF a person can read: the case, its profile, every note
//! in date order with its sections, who wrote and signed it, addenda and
//! comments, and on every page a footer naming the export and who made it.
//!
//! Drawn with `krilla`, with DejaVu Sans embedded (subset), so the same
//! record gives the same file on every machine. Note text is passed to the
//! layout as data and drawn as glyphs; nothing in it is ever markup.

use krilla::Document;
use krilla::geom::{Point, Size};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

use super::layout::{Block, MARGIN, Measure, PAGE_H, PAGE_W, Style, paginate};
use super::{ExportError, Record, scores_text, title_case};
use crate::Result;
use crate::clock;
use crate::notes::Note;

/// DejaVu Sans (free license: `client/assets/fonts/LICENSE`).
pub(super) const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(super) const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

fn block(style: Style, text: impl Into<String>) -> Block {
    Block {
        style,
        text: text.into(),
    }
}

/// What the record says, in reading order.
fn blocks(r: &Record) -> Vec<Block> {
    let mut out = vec![
        block(Style::Title, format!("Clinical record: {}", r.name)),
        block(
            Style::Small,
            format!(
                "Case {}, opened {}. Exported {} by {}.",
                r.case.to_hex(),
                r.opened,
                clock::local(r.exported_at),
                r.exported_by
            ),
        ),
        block(
            Style::Small,
            if r.private_included {
                "Psychotherapy notes are INCLUDED in this export."
            } else {
                "Psychotherapy notes are not part of this export."
            },
        ),
    ];
    if r.narrowed {
        out.push(block(
            Style::Small,
            format!(
                "A partial record: {} session note(s){}.",
                r.notes.len(),
                if r.sections.is_empty() {
                    String::new()
                } else {
                    format!(", sections {} only", r.sections.join(", "))
                }
            ),
        ));
    }
    if let Some(to) = &r.to {
        out.push(block(
            Style::Small,
            format!(
                "Disclosed to {}. Purpose: {}. Consent: {}.",
                to.name, to.purpose, to.consent
            ),
        ));
    }
    if !r.profile.is_empty() {
        out.push(block(Style::Heading, "Profile"));
        for (k, v) in &r.profile {
            out.push(block(Style::Label, title_case(k)));
            out.push(block(Style::Body, v.clone()));
        }
    }
    out.push(block(Style::Heading, "Session notes"));
    if r.notes.is_empty() {
        out.push(block(Style::Body, "None in this export."));
    }
    for n in &r.notes {
        note_blocks(n, &mut out);
    }
    if r.private_included {
        out.push(block(Style::Heading, "Psychotherapy notes"));
        if r.private.is_empty() {
            out.push(block(Style::Body, "None in this export."));
        }
        for e in &r.private {
            out.push(block(
                Style::Label,
                format!(
                    "{} · {}{}",
                    clock::local_text(&e.at),
                    e.by,
                    if e.unverified { " (UNVERIFIED)" } else { "" }
                ),
            ));
            out.push(block(Style::Body, e.text.clone()));
        }
    }
    out
}

fn note_blocks(n: &Note, out: &mut Vec<Block>) {
    let mut when = n.date.clone();
    if let Some(t) = &n.start_time {
        when.push_str(&format!(" {t}"));
    }
    if let Some(d) = n.duration {
        when.push_str(&format!(", {d} minutes"));
    }
    out.push(block(
        Style::Subheading,
        format!("Session {when} ({})", n.format.as_str().to_uppercase()),
    ));
    let mut who = format!("Note {}, written by {}", n.id, n.created_by);
    if n.creator_unverified {
        who.push_str(" (UNVERIFIED: written or altered by a device that cannot be vouched for)");
    }
    if !n.edited_by.is_empty() {
        who.push_str(&format!("; edited by {}", n.edited_by.join(", ")));
    }
    match (&n.signed_by, &n.signed_at) {
        (Some(by), Some(at)) => {
            let was = n
                .signed_as
                .as_ref()
                .map(|was| format!(" (signed as {was:?})"))
                .unwrap_or_default();
            who.push_str(&format!(
                "; signed by {by}{was} at {}.",
                clock::local_text(at)
            ))
        }
        _ => who.push_str("; a draft, not signed."),
    }
    out.push(block(Style::Small, who));
    if n.signature_broken {
        out.push(block(
            Style::Small,
            "WARNING: this signature cannot be relied on: the content does not match what was signed, or its signer cannot be vouched for.",
        ));
    }
    for (k, v) in &n.fields {
        out.push(block(Style::Label, title_case(k)));
        out.push(block(Style::Body, v.clone()));
    }
    if !n.scores.is_empty() {
        out.push(block(Style::Label, "Scores".to_string()));
        out.push(block(Style::Body, scores_text(&n.scores)));
    }
    for l in &n.late_edits {
        out.push(block(
            Style::Label,
            format!(
                "{}: written on another device before it saw the signature (not part of the signed note)",
                title_case(&l.field)
            ),
        ));
        out.push(block(Style::Body, l.merged.clone()));
    }
    for (kind, remarks) in [("Addendum", &n.addenda), ("Comment", &n.comments)] {
        for a in remarks {
            out.push(block(
                Style::Label,
                format!(
                    "{kind} by {}, {}{}",
                    a.by,
                    clock::local_text(&a.at),
                    if a.unverified { " (UNVERIFIED)" } else { "" }
                ),
            ));
            out.push(block(Style::Body, a.text.clone()));
        }
    }
}

/// Draws the record as a PDF.
pub fn render(r: &Record) -> Result<Vec<u8>> {
    let broken = ExportError::FontBroken;
    let measure = Measure::new(REGULAR, BOLD).ok_or_else(|| broken("measure"))?;
    let regular = Font::new(REGULAR.into(), 0).ok_or_else(|| broken("regular"))?;
    let bold = Font::new(BOLD.into(), 0).ok_or_else(|| broken("bold"))?;
    let pages = paginate(&measure, &blocks(r));
    let total = pages.len();
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title(format!("Clinical record: {}", r.name))
            .authors(vec![r.exported_by.clone()])
            .creator("casebook".into()),
    );
    let size = Size::from_wh(PAGE_W, PAGE_H).expect("A4 is a size");
    for (i, lines) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(PageSettings::new(size));
        let mut surface = page.surface();
        for l in lines {
            let font = if l.style.bold() { &bold } else { &regular };
            surface.draw_text(
                Point::from_xy(l.x, l.y),
                font.clone(),
                l.style.size(),
                &l.text,
                false,
                TextDirection::Auto,
            );
        }
        let footer = super::layout::printable(&format!(
            "{} · exported {} by {} · page {} of {total}",
            r.name,
            clock::date(r.exported_at),
            r.exported_by,
            i + 1
        ));
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN + 8.0),
            regular.clone(),
            Style::Small.size(),
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    Ok(doc.finish().map_err(ExportError::Pdf)?)
}
