//! The page's routes: each handler parses what the browser sent, calls one
//! operation of the core and draws what it returns. No rule of its own:
//! what the CLI may not do, the page may not either.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use casebook::Home;
use casebook_shared::ids::DocId;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    Ui, audit_pages, devices, guard, live, note_routes, pages, private, profile, setup, sharing,
};

pub(super) fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.css", get(stylesheet))
        .route("/app.js", get(script))
        .route("/unlock", post(unlock))
        .route("/lock", post(lock))
        .route("/cases", post(create_case))
        .route("/cases/new", get(new_case))
        .route("/cases/{id}", get(case))
        .route("/search", post(search))
        .merge(note_routes::routes())
        .merge(private::routes())
        .merge(audit_pages::routes())
        .merge(sharing::routes())
        .merge(devices::routes())
        .merge(setup::routes())
        .merge(live::routes())
        .merge(profile::routes())
        .layer(middleware::from_fn_with_state(ui.clone(), guard::guard))
        .with_state(ui)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("app.css"),
    )
        .into_response()
}

/// The page's one script: saving as the person types and keeping an open
/// page current. Everything works without it.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
        .into_response()
}

/// What a handler answers when the page is locked: the passphrase form.
pub(super) fn locked() -> Response {
    (StatusCode::UNAUTHORIZED, pages::unlock(None)).into_response()
}

/// A refusal said on its own page.
pub(super) fn bad(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, pages::refused(why)).into_response()
}

/// A page drawn again after a refused form (400), or drawn plainly.
pub(super) fn answer(page: maud::Markup, error: Option<&str>) -> Response {
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    (status, page).into_response()
}

/// An error of the core, said on its own page (typed text is kept by the
/// handlers whose forms can fail).
fn failed(e: casebook::Error) -> Response {
    bad(&e.to_string())
}

async fn index(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        if setup::needed(&ui) {
            return setup::page(&Default::default(), None).into_response();
        }
        return pages::unlock(None).into_response();
    };
    match home.list_cases(false) {
        Ok(cases) => pages::cases(&ui.bar(home), &cases).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct UnlockForm {
    passphrase: String,
}

async fn unlock(State(ui): State<Arc<Ui>>, Form(form): Form<UnlockForm>) -> Response {
    let pass = Zeroizing::new(form.passphrase);
    let dir = ui.dir.clone();
    let since = ui.locks();
    // Deriving the key takes a deliberate while: off the async threads,
    // and once. Two handles: the page's, and the background sync's,
    // opened with the first one's key.
    let opened = tokio::task::spawn_blocking(move || {
        let home = Home::open(&dir, pass.as_bytes())?;
        let syncing = home.open_again()?;
        Ok::<_, casebook::Error>((home, syncing))
    })
    .await;
    match opened {
        Ok(Ok((home, syncing))) => {
            // Locked meanwhile (another tab): it stays locked.
            ui.unlocked(since, home, syncing).await;
            Redirect::to("/").into_response()
        }
        Ok(Err(casebook::Error::Store(casebook::store::StoreError::WrongPassphrase))) => (
            StatusCode::UNAUTHORIZED,
            pages::unlock(Some("That passphrase does not open this casebook.")),
        )
            .into_response(),
        Ok(Err(e)) => failed(e),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::refused("unlocking stopped unexpectedly; try again"),
        )
            .into_response(),
    }
}

async fn lock(State(ui): State<Arc<Ui>>) -> Response {
    ui.lock().await;
    Redirect::to("/").into_response()
}

async fn new_case(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    pages::new_case(&ui.bar(home), "", None).into_response()
}

#[derive(Deserialize)]
struct NewCaseForm {
    client_name: String,
}

async fn create_case(State(ui): State<Arc<Ui>>, Form(form): Form<NewCaseForm>) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        let kept = [("client_name".to_string(), form.client_name.clone())];
        return (StatusCode::UNAUTHORIZED, pages::unlock_keeping(&kept)).into_response();
    };
    match home.create_case(form.client_name.trim(), &casebook::clock::today()) {
        Ok(id) => Redirect::to(&pages::case_path(&id)).into_response(),
        // What was typed is shown again with why it was refused.
        Err(e) => (
            StatusCode::BAD_REQUEST,
            pages::new_case(&ui.bar(home), &form.client_name, Some(&e.to_string())),
        )
            .into_response(),
    }
}

/// The most hits a search shows: past this, a person narrows the search
/// rather than reads on.
const SHOWN_HITS: usize = 100;

#[derive(Deserialize)]
struct SearchForm {
    q: String,
    /// A checkbox: present when ticked.
    private: Option<String>,
}

async fn search(State(ui): State<Arc<Ui>>, Form(form): Form<SearchForm>) -> Response {
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked();
    };
    let private = form.private.is_some();
    match home.search_first(form.q.trim(), private, SHOWN_HITS) {
        Ok((hits, total)) => {
            pages::search(&ui.bar(home), &form.q, private, &hits, total).into_response()
        }
        Err(e) => failed(e),
    }
}

async fn case(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let Ok(id) = DocId::from_hex(&id) else {
        return (StatusCode::NOT_FOUND, pages::refused("no such case")).into_response();
    };
    let mut home = ui.home.lock().await;
    let Some(home) = home.as_mut() else {
        return locked();
    };
    match home.open_case(&id) {
        Ok(view) => {
            // Shares are listed for this account's own cases only.
            let shares = match view.shared {
                None => home.shares_ever(&id).ok(),
                Some(_) => None,
            };
            pages::case(&ui.bar(home), &view, shares.as_deref()).into_response()
        }
        Err(e @ casebook::Error::UnknownCase(_)) => {
            (StatusCode::NOT_FOUND, pages::refused(&e.to_string())).into_response()
        }
        Err(e) => failed(e),
    }
}
