//! A session note's pages: writing a new one in its format's sections,
//! editing a draft, and a signed note as signed, with its addenda, its
//! colleagues' comments and any late edit shown apart.

use std::collections::HashMap;

use casebook::notes::{COMMON_FIELDS, Note, NoteFormat, STANDARD, band, standard};
use casebook_shared::ids::DocId;
use maud::{Markup, html};

use super::pages::{Bar, case_path, error_note, label, layout};

/// What a note form shows: typed values by input name, kept when the
/// save is refused.
pub(super) type Typed = HashMap<String, String>;

/// The input name of a text field.
pub(super) fn input_name(field: &str) -> String {
    format!("f_{field}")
}

fn text_inputs(format: NoteFormat, typed: &Typed) -> Markup {
    html! {
        @for field in format.sections().iter().chain(COMMON_FIELDS) {
            @let name = input_name(field);
            label for=(name) { (label(field)) }
            textarea id=(name) name=(name) autocomplete="off" rows=(if format.sections().contains(field) { 5 } else { 2 }) {
                (typed.get(&name).map(String::as_str).unwrap_or(""))
            }
        }
    }
}

/// The input name of a measure's score.
pub(super) fn score_input(measure: &str) -> String {
    format!("s_{measure}")
}

/// A note's scores as a form holds them, by input name.
pub(super) fn typed_scores(scores: &[(String, String)]) -> impl Iterator<Item = (String, String)> {
    scores.iter().map(|(m, v)| (score_input(m), v.clone()))
}

/// Outcome measures: PHQ-9 and GAD-7 always offered, any other measure the
/// note holds, and one more to name.
fn score_inputs(typed: &Typed) -> Markup {
    let mut measures: Vec<String> = STANDARD.iter().map(|m| m.name.to_string()).collect();
    let mut others: Vec<String> = typed
        .keys()
        .filter_map(|k| k.strip_prefix("s_"))
        .filter(|m| !measures.iter().any(|s| s == m))
        .map(str::to_string)
        .collect();
    others.sort();
    measures.extend(others);
    let value = |k: &str| typed.get(k).map(String::as_str).unwrap_or("");
    html! {
        fieldset.scores {
            legend { "Outcome measures" }
            @for m in &measures {
                @let name = score_input(m);
                @let hint = standard(m).map(|s| format!(" (0–{})", s.max));
                label for=(name) { (m) (hint.unwrap_or_default()) }
                input id=(name) name=(name) inputmode="decimal" autocomplete="off" value=(value(&name));
            }
            label for="new_measure" { "Another measure" }
            input #new_measure name="new_measure" autocomplete="off" placeholder="e.g. Sleep hours" value=(value("new_measure"));
            label for="new_score" { "Its score" }
            input #new_score name="new_score" inputmode="decimal" autocomplete="off" value=(value("new_score"));
        }
    }
}

/// A signed note's scores, with the band of a standard measure.
fn scores_shown(scores: &[(String, String)]) -> Markup {
    html! {
        @if !scores.is_empty() {
            dt { "Outcome measures" }
            dd {
                @for (m, v) in scores {
                    @let b = v.parse().ok().and_then(|v| band(m, v));
                    (m) ": " (v) @if let Some(b) = b { " (" (b) ")" } br;
                }
            }
        }
    }
}

