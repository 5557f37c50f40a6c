//! Sharing from the page: this account's card and safety number, contacts
//! added from a pasted card and verified by comparing safety numbers (both
//! shown side by side), a case shared with its role, purpose, consent,
//! expiry and the private-notes choice spelled out, an unshare confirmed
//! first, and what others shared with this account. Every step is one
//! operation of the core; a share and an unshare are sent to the relay at
//! once, as the CLI sends them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use casebook::Home;
use casebook::sharing::{ShareState, parse_role};
use casebook_shared::ids::DocId;

use super::Ui;
use super::note_pages::Typed;
use super::note_routes::open_case;
use super::pages::case_path;
use super::routes::{answer, bad, locked};
use super::sharing_pages as draw;

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/people", get(people))
        .route("/people/contacts", post(add_contact))
        .route("/people/verify", post(verify))
        .route("/cases/{id}/share", get(share_form).post(share))
        .route("/cases/{id}/unshare", post(unshare))
        .route("/cases/{id}/unshare/confirm", post(confirm_unshare))
}

/// The people page, with an error and what was typed when a form failed.
fn people_page(ui: &Ui, home: &Home, typed: &Typed, error: Option<&str>) -> Response {
    let contacts = home.contacts().list().unwrap_or_default();
    let mut shared = home.shared_with_me_ever().unwrap_or_default();
    shared.retain(|s| s.state == ShareState::Active);
    let page = draw::people(&ui.bar(home), home, &contacts, &shared, typed, error);
    answer(page, error)
}

async fn people(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    match home.as_ref() {
        Some(home) => people_page(&ui, home, &Typed::new(), None),
        None => locked(),
    }
}

async fn add_contact(State(ui): State<Arc<Ui>>, Form(typed): Form<Typed>) -> Response {
    contacts_change(&ui, &typed, |c, t| {
        c.add(field(t, "contact_name"), field(t, "card"))
            .map(|_| ())
    })
    .await
}

async fn verify(State(ui): State<Arc<Ui>>, Form(typed): Form<Typed>) -> Response {
    contacts_change(&ui, &typed, |c, t| {
        c.verify(field(t, "contact"), field(t, "number"))
            .map(|_| ())
    })
    .await
}

/// A form's field, empty if absent.
fn field<'t>(typed: &'t Typed, k: &str) -> &'t str {
    typed.get(k).map_or("", String::as_str)
}

/// One change to the contacts from a form; a refusal draws the people
/// page again with what was typed and why.
async fn contacts_change(
    ui: &Ui,
    typed: &Typed,
    change: impl FnOnce(&casebook::sharing::Contacts<'_>, &Typed) -> casebook::Result<()>,
) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    match change(&home.contacts(), typed) {
        Ok(()) => Redirect::to("/people").into_response(),
        Err(e) => people_page(ui, home, typed, Some(&e.to_string())),
    }
}

/// The share form for `case`, with what was typed and why it failed.
fn share_page(
    ui: &Ui,
    home: &Home,
    case: &DocId,
    name: &str,
    typed: &Typed,
    error: Option<&str>,
) -> Response {
    let contacts = home.contacts().list().unwrap_or_default();
    let page = draw::share(&ui.bar(home), case, name, &contacts, typed, error);
    answer(page, error)
}

async fn share_form(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let mut held = ui.home.lock().await;
    match open_case(&mut held, &id, None) {
        Ok((home, case, name)) => share_page(&ui, home, &case, &name, &Typed::new(), None),
        Err(refused) => *refused,
    }
}

async fn share(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, Some(&typed)) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let get = |k: &str| typed.get(k).map_or("", |v| v.trim());
    let asked = (|| {
        let role = parse_role(get("role")).map_err(|e| e.to_string())?;
        let expires = match get("expires") {
            "" => None,
            d => Some(
                casebook::clock::parse_until(d)
                    .ok_or_else(|| format!("Expires: {d:?} is not a date written YYYY-MM-DD"))?,
            ),
        };
        let private = match get("private") {
            "with" => true,
            "without" => false,
            _ => return Err("say whether the psychotherapy notes are shared too".to_string()),
        };
        Ok((role, expires, private))
    })();
    let (role, expires, private) = match asked {
        Ok(a) => a,
        Err(e) => return share_page(&ui, home, &case, &name, &typed, Some(&e)),
    };
    let relay = match home.connect().await {
        Ok(relay) => relay,
        Err(e) => return share_page(&ui, home, &case, &name, &typed, Some(&e.to_string())),
    };
    let (contact, purpose, consent) = (get("contact"), get("purpose"), get("consent"));
    let shared = home
        .share(
            &relay, &case, contact, role, purpose, consent, expires, private,
        )
        .await;
    relay.close().await;
    // The background sync sends what was recorded, within moments: the
    // page's one sender, so that two never race to append the same entry.
    match shared {
        Err(e) => share_page(&ui, home, &case, &name, &typed, Some(&e.to_string())),
        Ok(_) => Redirect::to(&case_path(&case)).into_response(),
    }
}

/// The contact a share belongs to, by the account id a form carries.
fn contact_of(home: &Home, account: &str) -> Option<String> {
    home.contacts()
        .list()
        .ok()?
        .into_iter()
        .find(|c| c.account.to_hex() == account)
        .map(|c| c.name)
}

/// Asks before an unshare: it cannot be taken back (a new share can be made).
async fn unshare(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, name) = match open_case(&mut held, &id, None) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let account = typed.get("with").map_or("", String::as_str);
    match contact_of(home, account) {
        Some(contact) => {
            draw::confirm_unshare(&ui.bar(home), &case, &name, &contact, account).into_response()
        }
        None => bad("no such contact"),
    }
}

async fn confirm_unshare(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Form(typed): Form<Typed>,
) -> Response {
    let mut held = ui.home.lock().await;
    let (home, case, _) = match open_case(&mut held, &id, None) {
        Ok(open) => open,
        Err(refused) => return *refused,
    };
    let Some(contact) = contact_of(home, typed.get("with").map_or("", String::as_str)) else {
        return bad("no such contact");
    };
    if let Err(e) = home.unshare(&case, &contact) {
        return bad(&e.to_string());
    }
    // Sent by the background sync, as a share is.
    Redirect::to(&case_path(&case)).into_response()
}
