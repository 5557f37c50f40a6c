//! Devices from the page: the account's devices with their names, pairing
//! a new one (the page shows the code and waits for it), revoking one
//! after a confirmation, and replacing the recovery words, which are shown
//! once. The recovery key is never revoked without new words in the same
//! step, as in the CLI: without it a lost device is a lost account.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use casebook::Home;
use casebook::devices::DeviceRow;

use super::Ui;
use super::devices_pages as draw;
use super::note_pages::Typed;
use super::routes::{bad, locked};

/// How long the page waits for a new device to answer its code.
const PAIR_WAIT: Duration = Duration::from_secs(180);

/// Where a pairing begun from the page stands. It lives beside the home,
/// not in it: the page that shows the code must not wait for the home the
/// pairing holds.
#[derive(Default)]
pub(super) enum Pairing {
    #[default]
    Idle,
    Waiting {
        code: String,
        cancel: Option<tokio::sync::oneshot::Sender<()>>,
    },
    Paired(String),
    Failed(String),
}

impl Pairing {
    /// Stops a pairing that is waiting (on "Cancel", and before a lock).
    pub(super) fn cancel(&mut self) {
        if let Pairing::Waiting { cancel, .. } = self
            && let Some(c) = cancel.take()
        {
            let _ = c.send(());
        }
    }
}

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/pair", get(pairing).post(pair))
        .route("/devices/pair/cancel", post(cancel))
        .route("/devices/revoke", post(revoke))
        .route("/devices/revoke/confirm", post(confirm_revoke))
        .route("/devices/recovery-words", post(ask_new_words))
        .route("/devices/recovery-words/confirm", post(new_words))
}

async fn list(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    match home.devices() {
        Ok(rows) => draw::list(&ui.bar(home), &rows).into_response(),
        Err(e) => bad(&e.to_string()),
    }
}

/// Starts a pairing: a code now, and a task that holds the home while it
/// waits for the new device, as `device add` does.
async fn pair(State(ui): State<Arc<Ui>>) -> Response {
    // One pairing at a time: an earlier one still waiting stops first, so
    // that it gives the home back.
    ui.pairing.lock().expect("never poisoned").cancel();
    if ui.home.lock().await.is_none() {
        return locked();
    }
    let code = casebook::pairing::new_code();
    let (cancel, cancelled) = tokio::sync::oneshot::channel();
    *ui.pairing.lock().expect("never poisoned") = Pairing::Waiting {
        code: code.clone(),
        cancel: Some(cancel),
    };
    tokio::spawn(run_pairing(ui.clone(), code, cancelled));
    Redirect::to("/devices/pair").into_response()
}

async fn run_pairing(ui: Arc<Ui>, code: String, cancelled: tokio::sync::oneshot::Receiver<()>) {
    let mut held = ui.home.lock().await;
    let outcome = match held.as_mut() {
        None => Err("casebook locked before the new device answered".to_string()),
        Some(home) => pair_with(home, &code, cancelled).await,
    };
    let mut p = ui.pairing.lock().expect("never poisoned");
    // A newer pairing replaced this one: it says nothing.
    if matches!(&*p, Pairing::Waiting { code: c, .. } if *c == code) {
        *p = match outcome {
            Ok(id) => Pairing::Paired(id),
            Err(e) => Pairing::Failed(e),
        };
    }
}

/// Pairs, until cancelled. Once paired, a cancel no longer stops anything:
/// the new device is in the account, and the page says so.
async fn pair_with(
    home: &mut Home,
    code: &str,
    cancelled: tokio::sync::oneshot::Receiver<()>,
) -> Result<String, String> {
    let relay = home.connect().await.map_err(|e| e.to_string())?;
    let paired = tokio::select! {
        r = home.pair_add(&relay, code, PAIR_WAIT) => r.map_err(|e| e.to_string()),
        _ = cancelled => Err("Pairing was cancelled.".to_string()),
    };
    // What this device holds goes to the relay with the background sync,
    // for the new device to fetch.
    relay.close().await;
    paired.map(|id| id.short())
}

/// The code and what became of it; drawn without the home, which the
/// pairing holds while it waits.
async fn pairing(State(ui): State<Arc<Ui>>) -> Response {
    let p = ui.pairing.lock().expect("never poisoned");
    draw::pairing(&p).into_response()
}

async fn cancel(State(ui): State<Arc<Ui>>) -> Response {
    ui.pairing.lock().expect("never poisoned").cancel();
    Redirect::to("/devices/pair").into_response()
}

/// The device a form names, among the account's.
fn device_of(home: &Home, typed: &Typed) -> Option<DeviceRow> {
    let id = typed.get("device")?;
    home.devices()
        .ok()?
        .into_iter()
        .find(|d| d.id.to_hex() == *id && !d.revoked)
}

/// Asks before a revocation.
async fn revoke(State(ui): State<Arc<Ui>>, Form(typed): Form<Typed>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    match device_of(home, &typed) {
        Some(d) if !d.this_device => draw::confirm_revoke(&ui.bar(home), &d).into_response(),
        Some(_) => {
            bad("This device cannot revoke itself: revoke it from another device of the account.")
        }
        None => bad("no such device"),
    }
}

async fn confirm_revoke(State(ui): State<Arc<Ui>>, Form(typed): Form<Typed>) -> Response {
    let mut held = ui.home.lock().await;
    let Some(home) = held.as_mut() else {
        return locked();
    };
    let Some(d) = device_of(home, &typed).filter(|d| !d.this_device) else {
        return bad("no such device");
    };
    if d.kind == "recovery" {
        return bad("The recovery key is replaced, not revoked: use \"New recovery words\".");
    }
    // The new keys go with the background sync, the page's one sender.
    let revoked = async {
        let relay = home.connect().await?;
        let rotated = home.revoke(&relay, &d.id).await;
        relay.close().await;
        rotated
    };
    match revoked.await {
        Ok(_) => Redirect::to("/devices").into_response(),
        Err(e) => bad(&e.to_string()),
    }
}

/// Asks before new recovery words: the old ones stop working, and the new
/// ones are shown once.
async fn ask_new_words(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    match home.as_ref() {
        Some(home) => draw::confirm_new_words(&ui.bar(home)).into_response(),
        None => locked(),
    }
}

/// Replaces the recovery words (the old ones stop working) and shows the
/// new ones once.
async fn new_words(State(ui): State<Arc<Ui>>) -> Response {
    let mut held = ui.home.lock().await;
    let Some(home) = held.as_mut() else {
        return locked();
    };
    let replaced = async {
        let relay = home.connect().await?;
        let words = home.replace_recovery_words(&relay).await;
        // The documents' new keys go with the background sync.
        relay.close().await;
        words
    };
    match replaced.await {
        Ok((words, _)) => draw::words(&ui.bar(home), words.as_str()).into_response(),
        Err(e) => {
            let why = format!("No new recovery words were made: {e}");
            bad(&why)
        }
    }
}
