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
use casebook::notes::{ChangeHash, NoteFormat, NoteInput, SCORE_PREFIX};
use casebook_shared::ids::DocId;

use super::Ui;
use super::note_pages::{self, Typed, input_name};
use super::pages::{self, case_path};
use super::routes::locked;

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

/// The page locked itself while a form was being filled: nothing is saved,
/// and what was typed comes back on the unlock page, never thrown away.
fn locked_keeping(typed: &Typed) -> Response {
    let mut kept: Vec<(String, String)> = typed
        .iter()
        .filter(|(k, _)| {
            k.starts_with("f_") || k.starts_with("s_") || k.starts_with("new_") || *k == "text"
        })
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| match k.strip_prefix("s_") {
            Some(m) => (format!("{m} score"), v.clone()),
            None => (k.trim_start_matches("f_").to_string(), v.clone()),
        })
        .collect();
    kept.sort();
    (StatusCode::UNAUTHORIZED, pages::unlock_keeping(&kept)).into_response()
}

/// Back to a note's page.
fn to_note(case: &DocId, note: &str) -> Response {
    Redirect::to(&format!("{}/notes/{note}", case_path(case))).into_response()
}

/// The case's id and its client's name, from the list the core keeps.
pub(super) fn case_of(home: &Home, id: &str) -> Option<(DocId, String)> {
    let id = DocId::from_hex(id).ok()?;
    let (_, s) = home
        .docs()
        .cases()
        .ok()?
        .into_iter()
        .find(|(d, _)| *d == id)?;
    Some((id, s.name))
}

/// The unlocked home and the case `id` names, with its client's name; or
/// the page that says why not (with what was typed, when a form arrived
/// after the page had locked itself).
pub(super) fn open_case<'h>(
    held: &'h mut Option<Home>,
    id: &str,
    typed: Option<&Typed>,
) -> Result<(&'h mut Home, DocId, String), Box<Response>> {
    let home = held
        .as_mut()
        .ok_or_else(|| Box::new(typed.map_or_else(locked, locked_keeping)))?;
    let (case, name) = case_of(home, id).ok_or_else(|| Box::new(not_found("no such case")))?;
    Ok((home, case, name))
}

/// The format a form names, SOAP if none.
fn format_of(typed: &Typed) -> NoteFormat {
    typed
        .get("format")
        .and_then(|f| NoteFormat::parse(f).ok())
        .unwrap_or(NoteFormat::Soap)
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

/// The scores a form holds as `score:MEASURE` fields: every measure's box
/// (an empty one removes its score when `keep_empty`) and the measure
/// named in "Another measure".
fn scores(typed: &Typed, keep_empty: bool) -> Vec<(String, String)> {
    let mut given: Vec<(String, String)> = typed
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("s_")?, v)))
        .filter(|(_, v)| keep_empty || !v.trim().is_empty())
        .map(|(m, v)| (format!("{SCORE_PREFIX}{m}"), v.clone()))
        .collect();
    given.sort();
    let named = typed.get("new_measure").map_or("", |m| m.trim());
    if !named.is_empty() {
        let score = typed.get("new_score").cloned().unwrap_or_default();
        given.push((format!("{SCORE_PREFIX}{named}"), score));
    }
    given
}

async fn new(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(q): Query<Typed>,
) -> Response {
    let typed = Typed::from([
        ("date".to_string(), casebook::clock::today()),
        ("format".to_string(), format_of(&q).as_str().to_string()),
    ]);
    new_form(&ui, &id, &typed, None).await
}

/// The new-note form again in the format chosen, with what was typed.
async fn reformat(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    new_form(&ui, &id, &typed, Some(&typed)).await
}

/// The new-note form in the format `typed` names, holding what it holds.
async fn new_form(ui: &Ui, id: &str, typed: &Typed, kept: Option<&Typed>) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, id, kept) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let bar = ui.bar(home);
    note_pages::new_note(&bar, &case, &name, format_of(typed), typed, None).into_response()
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
    n.fields.extend(scores(typed, false));
    Ok(n)
}

