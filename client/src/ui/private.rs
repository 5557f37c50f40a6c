//! A case's psychotherapy (process) notes, on a tab of their own: kept
//! apart from the record by law, never listed or searched without a
//! deliberate click, and every opening of the tab written to the audit
//! trail by the core.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use casebook::notes::PrivateEntry;
use casebook_shared::ids::DocId;
use maud::{Markup, html};

use super::Ui;
use super::note_pages::Typed;
use super::note_routes::open_case;
use super::pages::{Bar, case_path, error_note, layout};
use super::routes::answer;

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new().route("/cases/{id}/private", get(show).post(add))
}

/// The address of a case's psychotherapy notes.
pub(super) fn private_path(case: &DocId) -> String {
    format!("{}/private", case_path(case))
}

async fn show(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, None) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let entries = home.private_notes(&case);
    let bar = ui.bar(home);
    match entries {
        Ok(entries) => page(&bar, &case, &name, &entries, "", None).into_response(),
        Err(e) => {
            let why = e.to_string();
            answer(page(&bar, &case, &name, &[], "", Some(&why)), Some(&why))
        }
    }
}

async fn add(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(&typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let text = typed.get("text").map_or("", String::as_str);
    match home.add_private_note(&case, text) {
        Ok(_) => Redirect::to(&private_path(&case)).into_response(),
        Err(e) => {
            // What was typed comes back with why it was refused.
            let entries = home.private_notes(&case).unwrap_or_default();
            let bar = ui.bar(home);
            let why = e.to_string();
            let page = page(&bar, &case, &name, &entries, text, Some(&why));
            (StatusCode::BAD_REQUEST, page).into_response()
        }
    }
}

/// The tab: every entry, newest first, and a form for another.
fn page(
    bar: &Bar,
    case: &DocId,
    name: &str,
    entries: &[PrivateEntry],
    typed: &str,
    error: Option<&str>,
) -> Markup {
    layout(
        "Psychotherapy notes",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            (super::pages::case_tabs(case, true))
            h1 { "Psychotherapy notes" }
            p.mark.private {
                "Private: kept apart from the record, shared with no colleague, \
                 and left out of an ordinary records export."
            }
            (error_note(error))
            form method="post" action=(private_path(case)) {
                label for="private_text" { "New psychotherapy note" }
                textarea #private_text name="text" rows="5" autocomplete="off" required { (typed) }
                button type="submit" { "Save" }
            }
            @if entries.is_empty() && error.is_none() {
                p { "No psychotherapy notes yet." }
            }
            @for e in entries.iter().rev() {
                article.private {
                    p.meta {
                        (e.by) ", " (casebook::clock::local_text(&e.at))
                        @if e.unverified { " " span.mark { "UNVERIFIED: written or altered by a device this one cannot vouch for" } }
                    }
                    p.text { (e.text) }
                }
            }
        },
    )
}
