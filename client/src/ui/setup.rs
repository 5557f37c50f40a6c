//! First run from the page: where no home exists yet, the page sets one up
//! (a new account, checked against the relay before anything is written,
//! with its recovery words shown once and a confirmation that they were
//! written down) or joins this machine to an account by the short code
//! another device shows. Either way the page is unlocked afterwards, as if
//! the passphrase had just been typed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use casebook::Home;
use maud::{Markup, html};
use zeroize::Zeroizing;

use super::Ui;
use super::note_pages::Typed;
use super::pages::{error_note, layout};

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/setup", post(create))
        .route("/setup/join", post(join))
        .route("/setup/done", post(done))
}

/// Whether the page's home is still to be made.
pub(super) fn needed(ui: &Ui) -> bool {
    !Home::exists(&ui.dir)
}

/// What a setup form holds, the passphrases apart (never sent back).
struct Asked {
    relay: String,
    fingerprint: [u8; 32],
    device: Option<String>,
    passphrase: Zeroizing<String>,
}

/// Checks the fields both forms share.
fn asked(typed: &mut Typed) -> Result<Asked, String> {
    let pass = Zeroizing::new(typed.remove("passphrase").unwrap_or_default());
    let again = Zeroizing::new(typed.remove("passphrase_again").unwrap_or_default());
    let get = |k: &str| typed.get(k).map_or("", |v| v.trim());
    let relay = get("relay").to_string();
    if relay.is_empty() {
        return Err("Relay address: give the address whoever runs the relay gave you".into());
    }
    let fingerprint = casebook_shared::fingerprint::parse(get("fingerprint")).ok_or_else(|| {
        "Relay fingerprint: copy the sha256:... line the relay printed when it started".to_string()
    })?;
    let device = match get("device_name") {
        "" => None,
        n => Some(
            casebook::names::check(n)
                .map_err(|e| e.to_string())?
                .to_string(),
        ),
    };
    if *pass != *again {
        return Err("The two passphrases differ; type the same one twice.".into());
    }
    casebook::store::check_new_passphrase(&pass).map_err(|e| e.to_string())?;
    Ok(Asked {
        relay,
        fingerprint,
        device,
        passphrase: pass,
    })
}

/// Names this device, opens the background sync's own handle, and unlocks
/// the page with the home just made.
async fn begin(ui: &Arc<Ui>, mut home: Home, a: &Asked) -> Result<(), String> {
    if let Some(n) = &a.device {
        let me = home.device_id();
        home.name_device(&me, n).map_err(|e| e.to_string())?;
    }
    let since = ui.locks();
    let syncing = home.open_again().map_err(|e| e.to_string())?;
    ui.unlocked(since, home, syncing).await;
    Ok(())
}

async fn create(State(ui): State<Arc<Ui>>, Form(mut typed): Form<Typed>) -> Response {
    if !needed(&ui) {
        return Redirect::to("/").into_response();
    }
    let a = match asked(&mut typed) {
        Ok(a) => a,
        Err(e) => return refused(&typed, &e),
    };
    let name = typed.get("name").map_or("", |v| v.trim()).to_string();
    let made = Home::init_online(
        &ui.dir,
        a.passphrase.as_bytes(),
        &name,
        &a.relay,
        a.fingerprint,
        &Default::default(),
    )
    .await;
    let (home, words) = match made {
        Ok(made) => made,
        Err(e) => return refused(&typed, &format!("Nothing was set up: {e}")),
    };
    // The account exists now: its words are shown whatever happens next.
    let opened = begin(&ui, home, &a).await.err();
    words_page(words.as_str(), opened.as_deref()).into_response()
}