/// A note as its form holds it, by input name: the session's date, time
/// and length, every text field and every score.
pub(super) fn form_of(n: &Note) -> Typed {
    [
        ("date".to_string(), n.date.clone()),
        (
            "start_time".to_string(),
            n.start_time.clone().unwrap_or_default(),
        ),
        (
            "duration".to_string(),
            n.duration.map(|d| d.to_string()).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .chain(n.fields.iter().map(|(k, v)| (input_name(k), v.clone())))
    .chain(typed_scores(&n.scores))
    .collect()
}

/// The heads a form was drawn at, as the form carries them.
pub(super) fn heads_text(heads: &[casebook::notes::ChangeHash]) -> String {
    heads
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The session's date, start and length, as inputs.
fn session_inputs(typed: &Typed) -> Markup {
    let value = |k: &str| typed.get(k).cloned().unwrap_or_default();
    html! {
        label for="date" { "Date" }
        input #date type="date" name="date" value=(value("date")) required;
        label for="start_time" { "Start time" }
        input #start_time type="time" name="start_time" value=(value("start_time"));
        label for="duration" { "Minutes" }
        input #duration type="number" min="1" max="1440" name="duration" value=(value("duration"));
    }
}

/// Text typed under another format whose sections this one lacks: shown,
/// so that choosing a format never throws writing away.
fn left_over(format: NoteFormat, typed: &Typed) -> Markup {
    let mut rest: Vec<(&String, &String)> = typed
        .iter()
        .filter(|(k, v)| {
            k.strip_prefix("f_")
                .is_some_and(|f| !format.has_text_field(f))
                && !v.trim().is_empty()
        })
        .collect();
    rest.sort();
    html! {
        @if !rest.is_empty() {
            section.late {
                h2 { "Written under the format before" }
                p { "Not part of a " (format.as_str().to_uppercase()) " note: copy what you need into its sections above." }
                @for (k, v) in rest {
                    @let id = format!("old_{k}");
                    label for=(id) { (label(k.trim_start_matches("f_"))) }
                    textarea id=(id) readonly rows="3" { (v) }
                }
            }
        }
    }
}

/// A new note in `format`, for the case `case` of client `name`.
pub(super) fn new_note(
    bar: &Bar,
    case: &DocId,
    name: &str,
    format: NoteFormat,
    typed: &Typed,
    error: Option<&str>,
) -> Markup {
    layout(
        "New note",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            h1 { "New note" }
            (error_note(error))
            // One form, so that choosing another format keeps what was typed.
            form method="post" action={ (case_path(case)) "/notes" } {
                label for="format" { "Format" }
                select #format name="format" {
                    @for f in NoteFormat::ALL {
                        option value=(f.as_str()) selected[f == format] { (f.as_str().to_uppercase()) }
                    }
                }
                button type="submit" formaction={ (case_path(case)) "/notes/new" } formnovalidate { "Use this format" }
                (session_inputs(typed))
                (text_inputs(format, typed))
                (score_inputs(typed))
                (left_over(format, typed))
                button type="submit" { "Save" }
            }
        },
    )
}

/// A note: a draft as a form to edit and sign, a signed note as signed.
pub(super) fn note(
    bar: &Bar,
    (case, name): (&DocId, &str),
    (n, heads): (&Note, &str),
    typed: Option<&Typed>,
    error: Option<&str>,
) -> Markup {
    let path = format!("{}/notes/{}", case_path(case), n.id);
    let current = form_of(n);
    layout(
        "Session note",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            h1 { "Session of " (n.date) " (" (n.format.as_str().to_uppercase()) ")" }
            p.meta {
                "Written by " (n.created_by)
                @if n.creator_unverified { " " span.mark { "UNVERIFIED: written or altered by a device this one cannot vouch for" } }
                @if let Some(t) = &n.start_time { " · starts " (t) }
                @if let Some(d) = n.duration { " · " (d) " minutes" }
            }
            @if !n.edited_by.is_empty() { p.meta { "Edited by " (n.edited_by.join(", ")) } }
            (error_note(error))
            @if let (Some(by), Some(at)) = (&n.signed_by, &n.signed_at) {
                p.signed role="status" {
                    "Signed by " (by)
                    @if let Some(as_) = &n.signed_as { " (signed as \"" (as_) "\")" }
                    " at " (casebook::clock::parse_instant(at).map_or_else(|| at.clone(), casebook::clock::local))
                    @if n.signature_broken { " " span.mark { "the signature does not check out" } }
                }
                dl {
                    @for (field, text) in &n.fields {
                        @if !text.is_empty() { dt { (label(field)) } dd { (text) } }
                    }
                    (scores_shown(&n.scores))
                }
                @for l in &n.late_edits {
                    section.late {
                        h2 { (label(&l.field)) ": written on another device before it saw the signature" }
                        p { (l.merged) }
                    }
                }
                section {
                    h2 { "Addenda" }
                    @for a in &n.addenda { p { (a.text) br; small.meta { (a.by) ", " (a.at) } } }
                    form method="post" action={ (path) "/addenda" } {
                        label for="addendum" { "Addendum" }
                        textarea #addendum name="text" rows="3" required {
                            (typed.and_then(|t| t.get("text")).map(String::as_str).unwrap_or(""))
                        }
                        button type="submit" { "Add addendum" }
                    }
                }
            } @else {
                // "Sign" saves what is in the form first: it signs what
                // the person sees.
                // Saved as the person types (app.js), and on "Save"
                // without it; either way only what changed since `heads`.
                form method="post" action=(path) data-autosave={ (path) "/autosave" } data-live={ (path) "/live" } {
                    input type="hidden" name="format" value=(n.format.as_str());
                    input type="hidden" name="heads" value=(heads);
                    (session_inputs(typed.unwrap_or(&current)))
                    (text_inputs(n.format, typed.unwrap_or(&current)))
                    (score_inputs(typed.unwrap_or(&current)))
                    p.meta #autosave role="status" aria-live="polite" {}
                    button type="submit" { "Save" }
                    p.meta { "Signing saves the note and fixes it as it reads now; later additions are addenda." }
                    button type="submit" formaction={ (path) "/sign" } { "Sign" }
                }
            }
            @if !n.comments.is_empty() {
                section {
                    h2 { "Comments" }
                    @for c in &n.comments { p { (c.text) br; small.meta { "Comment by " (c.by) ", " (c.at) } } }
                }
            }
        },
    )
}
