//! What every request passes before a handler sees it, and the headers
//! every answer carries. Each refusal has a test in `tests/ui_page.rs`
//! that sends the bad request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Ui;
use super::pages;

/// The page's own script and stylesheet and nothing else: no inline
/// script, no frame, no form posting elsewhere, no base URL.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
                   img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The header `app.js` puts on the requests it makes by itself.
const BACKGROUND: &str = "x-casebook-background";

/// Equal without telling, by how long it took, how much of it matched.
fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether any cookie `name` in a request's Cookie headers is `value`. Any,
/// not the first: a page on another port of this machine can set a cookie
/// of the same name (cookies do not keep ports apart) to shadow this one.
fn has_cookie(headers: &HeaderMap, name: &str, value: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(k, v)| k == name && same(v, value))
}

/// The `token` parameter of a query string.
fn token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, pages::refused(why)).into_response()
}

/// Whether a change comes from this page itself. A browser says where a
/// request comes from in `Sec-Fetch-Site`, which no page can set; where it
/// does not send that, its `Origin` must be this page's. (The page's
/// `Referrer-Policy: no-referrer` makes a browser send `Origin: null` with
/// its own form posts, so `null` alone proves nothing either way.) A
/// request that says neither is refused.
fn same_origin(ui: &Ui, headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = header(headers, header::ORIGIN);
    if origin.is_some_and(|o| o != "null" && o != ui.origin) {
        return false;
    }
    match site {
        Some(site) => site == "same-origin",
        None => origin == Some(ui.origin.as_str()),
    }
}

/// Lets a request through to the page, or refuses it.
pub(super) async fn guard(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let mut answer = check(&ui, req, next).await;
    let h = answer.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    answer
}

async fn check(ui: &Ui, req: Request, next: Next) -> Response {
    // DNS rebinding: a name of the attacker's pointed at 127.0.0.1 arrives
    // with that name as its Host.
    if header(req.headers(), header::HOST) != Some(ui.host.as_str()) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("this page answers only at {}", ui.origin),
        );
    }
    // Another site, or a page on another port of this machine (the same
    // "site" to a browser, so the cookie rides along), reading or loading
    // anything here: refused, so that it can neither keep the page from
    // locking nor write a line in the audit by making it draw a record.
    let site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return refuse(StatusCode::FORBIDDEN, "this page answers only itself");
    }
    let signed_in = has_cookie(req.headers(), &ui.cookie, &ui.session);
    if let Some(given) = token(req.uri().query()) {
        // The printed link opened again in a browser already let in.
        if signed_in && req.method() == Method::GET {
            return see_other("/");
        }
        return exchange(ui, given, req.method());
    }
    if !signed_in {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "open the address `casebook ui` printed (start it again for a new one)",
        );
    }
    let changes = req.method() != Method::GET && req.method() != Method::HEAD;
    if changes && !same_origin(ui, req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a change may come only from this page",
        );
    }
    // What the page's script asks for by itself (keeping an open page
    // current) is not use: an open tab left alone still locks.
    let background = req.headers().contains_key(BACKGROUND);
    if !background && !matches!(req.uri().path(), "/app.css" | "/app.js") {
        ui.used();
    }
    next.run(req).await
}

fn see_other(to: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .body(axum::body::Body::empty())
        .expect("a redirect from valid parts")
}

/// Trades the printed link's one-time token for the session cookie, and
/// sends the browser on without the token in its address bar or history.
fn exchange(ui: &Ui, given: &str, method: &Method) -> Response {
    if method != Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "open the link, do not post to it",
        );
    }
    let mut token = ui.token.lock().expect("never poisoned");
    if !token.as_deref().is_some_and(|t| same(t, given)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this link was used already, or is not the one printed: start `casebook ui` again",
        );
    }
    *token = None;
    ui.used();
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        ui.cookie, ui.session
    );
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/")
        .header(header::SET_COOKIE, cookie)
        .body(axum::body::Body::empty())
        .expect("a redirect from valid parts")
}
