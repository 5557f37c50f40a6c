//! Printing the account's side: devices, sync, status, the relay,
//! contacts and shares, disclosures and the audit trail.

use crate::cli::term::{say, tell};
use anyhow::Result;
use casebook::devices::DeviceRow;
use casebook::home::AuditRecord;
use casebook::sharing::{Contact, ShareRow, SharedWithMe, safety_number};
use casebook::sync::{HeldEdits, Incomplete, SyncReport};
use casebook_shared::ids::{AccountId, DocId};
use serde_json::{Value, json};

use casebook::clock as time;

use super::{Out, print_json, report_json};

/// A share's id for a script: its case and the colleague's account, the pair
/// that names it (`unshare CASE --with ...` takes the same two).
fn share_id(case: &DocId, member: &AccountId) -> String {
    format!("{}:{}", case.to_hex(), member.to_hex())
}

/// An audit entry's id: the device that recorded it and its place in that
/// device's chain.
pub(super) fn entry_id(a: &AuditRecord) -> String {
    format!("{}:{}", a.device.to_hex(), a.seq)
}

/// How a share that no longer gives access is marked.
/// What held edits are to, as a person knows it.
fn held_what(h: &HeldEdits) -> String {
    doc_what(&h.doc, h.case_name.as_deref(), h.private)
}

/// A document as a person knows it: a case, or its psychotherapy notes.
fn doc_what(doc: &DocId, case_name: Option<&str>, private: bool) -> String {
    match (case_name, private) {
        (Some(name), false) => format!("the case of {name} ({})", doc.short()),
        (Some(name), true) => format!("the psychotherapy notes of {name} ({})", doc.short()),
        (None, _) => format!("document {}", doc.short()),
    }
}

/// What to do about held edits, when it is the person's to do.
fn held_hint(h: &HeldEdits) -> String {
    match (h.to_settle, h.case) {
        (true, Some(case)) => format!(
            ": `casebook held save {c} FILE` keeps them in a file, `casebook held discard {c}` drops them",
            c = case.short()
        ),
        _ => String::new(),
    }
}