async fn create(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(&typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let added = input(&typed).and_then(|n| home.add_note(&case, n).map_err(|e| e.to_string()));
    match added {
        Ok(note) => to_note(&case, &note),
        Err(e) => {
            let bar = ui.bar(home);
            let page =
                note_pages::new_note(&bar, &case, &name, format_of(&typed), &typed, Some(&e));
            (StatusCode::BAD_REQUEST, page).into_response()
        }
    }
}

/// Draws a note of `case`, with `typed` and `error` from a refused save.
fn draw(
    ui: &Ui,
    home: &mut Home,
    (case, name): (&DocId, &str),
    note: &str,
    typed: Option<&Typed>,
    error: Option<&str>,
) -> Response {
    match home.show_note_at(case, note) {
        Ok((n, now)) => {
            let status = match error {
                Some(_) => StatusCode::BAD_REQUEST,
                None => StatusCode::OK,
            };
            // Text typed on a form drawn earlier stays tied to the version
            // it was typed over.
            let heads = match typed.and_then(|t| t.get("heads")) {
                Some(h) => h.clone(),
                None => note_pages::heads_text(&now),
            };
            let bar = ui.bar(home);
            let page = note_pages::note(&bar, (case, name), (&n, &heads), typed, error);
            (status, page).into_response()
        }
        Err(e) => not_found(&e.to_string()),
    }
}

async fn show(State(ui): State<Arc<Ui>>, Path((id, note)): Path<(String, String)>) -> Response {
    let mut held = ui.home.lock().await;
    match open_case(&mut held, &id, None) {
        Ok((home, case, name)) => draw(&ui, home, (&case, &name), &note, None, None),
        Err(refused) => *refused,
    }
}

/// The heads a form says it was drawn at.
fn parse_heads(text: &str) -> Result<Vec<ChangeHash>, String> {
    text.split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            h.parse()
                .map_err(|_| "the form's version is garbled; open the note again".to_string())
        })
        .collect()
}

/// Saves a draft's form: every field, so a field emptied is saved empty.
/// From a form that says the version it was drawn at, only what the person
/// changed since is written; without one, the fields as they are.
pub(super) fn save_form(
    home: &mut Home,
    case: &DocId,
    note: &str,
    typed: &Typed,
) -> Result<String, String> {
    let Some(Ok(format)) = typed.get("format").map(|f| NoteFormat::parse(f)) else {
        return Err("the form did not say the note's format; open the note again".to_string());
    };
    let mut all: Vec<(String, String)> = ["date", "start_time", "duration"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), typed.get(k)?.trim().to_string())))
        .collect();
    all.extend(fields(format, typed, true));
    all.extend(scores(typed, true));
    match typed.get("heads") {
        Some(h) => home.edit_note_from(case, note, &all, &parse_heads(h)?),
        None => home.edit_note(case, note, &all),
    }
    .map_err(|e| e.to_string())
}

/// One change to a note from a form: `change` runs on the unlocked home
/// and returns the note's id, then the browser goes back to the note; a
/// refusal draws the note again with what was typed and why.
async fn change_note(
    ui: &Ui,
    (id, note): (String, String),
    typed: &Typed,
    change: impl FnOnce(&mut Home, &DocId, &str) -> Result<String, String>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    match change(home, &case, &note) {
        Ok(note) => to_note(&case, &note),
        Err(e) => draw(ui, home, (&case, &name), &note, Some(typed), Some(&e)),
    }
}

async fn save(
    State(ui): State<Arc<Ui>>,
    Path(at): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    change_note(&ui, at, &typed, |home, case, note| {
        save_form(home, case, note, &typed)
    })
    .await
}

/// Saves what the form holds, then signs it: what is signed is what the
/// person saw. If the save merged in words another device wrote meanwhile,
/// nothing is signed: the note is shown again as it now reads (what was
/// typed is in it), to be read before signing.
async fn sign(
    State(ui): State<Arc<Ui>>,
    Path((id, note)): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(&typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    if typed.contains_key("format") {
        if let Err(e) = save_form(home, &case, &note, &typed) {
            return draw(&ui, home, (&case, &name), &note, Some(&typed), Some(&e));
        }
        let seen = home.note_now(&case, &note).map(|(n, _)| {
            n.fields
                .iter()
                .all(|(k, v)| typed.get(&input_name(k)).is_none_or(|t| t == v))
        });
        if let Ok(false) = seen {
            let why = "Another device changed this note while you wrote; your words are saved with theirs. Read it again, then sign.";
            return draw(&ui, home, (&case, &name), &note, None, Some(why));
        }
    }
    match home.sign_note(&case, &note) {
        Ok(note) => to_note(&case, &note),
        // Saved already: drawn as it now is, so its version is current.
        Err(e) => draw(&ui, home, (&case, &name), &note, None, Some(&e.to_string())),
    }
}

async fn addendum(
    State(ui): State<Arc<Ui>>,
    Path(at): Path<(String, String)>,
    Form(typed): Form<Typed>,
) -> Response {
    let text = typed.get("text").cloned().unwrap_or_default();
    change_note(&ui, at, &typed, |home, case, note| {
        home.add_addendum(case, note, &text)
            .map_err(|e| e.to_string())
    })
    .await
}
