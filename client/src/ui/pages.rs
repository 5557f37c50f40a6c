//! The page's HTML. maud escapes every value it prints, so a client's name
//! or a note's text is shown, never obeyed.

use casebook::app::{CaseListed, CaseView};
use casebook::docs::Hit;
use casebook::sharing::{ShareRow, ShareState, SharedWithMe};
use casebook_shared::ids::DocId;
use maud::{DOCTYPE, Markup, html};

/// What the header says of the page while it is unlocked.
pub(super) struct Bar {
    pub sync: super::background::SyncStatus,
    /// Changes saved here and not yet on the relay.
    pub unsent: u64,
    /// What the background sync had brought when the page was drawn (see
    /// `Ui::changes`): the page's script redraws it when this moves.
    pub version: u64,
}

/// The sync line: connected, the last sync, what is unsent, and what the
/// last round refused or found incomplete, if anything.
pub(super) fn sync_line(bar: &Bar) -> String {
    let state = match (&bar.sync.error, bar.sync.last, bar.sync.connected) {
        (Some(e), _, _) => format!("Not connected: {e}"),
        (None, Some(at), true) => format!("Connected · last sync {}", casebook::clock::local(at)),
        (None, None, true) => "Connected · syncing".to_string(),
        (None, _, false) => "Connecting to the relay".to_string(),
    };
    match &bar.sync.warning {
        Some(w) => format!("{state} · {} unsent · Warning: {w}", bar.unsent),
        None => format!("{state} · {} unsent", bar.unsent),
    }
}

/// The most cases a warning names; the rest are counted.
const NAMED: usize = 5;

/// What a round that refused some of what the relay served, or left cases
/// incomplete, says on the page: the CLI's `sync` lists each and exits
/// non-zero; the page has its sync line, so it goes there until a round
/// finds nothing of the kind. It names the case only, never that
/// psychotherapy notes are what is incomplete: the header is on every
/// page, and those notes are shown only on a deliberate click.
pub(super) fn round_warning(r: &casebook::sync::SyncReport) -> Option<String> {
    let mut said = Vec::new();
    let refused = r.refused.len() + r.logs_refused.len();
    if refused > 0 {
        said.push(format!(
            "the relay served {refused} thing(s) this device refused (damaged, moved, or not \
             allowed): nothing of it was applied, the audit trail records it, and whoever \
             runs the relay should hear of it"
        ));
    }
    let mut cases: Vec<String> = r
        .incomplete
        .iter()
        .map(|x| match &x.case_name {
            Some(name) => name.clone(),
            None => format!("document {}", x.doc.short()),
        })
        .collect();
    cases.dedup();
    if !cases.is_empty() {
        let more = cases.len().saturating_sub(NAMED);
        cases.truncate(NAMED);
        let more = match more {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        said.push(format!(
            "incomplete: {}{more}: the relay has not served changes it took; each sync asks \
             for them again",
            cases.join(", ")
        ));
    }
    if !r.kept_under_hold.is_empty() {
        let names: Vec<&str> = r
            .kept_under_hold
            .iter()
            .take(NAMED)
            .map(|k| k.client.as_str())
            .collect();
        let more = match r.kept_under_hold.len().saturating_sub(NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        said.push(format!(
            "disposed of on another of your devices, but under a legal hold here: {}{more}: \
             this device keeps the case alone (export it or make a backup); lifting the hold \
             carries the disposal out",
            names.join(", ")
        ));
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// Every page: its title, the header (with the sync line and "Lock" once
/// unlocked), the body.
pub(super) fn layout(title: &str, bar: Option<&Bar>, body: Markup) -> Markup {
    refreshing(title, bar, body, None)
}

/// A page that the browser loads again every `refresh` seconds, for one
/// that waits on something (no script needed).
pub(super) fn refreshing(
    title: &str,
    bar: Option<&Bar>,
    body: Markup,
    refresh: Option<u32>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(every) = refresh { meta http-equiv="refresh" content=(every); }
                title { (title) " · casebook" }
                link rel="stylesheet" href="/app.css";
                @if bar.is_some() { script src="/app.js" defer {} }
            }
            body {
                header {
                    a.brand href="/" { "casebook" }
                    @if let Some(bar) = bar {
                        nav.main aria-label="casebook" {
                            a href="/" { "Cases" }
                            a href="/people" { "Sharing" }
                            a href="/devices" { "Devices" }
                            a href="/audit" { "Audit" }
                        }
                        span.sync #sync role="status" { (sync_line(bar)) }
                        form method="post" action="/lock" {
                            button type="submit" { "Lock" }
                        }
                    }
                }
                main data-live=[bar.map(|b| b.version)] { (body) }
            }
        }
    }
}

/// A request refused by the guard.
pub(super) fn refused(why: &str) -> Markup {
    layout(
        "Not here",
        None,
        html! {
            h1 { "This page cannot be shown" }
            p { (why) }
        },
    )
}

/// The locked page, after a save that arrived once the page had locked
/// itself: nothing was saved, and what was typed is shown to take back.
pub(super) fn unlock_keeping(typed: &[(String, String)]) -> Markup {
    layout(
        "Unlock",
        None,
        html! {
            h1 { "Unlock casebook" }
            p.error role="alert" {
                "Nothing was saved: casebook locked itself after a while without use. \
                 What you typed is below; unlock, then put it back."
            }
            @for (field, text) in typed {
                @if !text.trim().is_empty() {
                    label for={ "kept_" (field) } { (label(field)) }
                    textarea id={ "kept_" (field) } readonly rows="4" { (text) }
                }
            }
            (unlock_form())
        },
    )
}

fn unlock_form() -> Markup {
    html! {
        form method="post" action="/unlock" {
            label for="passphrase" { "Passphrase" }
            input #passphrase type="password" name="passphrase" autocomplete="current-password" autofocus required;
            button type="submit" { "Unlock" }
        }
    }
}

/// The locked page: the passphrase opens the home.
pub(super) fn unlock(error: Option<&str>) -> Markup {
    layout(
        "Unlock",
        None,
        html! {
            h1 { "Unlock casebook" }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            (unlock_form())
        },
    )
}

/// What an error in an operation says, above the form it came from.
pub(super) fn error_note(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
    }
}

