//! What keeps an open page current, for `app.js`: a draft saved as the
//! person types, the draft as it reads now (another device's words merged
//! in), and a version number that moves when the background sync brings
//! something, so a page that shows the record can redraw itself. Every
//! answer is JSON; a locked page answers 401 and nothing is saved.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use casebook::Home;
use serde_json::{Value, json};

use super::Ui;
use super::note_pages::{Typed, form_of, heads_text};
use super::note_routes::save_form;

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/live", get(version))
        .route("/cases/{id}/notes/{note}/autosave", post(autosave))
        .route("/cases/{id}/notes/{note}/live", get(draft))
}

fn locked() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "locked": true }))).into_response()
}

fn refused(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
}

/// The version of what the page shows, and the sync line.
async fn version(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    let bar = ui.bar(home);
    Json(json!({
        "version": ui.changes.load(Ordering::SeqCst),
        "sync": super::pages::sync_line(&bar),
    }))
    .into_response()
}

/// A draft as its form holds it now, with the heads it was read at.
fn state(home: &Home, case: &casebook_shared::ids::DocId, note: &str) -> Result<Value, String> {
    let (n, heads) = home.note_now(case, note).map_err(|e| e.to_string())?;
    Ok(json!({
        "heads": heads_text(&heads),
        "signed": n.is_signed(),
        "fields": form_of(&n),
    }))
}

async fn autosave(
    State(ui): State<Arc<Ui>>,
    Path((id, note)): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let Some(home) = held.as_mut() else {
        return locked();
    };
    let Some(case) = super::note_routes::case_of(home, &id).map(|(c, _)| c) else {
        return refused("no such case");
    };
    if let Err(e) = save_form(home, &case, &note, &typed) {
        return refused(&e);
    }
    match state(home, &case, &note) {
        Ok(mut v) => {
            v["saved"] = casebook::clock::local(now()).into();
            Json(v).into_response()
        }
        Err(e) => refused(&e),
    }
}

async fn draft(State(ui): State<Arc<Ui>>, Path((id, note)): Path<(String, String)>) -> Response {
    let held = ui.home.lock().await;
    let Some(home) = held.as_ref() else {
        return locked();
    };
    let Some(case) = super::note_routes::case_of(home, &id).map(|(c, _)| c) else {
        return refused("no such case");
    };
    match state(home, &case, &note) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refused(&e),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
