//! The audit trail and the accounting of disclosures, each filterable by
//! case and date, and a button that checks the trail's hash chain. The
//! filters travel as a GET query of a case id and dates: nothing a person
//! typed about a client reaches an address.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use casebook::Home;
use casebook::app::CaseListed;
use casebook::audit_view::Selection;
use casebook::home::AuditRecord;
use casebook_shared::ids::DocId;
use maud::{Markup, html};
use serde::Deserialize;

use super::Ui;
use super::pages::{Bar, error_note, layout};
use super::routes::locked;

pub(super) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/audit", get(audit))
        .route("/audit/verify", post(verify))
        .route("/disclosures", get(disclosures))
}

/// The filter form's fields, each optional.
#[derive(Deserialize, Default, Clone)]
struct Filter {
    #[serde(default)]
    case: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl Filter {
    /// The selection the form asks for, or what is wrong with it.
    fn selection(&self, disclosures_only: bool) -> Result<Selection, String> {
        let day = |what: &str, s: &str, parse: fn(&str) -> Option<u64>| match s.trim() {
            "" => Ok(None),
            d => parse(d)
                .map(Some)
                .ok_or_else(|| format!("{what}: {d:?} is not a date written YYYY-MM-DD")),
        };
        let case = match self.case.trim() {
            "" => None,
            c => Some(DocId::from_hex(c).map_err(|_| "no such case".to_string())?),
        };
        Ok(Selection {
            case,
            since: day("From", &self.since, casebook::clock::parse_instant)?,
            until: day("To", &self.until, casebook::clock::parse_until)?,
            disclosures_only,
        })
    }
}

/// A case's client name, by id, from the list the core keeps.
fn case_name(cases: &[CaseListed], id: Option<DocId>) -> String {
    match id {
        None => "–".into(),
        Some(id) => cases.iter().find(|c| c.id == id).map_or_else(
            || format!("case {}", id.short()),
            |c| c.summary.name.clone(),
        ),
    }
}

/// The entries a filter selects, with every case (closed ones too) to name
/// them by; or why not.
fn select(
    home: &Home,
    f: &Filter,
    disclosures: bool,
) -> (Vec<CaseListed>, Result<Vec<AuditRecord>, String>) {
    let cases = home.list_cases(true).unwrap_or_default();
    let entries = f
        .selection(disclosures)
        .and_then(|s| home.trail().select(&s).map_err(|e| e.to_string()));
    (cases, entries)
}

async fn audit(State(ui): State<Arc<Ui>>, Query(f): Query<Filter>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    let (cases, entries) = select(home, &f, false);
    audit_page(&ui.bar(home), &cases, &f, entries, None).into_response()
}

async fn verify(State(ui): State<Arc<Ui>>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    let checked = match home.trail().verify() {
        Ok(n) => Ok(format!(
            "The audit trail is intact: {n} entries, each chained to the one before."
        )),
        Err(e) => Err(format!("The audit trail does not check out: {e}")),
    };
    let f = Filter::default();
    let (cases, entries) = select(home, &f, false);
    audit_page(&ui.bar(home), &cases, &f, entries, Some(checked)).into_response()
}

async fn disclosures(State(ui): State<Arc<Ui>>, Query(f): Query<Filter>) -> Response {
    let home = ui.home.lock().await;
    let Some(home) = home.as_ref() else {
        return locked();
    };
    let (cases, entries) = select(home, &f, true);
    disclosures_page(&ui.bar(home), &cases, &f, entries).into_response()
}

/// The case and date filter, sent back to `action`.
fn filter_form(action: &str, cases: &[CaseListed], f: &Filter) -> Markup {
    html! {
        form.filter method="get" action=(action) {
            label for="case" { "Case" }
            select #case name="case" {
                option value="" { "Every case" }
                @for c in cases {
                    option value=(c.id.to_hex()) selected[f.case == c.id.to_hex()] { (c.summary.name) }
                }
            }
            label for="since" { "From" }
            input #since type="date" name="since" value=(f.since);
            label for="until" { "To" }
            input #until type="date" name="until" value=(f.until);
            button type="submit" { "Show" }
        }
    }
}

/// The two pages' links to each other.
fn nav(current: &str) -> Markup {
    html! {
        nav.tabs aria-label="Records of access" {
            a href="/audit" aria-current=[(current == "audit").then_some("page")] { "Audit trail" }
            a href="/disclosures" aria-current=[(current == "disclosures").then_some("page")] { "Disclosures" }
        }
    }
}

fn audit_page(
    bar: &Bar,
    cases: &[CaseListed],
    f: &Filter,
    entries: Result<Vec<AuditRecord>, String>,
    checked: Option<Result<String, String>>,
) -> Markup {
    layout(
        "Audit trail",
        Some(bar),
        html! {
            (nav("audit"))
            h1 { "Audit trail" }
            p.meta { "Every opening, change, share and export of a record on this account's devices, newest first." }
            form method="post" action="/audit/verify" {
                button type="submit" { "Verify the audit trail" }
            }
            @match &checked {
                Some(Ok(said)) => { p.signed role="status" { (said) } }
                Some(Err(said)) => { p.error role="alert" { (said) } }
                None => {}
            }
            (filter_form("/audit", cases, f))
            @match &entries {
                Err(e) => { (error_note(Some(e))) }
                Ok(entries) if entries.is_empty() => { p { "No entries." } }
                Ok(entries) => { table {
                    thead { tr { th { "When" } th { "Device" } th { "Case" } th { "What" } } }
                    tbody {
                        @for a in entries {
                            tr {
                                td { (casebook::clock::local(a.at)) }
                                td { (a.device.short()) }
                                td { (case_name(cases, a.case)) }
                                td { (a.what) }
                            }
                        }
                    }
                } }
            }
        },
    )
}

fn disclosures_page(
    bar: &Bar,
    cases: &[CaseListed],
    f: &Filter,
    entries: Result<Vec<AuditRecord>, String>,
) -> Markup {
    layout(
        "Disclosures",
        Some(bar),
        html! {
            (nav("disclosures"))
            h1 { "Accounting of disclosures" }
            p.meta { "Every share granted and every export made to someone, with its purpose and consent." }
            (filter_form("/disclosures", cases, f))
            @match &entries {
                Err(e) => { (error_note(Some(e))) }
                Ok(entries) if entries.is_empty() => { p { "No disclosures recorded." } }
                Ok(entries) => { table {
                    thead { tr { th { "Date" } th { "Case" } th { "To" } th { "What" } th { "Purpose" } th { "Consent" } } }
                    tbody {
                        @for (a, r) in entries.iter().filter_map(|a| Some((a, a.disclosure_row()?))) {
                            tr {
                                td { (casebook::clock::date(a.at)) }
                                td { (r.case_name) }
                                td {
                                    (r.recipient)
                                    @match &r.role {
                                        Some(role) => { " (shared, " (role) ")" }
                                        None => { " (exported)" }
                                    }
                                    @if let Some(e) = r.expires { br; small.meta { "until " (casebook::clock::local(e)) } }
                                }
                                td { (r.what) }
                                td { (r.purpose) }
                                td { (r.consent) }
                            }
                        }
                    }
                } }
            }
        },
    )
}