fn standing(s: &SharedWithMe) -> String {
    let by = s.shared_by();
    match s.state {
        ShareState::Active => format!("shared with you by {by}, {}", s.role.name()),
        ShareState::Expired => format!("shared with you by {by}; the share has expired"),
        ShareState::Ended => format!("no longer shared with you by {by}"),
    }
}

/// The case list, with the way to a new case.
pub(super) fn cases(bar: &Bar, cases: &[CaseListed]) -> Markup {
    layout(
        "Cases",
        Some(bar),
        html! {
            h1 { "Cases" }
            (search_form("", false))
            p { a.button href="/cases/new" { "New case" } }
            @if cases.is_empty() {
                p { "No cases yet." }
            } @else {
                table {
                    thead { tr { th { "Client" } th { "Notes" } th { "Last session" } th { "" } } }
                    tbody {
                        @for c in cases {
                            tr {
                                td { a href={ "/cases/" (c.id.to_hex()) } { (c.summary.name) } }
                                td { (c.summary.notes.len()) }
                                td { (c.summary.notes.iter().map(|n| n.date.as_str()).max().unwrap_or("–")) }
                                td {
                                    @if c.summary.closed { span.mark { "closed" } }
                                    @if c.summary.legal_hold.is_some() { span.mark { "legal hold" } }
                                    @if let Some(s) = &c.shared { span.mark { (standing(s)) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The search box. A search is posted, never put in the address: what is
/// looked for is clinical text too.
fn search_form(query: &str, private: bool) -> Markup {
    html! {
        form.search method="post" action="/search" role="search" {
            label for="q" { "Search" }
            input #q type="search" name="q" value=(query) autocomplete="off" required;
            label.inline {
                input type="checkbox" name="private" value="on" checked[private];
                " Include psychotherapy notes"
            }
            button type="submit" { "Search" }
        }
    }
}

/// What a search found, best first; psychotherapy notes only when asked
/// for, and marked.
pub(super) fn search(bar: &Bar, query: &str, private: bool, hits: &[Hit], total: usize) -> Markup {
    layout(
        "Search",
        Some(bar),
        html! {
            h1 { "Search" }
            (search_form(query, private))
            @if hits.is_empty() {
                p { "Nothing found." }
            }
            @if total > hits.len() {
                p.meta role="status" { "The best " (hits.len()) " of " (total) " matches: add a word to narrow the search." }
            }
            ul.hits {
                @for h in hits {
                    li {
                        @let to = match &h.note {
                            _ if h.private => super::private::private_path(&h.case),
                            Some(n) => format!("{}/notes/{n}", case_path(&h.case)),
                            None => case_path(&h.case),
                        };
                        a href=(to) { (h.case_name) }
                        " · " (label(&h.field))
                        @if h.private { " " span.mark { "psychotherapy note" } }
                        br;
                        small { (h.snippet) }
                    }
                }
            }
        },
    )
}

/// A new case's form; `name` keeps what was typed when it was refused.
pub(super) fn new_case(bar: &Bar, name: &str, error: Option<&str>) -> Markup {
    layout(
        "New case",
        Some(bar),
        html! {
            h1 { "New case" }
            (error_note(error))
            form method="post" action="/cases" {
                label for="client_name" { "Client name" }
                input #client_name type="text" name="client_name" value=(name) autocomplete="off" required autofocus;
                button type="submit" { "Create case" }
            }
        },
    )
}

/// A case: its profile and its session notes, newest first.
pub(super) fn case(bar: &Bar, view: &CaseView, shares: Option<&[ShareRow]>) -> Markup {
    let s = &view.summary;
    // The client's name stays out of the title: browsers keep titles in
    // their history, after the page is locked.
    layout(
        "Case",
        Some(bar),
        html! {
            h1 { (s.name) }
            @if view.shared.is_none() { (case_tabs(&view.id, false)) }
            p.meta { "Opened " (s.created) }
            @if let Some(shared) = &view.shared { p.mark { (standing(shared)) } }
            @if let Some(reason) = &s.legal_hold { p.mark { "Under a legal hold: " (reason) } }
            section {
                h2 { "Profile" }
                // A colleague may change the profile only with the write role.
                @let writes = view.shared.as_ref().is_none_or(|s| {
                    s.state == ShareState::Active && s.role == casebook_shared::role::Role::Write
                });
                @if writes { p { a.button href={ (case_path(&view.id)) "/profile" } { "Edit profile" } } }
                dl {
                    @for (field, text) in view.profile.fields() {
                        dt { (label(&field)) }
                        dd { @if text.is_empty() { "–" } @else { (text) } }
                    }
                }
            }
            @let measures = view.scores();
            @if !measures.is_empty() {
                section {
                    h2 { "Outcome measures" }
                    @for series in &measures { (super::charts::chart(series)) }
                }
            }
            section {
                h2 { "Session notes" }
                p { a.button href={ (case_path(&view.id)) "/notes/new" } { "New note" } }
                @if view.notes.is_empty() {
                    p { "No notes yet." }
                }
                ul.notes {
                    @for n in view.notes.iter().rev() {
                        li {
                            a href={ (case_path(&view.id)) "/notes/" (n.id) } {
                                (n.date) " · " (n.format.as_str().to_uppercase())
                            }
                            " · "
                            @if n.is_signed() { "signed" } @else { "draft" }
                            @if !n.late_edits.is_empty() { " · " span.mark { "a late edit to settle" } }
                        }
                    }
                }
            }
            @if let Some(rows) = shares { (super::sharing_pages::shares(&view.id, rows)) }
        },
    )
}

/// The two tabs of a case: the record, and the psychotherapy notes kept
/// apart from it.
pub(super) fn case_tabs(case: &DocId, private: bool) -> Markup {
    html! {
        nav.tabs aria-label="Case" {
            a href=(case_path(case)) aria-current=[(!private).then_some("page")] { "Record" }
            a href=(super::private::private_path(case)) aria-current=[private.then_some("page")] {
                "Psychotherapy notes"
            }
        }
    }
}

/// A field's name as a label: `treatment_plan` reads "Treatment plan".
pub(super) fn label(field: &str) -> String {
    let words = field.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The address of a case's page.
pub(super) fn case_path(id: &DocId) -> String {
    format!("/cases/{}", id.to_hex())
}

#[cfg(test)]
mod tests {
    use casebook::app::KeptCase;
    use casebook::sync::SyncReport;
    use casebook_shared::ids::DocId;

    /// A case kept under a legal hold is named by its client, never by the
    /// hold's reason (the sync line is on every page); no more than five.
    #[test]
    fn cases_kept_under_a_hold_are_named_in_the_sync_line() {
        assert_eq!(super::round_warning(&SyncReport::default()), None);
        let kept = |n: u8| KeptCase {
            case: DocId([n; 16]),
            client: format!("Client {n}"),
            hold: "complaint by the client's employer".into(),
        };
        let report = SyncReport {
            kept_under_hold: (1..=7).map(kept).collect(),
            ..SyncReport::default()
        };
        let said = super::round_warning(&report).unwrap();
        assert!(said.contains("under a legal hold here: Client 1"), "{said}");
        assert!(said.contains("Client 5 and 2 more"), "{said}");
        assert!(
            !said.contains("Client 6") && !said.contains("employer"),
            "{said}"
        );
    }
}
