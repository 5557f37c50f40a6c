//! A case's profile from the page: the client's name and the few things
//! that hold across sessions. The form carries the version it was drawn
//! at, so only what the person changed is written and another device's
//! edit made meanwhile stays; a refused save shows every word again.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use casebook::Home;
use casebook::notes::{ChangeHash, PROFILE_FIELDS};
use casebook_shared::ids::DocId;
use maud::{Markup, html};

use super::Ui;
use super::note_pages::{Typed, heads_text};
use super::note_routes::open_case;
use super::pages::{Bar, case_path, error_note, label, layout};
use super::routes::{answer, bad};

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new().route("/cases/{id}/profile", get(show).post(save))
}

/// The form as the case reads now.
fn drawn(home: &Home, case: &DocId, name: &str) -> Result<Typed, casebook::Error> {
    let (profile, heads) = home.docs().read_case_at(case, |c| c.profile())?;
    let mut typed: Typed = profile.fields().into_iter().collect();
    typed.insert("client_name".into(), name.to_string());
    typed.insert("drawn_name".into(), name.to_string());
    typed.insert("heads".into(), heads_text(&heads));
    Ok(typed)
}

async fn show(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, None) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    match drawn(home, &case, &name) {
        Ok(typed) => page(&ui.bar(home), &case, &name, &typed, None).into_response(),
        Err(e) => bad(&e.to_string()),
    }
}

async fn save(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(&typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let get = |k: &str| typed.get(k).map_or("", String::as_str);
    let fields: Vec<(String, String)> = PROFILE_FIELDS
        .iter()
        .filter_map(|f| Some((f.to_string(), typed.get(*f)?.clone())))
        .collect();
    let rename = Some(get("client_name").trim()).filter(|n| *n != get("drawn_name").trim());
    let base: Result<Vec<ChangeHash>, _> = get("heads")
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::parse)
        .collect();
    let saved = match base {
        Ok(base) => home
            .edit_profile(&case, rename, &fields, Some(&base))
            .map_err(|e| e.to_string()),
        Err(_) => Err("the form's version is garbled; open the profile again".to_string()),
    };
    match saved {
        Ok(()) => Redirect::to(&case_path(&case)).into_response(),
        Err(e) => answer(
            page(&ui.bar(home), &case, &name, &typed, Some(&e)),
            Some(&e),
        ),
    }
}

fn page(bar: &Bar, case: &DocId, name: &str, typed: &Typed, error: Option<&str>) -> Markup {
    let value = |k: &str| typed.get(k).map_or("", String::as_str);
    layout(
        "Profile",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            h1 { "Profile" }
            (error_note(error))
            form method="post" action={ (case_path(case)) "/profile" } {
                input type="hidden" name="heads" value=(value("heads"));
                input type="hidden" name="drawn_name" value=(value("drawn_name"));
                label for="client_name" { "Client name" }
                input #client_name name="client_name" autocomplete="off" value=(value("client_name")) required;
                @for f in PROFILE_FIELDS {
                    label for=(f) { (label(f)) }
                    textarea id=(f) name=(f) rows="4" autocomplete="off" { (value(f)) }
                }
                button type="submit" { "Save" }
            }
        },
    )
}