/// A document held only in part, in a person's words.
fn incomplete_line(x: &Incomplete) -> String {
    let what = doc_what(&x.doc, x.case_name.as_deref(), x.private);
    let waiting: Vec<String> = x
        .waiting
        .iter()
        .map(|(device, n)| format!("{n} envelope(s) of device {}", device.short()))
        .collect();
    let waiting = match waiting.is_empty() {
        true => String::new(),
        false => format!("; waiting for them: {}", waiting.join(", ")),
    };
    let claimed: Vec<String> = x.claimed_by.iter().map(|d| d.short()).collect();
    let claimed = match claimed.is_empty() {
        true => String::new(),
        false => format!(
            "; the relay acknowledged them from device(s) {} of {}",
            claimed.join(", "),
            x.claimed_by_whom.join(", ")
        ),
    };
    format!(
        "{what} is INCOMPLETE: {} change(s) were never served by the relay (missing {}){waiting}{claimed}; each sync asks for them again",
        x.missing,
        x.hashes
            .iter()
            .map(|h| h.get(..12).unwrap_or(h))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(super) fn incomplete_json(x: &Incomplete) -> Value {
    json!({
        "doc": x.doc.to_hex(), "missing": x.missing, "hashes": x.hashes,
        "waiting": x.waiting.iter().map(|(d, n)| json!({"device": d.to_hex(), "envelopes": n})).collect::<Vec<_>>(),
        "claimed_by": x.claimed_by.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
        "claimed_by_whom": x.claimed_by_whom,
        "case": x.case.map(|c| c.to_hex()), "case_name": x.case_name, "private": x.private,
    })
}

pub(super) fn held_json(h: &HeldEdits) -> Value {
    json!({
        "doc": h.doc.to_hex(), "edits": h.edits, "reason": h.reason,
        "case": h.case.map(|c| c.to_hex()), "case_name": h.case_name,
        "private": h.private, "to_settle": h.to_settle,
    })
}

/// A colleague's case as this account holds it, in a few words.
pub(super) fn standing(r: &SharedWithMe) -> String {
    let by = r.shared_by();
    match r.state {
        casebook::sharing::ShareState::Active => {
            let until = r
                .expires
                .map(|e| format!(", until {}", time::local_until(e)))
                .unwrap_or_default();
            format!("shared with you by {by}, {}{until}", r.role.name())
        }
        casebook::sharing::ShareState::Expired => {
            format!("shared with you by {by}; the share has EXPIRED: you read what arrived before")
        }
        casebook::sharing::ShareState::Ended => format!(
            "NO LONGER SHARED with you by {by}: you read what arrived before it ended, and change nothing"
        ),
    }
}

/// The share through which this account holds a colleague's case.
pub(super) fn shared_json(r: &SharedWithMe) -> Value {
    json!({
        "case": r.case.to_hex(),
        "owner": r.owner.to_hex(), "owner_name": r.owner_contact,
        "role": r.role.name(), "expires_at": r.expires.map(time::rfc3339),
        "purpose": r.details.as_ref().map(|d| d.purpose.clone()),
        "consent": r.details.as_ref().map(|d| d.consent.clone()),
        "shared_by": r.details.as_ref().map(|d| d.shared_by.clone()),
        "state": r.state,
    })
}

fn state_mark(s: casebook::sharing::ShareState) -> &'static str {
    match s {
        casebook::sharing::ShareState::Active => "",
        casebook::sharing::ShareState::Expired => "  (EXPIRED)",
        casebook::sharing::ShareState::Ended => "  (ENDED)",
    }
}

impl Out {
    pub fn pair_code(&self, code: &str) -> Result<()> {
        if self.json {
            print_json(&json!({ "code": code }))?;
        } else {
            say!("{code}");
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        Ok(())
    }

    pub fn devices(&self, rows: &[DeviceRow]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|r| {
                        json!({
                            "id": r.id.to_hex(), "name": r.name, "kind": r.kind,
                            "added_at": time::rfc3339(r.added_at),
                            "last_seen_at": r.last_seen.map(time::rfc3339),
                            "revoked": r.revoked, "this_device": r.this_device,
                        })
                    })
                    .collect(),
            ));
        }
        for r in rows {
            let state = if r.revoked { "revoked" } else { "active" };
            let kind = match (r.kind, r.this_device) {
                ("recovery", _) => "recovery key",
                (_, true) => "this device",
                _ => "another device",
            };
            say!(
                "{}  {:<20}  {:<14}  {:<7}  added {}  last seen {}",
                r.id.short(),
                r.name.as_deref().unwrap_or("(no name)"),
                kind,
                state,
                time::local(r.added_at),
                r.last_seen.map_or("never".to_string(), time::local)
            );
        }
        Ok(())
    }

    /// An account restored onto this device, and the first sync's report.
    pub fn recovered(&self, home: &casebook::Home, r: &SyncReport) -> Result<()> {
        if self.json {
            return self
                .changed("device.recovered", home.device_id().to_hex())
                .with("account", home.account_id().to_hex())
                .with("sync", report_json(r))
                .done("");
        }
        self.sync_report(r)
    }

    pub fn sync_report(&self, r: &SyncReport) -> Result<()> {
        if self.json {
            return print_json(&report_json(r));
        }
        tell!(
            "synced: {} sent, {} received ({} documents updated, {} from snapshots)",
            r.pushed,
            r.received,
            r.docs_updated,
            r.snapshots_in
        );
        for x in &r.refused {
            tell!(
                "warning: refused envelope {} of document {}: {} (nothing was changed)",
                x.seq,
                x.doc.short(),
                x.reason
            );
        }
        for x in &r.logs_refused {
            let waits = [
                casebook::sync::TURN_LACKS_DEVICES,
                casebook::sync::TURN_ENTRIES_WAIT,
            ];
            let hint = if waits.iter().any(|w| x.reason.contains(w)) {
                "; it clears once a device of that account has synced: sync again later"
            } else if x.reason.contains(casebook::sync::TURN_RESIGN_WAIT) {
                "; it clears once a device of that account has signed them again, or (where it ended this account's share) shared that case again: sync again later, or ask that colleague"
            } else {
                "; they stay readable here: tell that colleague, and whoever runs the relay"
            };
            tell!(
                "warning: refused the relay's log of account {}: {} (the documents that account is part of wait, the rest synced{hint})",
                x.account.short(),
                x.reason
            );
        }
        for x in &r.incomplete {
            tell!("warning: {}", incomplete_line(x));
        }
        if !r.rewound.is_empty() {
            tell!(
                "note: the relay held less than this device had seen of {} document(s) (restored from an older copy, or losing data): fetched again, and what this device holds sent back",
                r.rewound.len()
            );
        }
        if !r.access_healed.is_empty() {
            tell!(
                "note: the relay's access log of {} document(s) lacked entries signed on this device (restored from an older copy, or losing data): sent back",
                r.access_healed.len()
            );
        }
        if !r.logs_healed.is_empty() {
            tell!(
                "note: the relay lacked the end of {} account log(s) this device holds (restored from an older copy, or losing data): sent back",
                r.logs_healed.len()
            );
        }
        if !r.logs_turned.is_empty() {
            tell!(
                "note: the relay's copy of {} account log(s) took another turn than the one held here (restored from an older copy, and written to since); the relay's was taken, and what it lacked of the one held here made again on top of it (devices signed in again, revocations made again: see the trail)",
                r.logs_turned.len()
            );
        }
        for d in &r.stay_revoked {
            tell!(
                "warning: device {} is no longer a device of this account: the relay, restored from an older copy, holds a history of the account's log that revokes it or leaves it out (see the trail); pair that device again",
                d.short()
            );
        }
        if !r.disposals_healed.is_empty() {
            tell!(
                "note: the relay lacked the disposal of {} document(s) disposed of (restored from an older copy, or losing data): given back, so they are deleted again wherever they were",
                r.disposals_healed.len()
            );
        }
        for k in &r.kept_under_hold {
            tell!(
                "warning: case {} ({}) is under a legal hold here ({}), but its disposal, signed on another of this account's devices, reached the relay: this device keeps the case alone (the relay holds nothing more of it, and takes no edits to it). `casebook export` or `casebook backup create` keep a copy; `casebook case release {}` lifts the hold, and the next sync carries the disposal out",
                k.client,
                k.case.short(),
                k.hold,
                k.case.short()
            );
        }
        if r.resent > 0 {
            tell!(
                "note: {} change(s) made on this device were missing from the relay (lost, or restored from an older copy): sent again",
                r.resent
            );
        }
        for x in &r.held {
            tell!(
                "warning: {} edit(s) to {} not sent: {}; they stay on this device{}",
                x.edits,
                held_what(x),
                x.reason,
                held_hint(x)
            );
        }
        if r.left_queued > 0 {
            tell!(
                "note: {} edit(s) wait for the next sync: who may open their case changed while this one ran",
                r.left_queued
            );
        }
        Ok(())
    }

    pub fn watch_report(&self, r: &SyncReport) -> Result<()> {
        if self.json {
            say!("{}", serde_json::to_string(&report_json(r))?);
            return Ok(());
        }
        if r.pushed + r.received + r.snapshots_in + r.left_queued > 0
            || !r.refused.is_empty()
            || !r.logs_refused.is_empty()
            || !r.incomplete.is_empty()
            || r.resent > 0
            || !r.rewound.is_empty()
            || !r.access_healed.is_empty()
            || !r.logs_healed.is_empty()
            || !r.logs_turned.is_empty()
            || !r.disposals_healed.is_empty()
            || !r.kept_under_hold.is_empty()
            || !r.held.is_empty()
        {
            self.sync_report(r)?;
        }
        Ok(())
    }

    pub fn status(
        &self,
        s: &casebook::app::Status,
        reach: &std::result::Result<(), String>,
    ) -> Result<()> {
        if self.json {
            return print_json(&json!({
                "id": s.device.to_hex(), "name": s.name, "account": s.account.to_hex(),
                "device": s.device.to_hex(),
                "relay": s.relay, "relay_reachable": reach.is_ok(),
                "relay_error": reach.as_ref().err(),
                "last_sync_at": s.last_sync.map(time::rfc3339), "unsent": s.unsent,
                "held": s.held.iter().map(held_json).collect::<Vec<_>>(),
                "incomplete": s.incomplete.iter().map(incomplete_json).collect::<Vec<_>>(),
                "ending": s.ending.iter().map(|e| json!({
                    "id": share_id(&e.case, &e.member),
                    "case": e.case.to_hex(), "case_name": e.case_name,
                    "account": e.member.to_hex(), "account_name": e.contact,
                    "role": e.role.name(), "expires_at": time::rfc3339(e.expires),
                })).collect::<Vec<_>>(),
            }));
        }
        say!(
            "{} (account {}, this device {})",
            s.name,
            s.account.short(),
            s.device.short()
        );
        match reach {
            Ok(()) => say!("relay        {} (reachable)", s.relay),
            Err(e) => say!("relay        {} (NOT reachable: {e})", s.relay),
        }
        say!(
            "last sync    {}",
            s.last_sync.map_or("never".to_string(), time::local)
        );
        say!("unsent       {} change(s) waiting for the relay", s.unsent);
        for h in &s.held {
            say!(
                "  held       {} edit(s) to {}: {}{}",
                h.edits,
                held_what(h),
                h.reason,
                held_hint(h)
            );
        }
        for x in &s.incomplete {
            say!("  INCOMPLETE {}", incomplete_line(x));
        }
        if s.ending.is_empty() {
            say!("shares       none end within a week");
        }
        for e in &s.ending {
            say!(
                "ends soon    {} {} with {} ({}) at {}",
                e.case.short(),
                e.case_name,
                e.contact.clone().unwrap_or_else(|| e.member.short()),
                e.role.name(),
                time::local_until(e.expires)
            );
        }
        Ok(())
    }

    pub fn relay(&self, addr: &str, fingerprint: &[u8; 32]) -> Result<()> {
        let fingerprint = casebook_shared::fingerprint::format(fingerprint);
        if self.json {
            return print_json(&json!({ "relay": addr, "fingerprint": fingerprint }));
        }
        say!("relay        {addr}");
        say!("fingerprint  {fingerprint}");
        Ok(())
    }

    pub fn whoami(
        &self,
        name: &str,
        account: &casebook_shared::ids::AccountId,
        safety: &str,
        card: &str,
    ) -> Result<()> {
        if self.json {
            return print_json(&json!({
                "id": account.to_hex(), "name": name, "safety_number": safety, "card": card,
            }));
        }
        say!("name           {name}");
        say!("safety number  {safety}");
        say!("card           {card}");
        Ok(())
    }

    pub fn contact_added(&self, c: &Contact) -> Result<()> {
        if self.json {
            return self
                .changed("contact.added", c.account.to_hex())
                .with("name", c.name.clone())
                .with("verified", c.verified)
                .with("safety_number", safety_number(&c.account))
                .done("");
        }
        self.contacts(std::slice::from_ref(c))
    }

    pub fn contacts(&self, contacts: &[Contact]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                contacts
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.account.to_hex(), "name": c.name, "verified": c.verified,
                            "safety_number": safety_number(&c.account),
                            "added_at": time::rfc3339(c.added_at),
                        })
                    })
                    .collect(),
            ));
        }
        if contacts.is_empty() {
            tell!(
                "no contacts yet: `casebook contact add NAME CARD` adds one (a card is the line \
                 `casebook whoami` prints on their side)"
            );
        }
        for c in contacts {
            let v = if c.verified {
                "verified"
            } else {
                "NOT verified"
            };
            say!("{:<20}  {}  {v}", c.name, safety_number(&c.account));
        }
        Ok(())
    }

    pub fn shares(&self, case: &DocId, rows: &[ShareRow]) -> Result<()> {
        let expires = |e: Option<u64>| e.map_or("never".to_string(), time::local_until);
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|r| {
                        json!({
                            "id": share_id(case, &r.member), "case": case.to_hex(),
                            "account": r.member.to_hex(), "account_name": r.contact,
                            "role": r.role.name(), "expires_at": r.expires.map(time::rfc3339),
                            "state": r.state,
                        })
                    })
                    .collect(),
            ));
        }
        if rows.is_empty() {
            tell!("not shared with anyone");
        }
        for r in rows {
            let who = r.contact.clone().unwrap_or_else(|| r.member.short());
            say!(
                "{who:<20}  {:<7}  until {}{}",
                r.role.name(),
                expires(r.expires),
                state_mark(r.state)
            );
        }
        Ok(())
    }

    pub fn shared_with_me(&self, me: &AccountId, rows: &[SharedWithMe]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|r| {
                        let mut v = shared_json(r);
                        v["id"] = share_id(&r.case, me).into();
                        v["case_name"] = r.name.clone().into();
                        v["account"] = me.to_hex().into();
                        v
                    })
                    .collect(),
            ));
        }
        if rows.is_empty() {
            tell!("nothing is shared with you (run `casebook sync` to check)");
        }
        for r in rows {
            let by = r.shared_by();
            let purpose = r
                .details
                .as_ref()
                .map(|d| d.purpose.as_str())
                .unwrap_or("-");
            say!(
                "{}  {:<24}  from {by}  {:<7}  for {purpose:?}  until {}{}",
                r.case.short(),
                r.name.as_deref().unwrap_or("(not synced yet)"),
                r.role.name(),
                r.expires.map_or("never".to_string(), time::local_until),
                state_mark(r.state)
            );
        }
        Ok(())
    }

    pub fn audit(&self, trail: &[AuditRecord]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                trail
                    .iter()
                    .map(|a| {
                        json!({
                            "id": entry_id(a), "at": time::rfc3339(a.at), "device": a.device.to_hex(),
                            "case": a.case.map(|c| c.to_hex()), "what": a.what,
                        })
                    })
                    .collect(),
            ));
        }
        for a in trail {
            let case = a.case.map(|c| c.short()).unwrap_or_default();
            say!(
                "{}  {}  {:<8}  {}",
                time::local(a.at),
                a.device.short(),
                case,
                a.what
            );
        }
        Ok(())
    }
}
