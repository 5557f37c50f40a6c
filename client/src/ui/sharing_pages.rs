//! The sharing pages' HTML: people (card, safety numbers, contacts, what
//! others shared), a case's share form, and the unshare confirmation.

use casebook::Home;
use casebook::sharing::{Contact, ShareRow, ShareState, SharedWithMe, safety_number};
use casebook_shared::ids::DocId;
use maud::{Markup, html};

use super::note_pages::Typed;
use super::pages::{Bar, case_path, error_note, layout};

fn value<'a>(typed: &'a Typed, k: &str) -> &'a str {
    typed.get(k).map_or("", String::as_str)
}

/// This account's card and number, its contacts, and cases shared with it.
pub(super) fn people(
    bar: &Bar,
    home: &Home,
    contacts: &[Contact],
    shared: &[SharedWithMe],
    typed: &Typed,
    error: Option<&str>,
) -> Markup {
    let (name, _, own, card) = home.whoami();
    layout(
        "Sharing",
        Some(bar),
        html! {
            h1 { "Sharing" }
            (error_note(error))
            section {
                h2 { "You" }
                p { "You are " strong { (name) } ". Give a colleague your card; they add it to their contacts." }
                label for="own_card" { "Your card" }
                textarea #own_card readonly rows="3" { (card) }
                p { "Your safety number: " code.number { (own) } }
            }
            section {
                h2 { "Contacts" }
                @if contacts.is_empty() { p { "No contacts yet: add one from the card they give you." } }
                @for c in contacts {
                    article.contact {
                        h3 { (c.name) @if c.verified { " " span.ok { "verified" } } @else { " " span.mark { "not verified" } } }
                        @if !c.verified {
                            // Both numbers side by side: each reads theirs
                            // to the other, in person or by phone.
                            div.numbers {
                                p { "Yours" br; code.number { (own) } }
                                p { (c.name) "'s, from their card" br; code.number { (safety_number(&c.account)) } }
                            }
                            form method="post" action="/people/verify" {
                                input type="hidden" name="contact" value=(c.name);
                                @let id = format!("number_{}", c.account.short());
                                label for=(id) { "Safety number " (c.name) " read to you" }
                                input id=(id) name="number" inputmode="numeric" autocomplete="off"
                                    value=(if value(typed, "contact") == c.name { value(typed, "number") } else { "" });
                                button type="submit" { "Mark verified" }
                            }
                        }
                    }
                }
                form method="post" action="/people/contacts" {
                    h3 { "Add a contact" }
                    label for="contact_name" { "Contact name" }
                    input #contact_name name="contact_name" autocomplete="off" value=(value(typed, "contact_name")) required;
                    label for="card" { "Their card" }
                    textarea #card name="card" rows="3" autocomplete="off" required { (value(typed, "card")) }
                    button type="submit" { "Add contact" }
                }
            }
            section {
                h2 { "Shared with you" }
                @if shared.is_empty() { p { "No one has shared a case with you." } }
                ul {
                    @for s in shared {
                        li {
                            a href=(case_path(&s.case)) { (s.name.as_deref().unwrap_or("a case not yet received")) }
                            " · by " (s.shared_by()) ", " (s.role.name())
                            @if let Some(e) = s.expires { " · until " (casebook::clock::local(e)) }
                        }
                    }
                }
            }
        },
    )
}

/// Who a case of this account's is shared with, for its page.
pub(super) fn shares(case: &DocId, rows: &[ShareRow]) -> Markup {
    let active: Vec<&ShareRow> = rows
        .iter()
        .filter(|r| r.state == ShareState::Active)
        .collect();
    html! {
        section {
            h2 { "Sharing" }
            @if active.is_empty() { p { "Not shared with anyone." } }
            ul {
                @for r in active {
                    li {
                        (r.contact.as_deref().unwrap_or("an account not in your contacts"))
                        ", " (r.role.name())
                        @if let Some(e) = r.expires { " · until " (casebook::clock::local(e)) }
                        @if r.contact.is_some() {
                            form.inline method="post" action={ (case_path(case)) "/unshare" } {
                                input type="hidden" name="with" value=(r.member.to_hex());
                                button type="submit" { "Unshare…" }
                            }
                        }
                    }
                }
            }
            p { a.button href={ (case_path(case)) "/share" } { "Share this case" } }
        }
    }
}

/// The share form: every choice spelled out.
pub(super) fn share(
    bar: &Bar,
    case: &DocId,
    name: &str,
    contacts: &[Contact],
    typed: &Typed,
    error: Option<&str>,
) -> Markup {
    let verified: Vec<&Contact> = contacts.iter().filter(|c| c.verified).collect();
    let private = value(typed, "private");
    layout(
        "Share",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            h1 { "Share " (name) "'s case" }
            (error_note(error))
            @if verified.is_empty() {
                p { "You can share only with a contact whose safety number you have compared. " a href="/people" { "Add or verify a contact" } "." }
            } @else {
                form method="post" action={ (case_path(case)) "/share" } {
                    label for="contact" { "Share with" }
                    select #contact name="contact" {
                        @for c in &verified {
                            option value=(c.name) selected[value(typed, "contact") == c.name] { (c.name) }
                        }
                    }
                    label for="role" { "Role" }
                    select #role name="role" {
                        option value="read" selected[value(typed, "role") == "read"] { "Read: sees the case, changes nothing" }
                        option value="comment" selected[value(typed, "role") == "comment"] { "Comment: sees the case and adds comments to notes" }
                        option value="write" selected[value(typed, "role") == "write"] { "Write: sees and edits the case" }
                    }
                    label for="purpose" { "Purpose" }
                    input #purpose name="purpose" autocomplete="off" placeholder="e.g. consultation" value=(value(typed, "purpose")) required;
                    label for="consent" { "Consent reference" }
                    input #consent name="consent" autocomplete="off" placeholder="e.g. signed consent of 2026-11-02" value=(value(typed, "consent")) required;
                    label for="expires" { "Expires (optional)" }
                    input #expires type="date" name="expires" value=(value(typed, "expires"));
                    fieldset {
                        legend { "Psychotherapy notes" }
                        label.inline {
                            input type="radio" name="private" value="without" checked[private != "with"];
                            " Do not share the psychotherapy notes (usual)"
                        }
                        br;
                        label.inline {
                            input type="radio" name="private" value="with" checked[private == "with"];
                            " Share the psychotherapy notes too: only with the client's specific authorization"
                        }
                    }
                    button type="submit" { "Share" }
                }
            }
        },
    )
}

/// Asks before an unshare.
pub(super) fn confirm_unshare(
    bar: &Bar,
    case: &DocId,
    name: &str,
    contact: &str,
    account: &str,
) -> Markup {
    layout(
        "Unshare",
        Some(bar),
        html! {
            p { a href=(case_path(case)) { "← " (name) } }
            h1 { "Stop sharing with " (contact) "?" }
            p {
                (contact) " will receive nothing written from now on: the case moves to a new key they never get. "
                "What they already received stays on their devices, marked as no longer shared."
            }
            form method="post" action={ (case_path(case)) "/unshare/confirm" } {
                input type="hidden" name="with" value=(account);
                button type="submit" { "Unshare" }
                " " a href=(case_path(case)) { "Keep sharing" }
            }
        },
    )
}