async fn join(State(ui): State<Arc<Ui>>, Form(mut typed): Form<Typed>) -> Response {
    if !needed(&ui) {
        return Redirect::to("/").into_response();
    }
    let a = match asked(&mut typed) {
        Ok(a) => a,
        Err(e) => return refused(&typed, &e),
    };
    let code = typed.get("code").map_or("", |v| v.trim()).to_string();
    let joined = casebook::pairing::join(
        &ui.dir,
        a.passphrase.as_bytes(),
        &code,
        &a.relay,
        a.fingerprint,
    )
    .await;
    let home = match joined {
        Ok(home) => home,
        Err(e) => return refused(&typed, &format!("Not joined: {e}")),
    };
    match begin(&ui, home, &a).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => refused(&typed, &e),
    }
}

/// The words were written down: on to the cases.
async fn done() -> Response {
    Redirect::to("/").into_response()
}

fn refused(typed: &Typed, why: &str) -> Response {
    (StatusCode::BAD_REQUEST, page(typed, Some(why))).into_response()
}

fn connection_fields(typed: &Typed, form: &str) -> Markup {
    let value = |k: &str| typed.get(k).map_or("", String::as_str);
    let id = |k: &str| format!("{form}_{k}");
    html! {
        label for=(id("relay")) { "Relay address" }
        input id=(id("relay")) name="relay" placeholder="relay.clinic.example:4433" value=(value("relay")) required;
        label for=(id("fingerprint")) { "Relay fingerprint" }
        input id=(id("fingerprint")) name="fingerprint" placeholder="sha256:…" autocomplete="off" value=(value("fingerprint")) required;
        label for=(id("device_name")) { "This device's name (optional)" }
        input id=(id("device_name")) name="device_name" placeholder="e.g. office laptop" value=(value("device_name"));
        label for=(id("passphrase")) { "Passphrase for this device" }
        input id=(id("passphrase")) type="password" name="passphrase" autocomplete="new-password" minlength="8" required;
        label for=(id("passphrase_again")) { "Passphrase again" }
        input id=(id("passphrase_again")) type="password" name="passphrase_again" autocomplete="new-password" minlength="8" required;
    }
}

/// The first-run page: a new account, or this device joined to one.
pub(super) fn page(typed: &Typed, error: Option<&str>) -> Markup {
    let value = |k: &str| typed.get(k).map_or("", String::as_str);
    layout(
        "Set up",
        None,
        html! {
            h1 { "Welcome to casebook" }
            p { "Your records are kept on this machine, encrypted with your passphrase. The relay your clinic runs passes them between your devices and colleagues, and can read none of it." }
            (error_note(error))
            section {
                h2 { "Set up a new account" }
                form method="post" action="/setup" {
                    label for="new_name" { "Your name" }
                    input #new_name name="name" placeholder="as it appears on signed notes" value=(value("name")) required;
                    (connection_fields(typed, "new"))
                    button type="submit" { "Set up" }
                }
            }
            section {
                h2 { "Add this device to your account" }
                p { "On a device that already has casebook, open Devices and choose \"Pair a new device\"; type the code it shows here." }
                form method="post" action="/setup/join" {
                    label for="join_code" { "Pairing code" }
                    input #join_code name="code" autocomplete="off" value=(value("code")) required;
                    (connection_fields(typed, "join"))
                    button type="submit" { "Join" }
                }
            }
        },
    )
}

/// The recovery words of a new account, shown this once; with why the
/// page could not open the new home, if it could not (the passphrase
/// does, at the next start).
fn words_page(words: &str, not_opened: Option<&str>) -> Markup {
    layout(
        "Recovery words",
        None,
        html! {
            h1 { "Your recovery words" }
            p.mark { "If every device is lost, these words restore your account. Write them on paper and keep them somewhere safe: they are shown only this once, and casebook cannot show them again." }
            p { code.words { (words) } }
            @if let Some(why) = not_opened {
                p.error role="alert" { "Your account is set up, but this page could not open it (" (why) "): write the words down, then start casebook ui again and unlock with your passphrase." }
            }
            form method="post" action="/setup/done" {
                label.inline {
                    input type="checkbox" name="written" value="yes" required;
                    " I have written these words down"
                }
                br;
                button type="submit" { "Continue" }
            }
        },
    )
}
