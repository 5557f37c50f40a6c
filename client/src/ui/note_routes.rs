//! A session note's routes: write, edit, sign, add an addendum. Each calls
//! one operation of the core; a refused save is shown again with what was
//! typed and why.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};
use casebook_shared::ids::DocId;

use super::Ui;
use super::note_pages::{self, Typed, input_name};
use super::pages::{self, case_path};

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/cases/{id}/notes", post(create))
        .route("/cases/{id}/notes/new", get(new).post(reformat))
        .route("/cases/{id}/notes/{note}", get(show).post(save))
        .route("/cases/{id}/notes/{note}/sign", post(sign))
        .route("/cases/{id}/notes/{note}/addenda", post(addendum))
}

fn not_found(why: &str) -> Response {
    (StatusCode::NOT_FOUND, pages::refused(why)).into_response()
}

fn locked() -> Response {
    (StatusCode::UNAUTHORIZED, pages::unlock(None)).into_response()
}

/// The page locked itself while a form was being filled: nothing is saved,
/// and what was typed comes back on the unlock page, never thrown away.
fn locked_keeping(typed: &Typed) -> Response {
    let mut kept: Vec<(String, String)> = typed
        .iter()
        .filter(|(k, _)| k.starts_with("f_") || *k == "text")
        .map(|(k, v)| (k.trim_start_matches("f_").to_string(), v.clone()))
        .collect();
    kept.sort();
    (StatusCode::UNAUTHORIZED, pages::unlock_keeping(&kept)).into_response()
}

/// Back to a note's page.
fn to_note(case: &DocId, note: &str) -> Response {
    Redirect::to(&format!("{}/notes/{note}", case_path(case))).into_response()
}

/// The case's id and its client's name, from the list the core keeps.
fn case_of(home: &Home, id: &str) -> Option<(DocId, String)> {
    let id = DocId::from_hex(id).ok()?;
    let (_, s) = home
        .docs()
        .cases()
        .ok()?
        .into_iter()
        .find(|(d, _)| *d == id)?;
    Some((id, s.name))
}

/// The text fields of `format` as typed, empty ones left out.
fn fields(format: NoteFormat, typed: &Typed, keep_empty: bool) -> Vec<(String, String)> {
    format
        .text_fields()
        .filter_map(|f| {
            let v = typed.get(&input_name(f)).cloned().unwrap_or_default();
            (keep_empty || !v.trim().is_empty()).then(|| (f.to_string(), v))
        })
        .collect()
}

async fn new(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(q): Query<Typed>,
) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    let Some((case, name)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    let format = q
        .get("format")
        .and_then(|f| NoteFormat::parse(f).ok())
        .unwrap_or(NoteFormat::Soap);
    let typed = Typed::from([("date".to_string(), casebook::clock::today())]);
    note_pages::new_note(&ui.bar(home), &case, &name, format, &typed, None).into_response()
}

/// The new-note form again in the format chosen, with what was typed.
async fn reformat(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked_keeping(&typed);
    };
    let Some((case, name)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    let format = typed
        .get("format")
        .and_then(|f| NoteFormat::parse(f).ok())
        .unwrap_or(NoteFormat::Soap);
    note_pages::new_note(&ui.bar(home), &case, &name, format, &typed, None).into_response()
}

/// The note a form describes, or why it cannot be one.
fn input(typed: &Typed) -> Result<NoteInput, String> {
    let format = NoteFormat::parse(typed.get("format").map_or("", String::as_str))
        .map_err(|e| e.to_string())?;
    let get = |k: &str| typed.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut n = NoteInput::new(get("date").unwrap_or_default(), format);
    n.start_time = get("start_time").map(str::to_string);
    n.duration = match get("duration") {
        None => None,
        Some(d) => Some(
            d.parse()
                .map_err(|_| format!("minutes: {d:?} is not a whole number"))?,
        ),
    };
    n.fields = fields(format, typed, false);
    Ok(n)
}

async fn create(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked_keeping(&typed);
    };
    let Some((case, name)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    let added = input(&typed).and_then(|n| home.add_note(&case, n).map_err(|e| e.to_string()));
    match added {
        Ok(note) => to_note(&case, &note),
        Err(e) => {
            let format = typed
                .get("format")
                .and_then(|f| NoteFormat::parse(f).ok())
                .unwrap_or(NoteFormat::Soap);
            (
                StatusCode::BAD_REQUEST,
                note_pages::new_note(&ui.bar(home), &case, &name, format, &typed, Some(&e)),
            )
                .into_response()
        }
    }
}

/// Draws a note, with `typed` and `error` from a refused save.
fn draw(
    ui: &Ui,
    home: &mut Home,
    id: &str,
    note: &str,
    typed: Option<&Typed>,
    error: Option<&str>,
) -> Response {
    let Some((case, name)) = case_of(home, id) else {
        return not_found("no such case");
    };
    match home.show_note(&case, note) {
        Ok(n) => {
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let bar = ui.bar(home);
            (
                status,
                note_pages::note(&bar, &case, &name, &n, typed, error),
            )
                .into_response()
        }
        Err(e) => not_found(&e.to_string()),
    }
}

async fn show(State(ui): State<Arc<Ui>>, Path((id, note)): Path<(String, String)>) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked();
    };
    draw(&ui, home, &id, &note, None, None)
}

/// Saves a draft's form: every field, so a field emptied is saved empty;
/// the core writes only the characters that changed.
fn save_form(home: &mut Home, case: &DocId, note: &str, typed: &Typed) -> Result<String, String> {
    match typed.get("format").map(|f| NoteFormat::parse(f)) {
        Some(Ok(f)) => home
            .edit_note(case, note, &fields(f, typed, true))
            .map_err(|e| e.to_string()),
        _ => Err("the form did not say the note's format; open the note again".to_string()),
    }
}

async fn save(
    State(ui): State<Arc<Ui>>,
    Path((id, note)): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked_keeping(&typed);
    };
    let Some((case, _)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    match save_form(home, &case, &note, &typed) {
        Ok(note) => to_note(&case, &note),
        Err(e) => draw(&ui, home, &id, &note, Some(&typed), Some(&e)),
    }
}

/// Saves what the form holds, then signs it: what is signed is what the
/// person saw.
async fn sign(
    State(ui): State<Arc<Ui>>,
    Path((id, note)): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked_keeping(&typed);
    };
    let Some((case, _)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    let saved = match typed.contains_key("format") {
        true => save_form(home, &case, &note, &typed),
        false => Ok(note.clone()),
    };
    let signed = saved.and_then(|n| home.sign_note(&case, &n).map_err(|e| e.to_string()));
    match signed {
        Ok(note) => to_note(&case, &note),
        Err(e) => draw(&ui, home, &id, &note, Some(&typed), Some(&e)),
    }
}

async fn addendum(
    State(ui): State<Arc<Ui>>,
    Path((id, note)): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked_keeping(&typed);
    };
    let Some((case, _)) = case_of(home, &id) else {
        return not_found("no such case");
    };
    let text = typed.get("text").map_or("", String::as_str);
    match home.add_addendum(&case, &note, text) {
        Ok(note) => to_note(&case, &note),
        Err(e) => draw(&ui, home, &id, &note, Some(&typed), Some(&e.to_string())),
    }
}
