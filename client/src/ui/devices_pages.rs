//! The devices pages' HTML: the list, the pairing code while it waits, the
//! revocation's confirmation, and new recovery words shown once.

use casebook::devices::DeviceRow;
use maud::{Markup, html};

use super::devices::Pairing;
use super::pages::{Bar, layout, refreshing};

/// A device as a person knows it.
fn named(d: &DeviceRow) -> String {
    match (&d.name, d.kind) {
        (Some(n), _) => n.clone(),
        (None, "recovery") => "Recovery words".into(),
        (None, _) => format!("device {}", d.id.short()),
    }
}

pub(super) fn list(bar: &Bar, rows: &[DeviceRow]) -> Markup {
    layout(
        "Devices",
        Some(bar),
        html! {
            h1 { "Devices" }
            table {
                thead { tr { th { "Device" } th { "Added" } th { "Last seen" } th { "" } } }
                tbody {
                    @for d in rows {
                        tr {
                            td {
                                (named(d))
                                @if d.this_device { " " span.ok { "this device" } }
                                @if d.revoked { " " span.mark { "revoked" } }
                            }
                            td { (casebook::clock::local(d.added_at)) }
                            td { (d.last_seen.map_or_else(|| "–".to_string(), casebook::clock::local)) }
                            td {
                                @if !d.revoked && !d.this_device && d.kind == "device" {
                                    form.inline method="post" action="/devices/revoke" {
                                        input type="hidden" name="device" value=(d.id.to_hex());
                                        button type="submit" { "Revoke…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section {
                h2 { "Pair a new device" }
                p { "Start here, then type the code the page shows into the new device (casebook device join CODE)." }
                form method="post" action="/devices/pair" {
                    button type="submit" { "Pair a new device" }
                }
            }
            section {
                h2 { "Recovery words" }
                p {
                    "They restore the account onto a new device if every device is lost. "
                    "If they are lost or someone else has seen them, replace them: the old words stop working."
                }
                form method="post" action="/devices/recovery-words" {
                    button type="submit" { "New recovery words" }
                }
            }
        },
    )
}

/// The pairing code, refreshed every two seconds while it waits.
pub(super) fn pairing(p: &Pairing) -> Markup {
    let waiting = matches!(p, Pairing::Waiting { .. });
    // Asked again every two seconds until it is done.
    refreshing(
        "Pair a device",
        None,
        html! {
            h1 { "Pair a new device" }
            @match p {
                Pairing::Idle => { p { "No pairing under way. " a href="/devices" { "Devices" } } }
                Pairing::Waiting { code, .. } => {
                    p { "On the new device, run:" }
                    p { code.pairing { "casebook device join " (code) } }
                    p role="status" { "Waiting for the new device…" }
                    form method="post" action="/devices/pair/cancel" {
                        button type="submit" { "Cancel" }
                    }
                }
                Pairing::Paired(id) => {
                    p.signed role="status" { "Paired device " (id) ". It fetches the cases at its first sync." }
                    p { a href="/devices" { "Devices" } }
                }
                Pairing::Failed(why) => {
                    p.error role="alert" { "Not paired: " (why) }
                    p { a href="/devices" { "Devices" } }
                }
            }
        },
        waiting.then_some(2),
    )
}

pub(super) fn confirm_revoke(bar: &Bar, d: &DeviceRow) -> Markup {
    layout(
        "Revoke",
        Some(bar),
        html! {
            h1 { "Revoke " (named(d)) "?" }
            p {
                "The relay will refuse it, and everything written from now on is sealed under keys it never had. "
                "What it already holds stays on it: revoke a lost or stolen device at once."
            }
            form method="post" action="/devices/revoke/confirm" {
                input type="hidden" name="device" value=(d.id.to_hex());
                button type="submit" { "Revoke" }
                " " a href="/devices" { "Keep it" }
            }
        },
    )
}

/// Asks before replacing the recovery words.
pub(super) fn confirm_new_words(bar: &Bar) -> Markup {
    layout(
        "Recovery words",
        Some(bar),
        html! {
            h1 { "Replace your recovery words?" }
            p {
                "The words you have now stop working at once. The new ones are shown on the next page, once: "
                "have paper and a pen ready, and do it where no one can see the screen."
            }
            form method="post" action="/devices/recovery-words/confirm" {
                button type="submit" { "Replace my recovery words" }
                " " a href="/devices" { "Keep the words I have" }
            }
        },
    )
}

/// New recovery words, shown this once.
pub(super) fn words(bar: &Bar, words: &str) -> Markup {
    layout(
        "Recovery words",
        Some(bar),
        html! {
            h1 { "Your new recovery words" }
            p.mark { "The old words no longer work. Write these on paper and keep them somewhere safe: they are shown only this once." }
            p { code.words { (words) } }
            p { a.button href="/devices" { "I have written them down" } }
        },
    )
}
