//! What must hold once the network heals and every device has synced.

use std::collections::BTreeMap;

use casebook::notes::Note;
use casebook_shared::access::Role;
use casebook_shared::ids::DocId;

use super::world::World;

/// What one device shows of one case.
#[derive(Debug, PartialEq)]
struct CaseView {
    name: String,
    profile: String,
    notes: Vec<Note>,
}

/// Everything a device shows: its cases, by id.
fn view(world: &mut World, d: usize, only_active: bool) -> BTreeMap<DocId, CaseView> {
    let mut out = BTreeMap::new();
    for case in world.cases_on(d) {
        if only_active && world.role(d, &case).is_none() {
            continue;
        }
        let home = world.home(d);
        if let Ok(v) = home.docs().read_case(&case, |c| CaseView {
            name: c.name(),
            profile: format!("{:?}", c.profile()),
            notes: c.notes(),
        }) {
            out.insert(case, v);
        }
    }
    out
}

/// What differs between two views of one case, briefly.
fn difference(a: Option<&CaseView>, b: Option<&CaseView>) -> String {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return format!("held by one only ({} / {})", a.is_some(), b.is_some()),
    };
    let mut out = Vec::new();
    for n in &a.notes {
        match b.notes.iter().find(|m| m.id == n.id) {
            None => out.push(format!("note {} on the first only", n.id)),
            Some(m) if m != n => out.push(format!("note {}: {:?} / {:?}", n.id, n, m)),
            Some(_) => {}
        }
    }
    for m in &b.notes {
        if !a.notes.iter().any(|n| n.id == m.id) {
            out.push(format!("note {} on the second only", m.id));
        }
    }
    if a.name != b.name || a.profile != b.profile {
        out.push("name or profile".into());
    }
    out.join("; ")
}

/// Every word a note shows, late edits and remarks included.
fn words(n: &Note) -> String {
    let mut s = String::new();
    for (_, v) in &n.fields {
        s.push_str(v);
        s.push(' ');
    }
    for l in &n.late_edits {
        s.push_str(&l.merged);
        s.push(' ');
    }
    for r in n.addenda.iter().chain(&n.comments) {
        s.push_str(&r.text);
        s.push(' ');
    }
    s
}

/// Checks every invariant; returns what failed.
pub fn invariants(world: &mut World) -> Vec<String> {
    let mut failed = std::mem::take(&mut world.violations);
    // Edits held back are the device's own, kept because its role no
    // longer lets it send them; a writer holding edits is a fault.
    let held = world.held.clone();
    for (d, docs) in &held {
        for (doc, reason) in docs {
            if world.role(*d, doc).is_some_and(|r| r >= Role::Write) {
                failed.push(format!(
                    "{} holds edits to {} it may send: {reason}",
                    world.devices[*d].label,
                    doc.short()
                ));
            }
        }
    }
    let holds = |d: usize, case: &DocId| {
        held.get(&d)
            .is_some_and(|h| h.iter().any(|(x, _)| x == case))
    };
    // Each account's devices show the same cases and notes, byte for byte.
    // A colleague's devices are compared on the cases still shared with them.
    let mut views = BTreeMap::new();
    for account in 0..world.accounts.len() {
        let devices = world.live_of(account);
        let mut first: Option<(String, BTreeMap<DocId, CaseView>)> = None;
        for d in devices {
            let mut v = view(world, d, account != 0);
            // A colleague's device shows its own held edits; the others
            // never saw them. Those cases are compared only where none is held.
            if account != 0 {
                let all = world.live_of(account);
                v.retain(|case, _| !all.iter().any(|&x| holds(x, case)));
            }
            let label = world.devices[d].label.clone();
            match &first {
                None => first = Some((label, v)),
                Some((l0, v0)) => {
                    if *v0 != v {
                        let mut keys: Vec<&DocId> = v0.keys().chain(v.keys()).collect();
                        keys.sort();
                        keys.dedup();
                        for k in keys.into_iter().filter(|k| v0.get(k) != v.get(k)) {
                            failed.push(format!(
                                "{l0} and {label} differ on case {}: {}",
                                k.short(),
                                difference(v0.get(k), v.get(k))
                            ));
                        }
                    }
                }
            }
        }
        if let Some((_, v)) = first {
            views.insert(account, v);
        }
    }
    // Every change an owner's device made (and that was never on a revoked
    // device) is on the owner's devices; so is every colleague's change
    // the relay acknowledged (its device's outbox is empty).
    let owner_view = views.remove(&0).unwrap_or_default();
    // A colleague's devices show every note the owner's devices show of a
    // case still shared with them: what the relay withholds from one
    // account is told in the case's signals, and sent again.
    for (account, v) in &views {
        for (case, theirs) in v {
            let Some(ours) = owner_view.get(case) else {
                continue;
            };
            for n in ours
                .notes
                .iter()
                .filter(|n| !theirs.notes.iter().any(|m| m.id == n.id))
            {
                failed.push(format!(
                    "{}'s devices lack note {} of case {} that the owner's show",
                    world.accounts[*account].name,
                    n.id,
                    case.short()
                ));
            }
        }
    }
    let tokens = world.tokens.clone();
    let shows = |v: &BTreeMap<DocId, CaseView>, case: &DocId, token: &str| {
        v.get(case)
            .is_some_and(|c| c.notes.iter().any(|n| words(n).contains(token)))
    };
    let everyone: Vec<(String, BTreeMap<DocId, CaseView>)> = world
        .live()
        .into_iter()
        .map(|d| (world.devices[d].label.clone(), view(world, d, false)))
        .collect();
    let disposed = world.disposed.clone();
    for (i, t) in tokens.iter().enumerate() {
        // What was written in a case disposed of is gone with it.
        if disposed.contains(&t.case) {
            continue;
        }
        // A power cut may take an edit that was not yet durable, and with
        // it gone from every device that is allowed; but if the relay had
        // it and any device shows it, it must be everywhere.
        if world.lost_to_power.contains(&i) {
            if !everyone.iter().any(|(_, v)| shows(v, &t.case, &t.text)) {
                continue;
            }
            // The device that lost it took it back as its own echo.
            let label = world.devices[t.device].label.clone();
            let mine = everyone.iter().find(|(l, _)| *l == label);
            if let Some((_, v)) = mine
                && world.role(t.device, &t.case).is_some()
                && !shows(v, &t.case, &t.text)
            {
                failed.push(format!(
                    "{label} lost {} in case {} to a power cut and never took it back",
                    t.text,
                    t.case.short()
                ));
            }
        }
        let dev = &world.devices[t.device];
        if dev.revoked || dev.home.is_none() {
            continue;
        }
        if dev.account != 0 {
            let pending = world.home(t.device).pending().unwrap_or(1);
            if pending > 0 {
                continue;
            }
        }
        let found = owner_view
            .get(&t.case)
            .is_some_and(|c| c.notes.iter().any(|n| words(n).contains(&t.text)));
        if !found {
            failed.push(format!(
                "{} wrote {} in case {}; the owner's devices do not show it",
                world.devices[t.device].label,
                t.text,
                t.case.short()
            ));
        }
    }
    // What the hostile colleague's role permitted is on the owner's devices;
    // what it forbade is on no device at all.
    for r in world
        .rogue_changes
        .iter()
        .filter(|r| !disposed.contains(&r.case))
    {
        if r.permitted && !r.lost_in_restore && !shows(&owner_view, &r.case, &r.token) {
            failed.push(format!(
                "the rogue's permitted change {} (seq {} of {}) is not on the owner's devices",
                r.token,
                r.seq,
                r.case.short()
            ));
        }
        if !r.permitted {
            for (label, v) in &everyone {
                if shows(v, &r.case, &r.token) {
                    failed.push(format!(
                        "{label} shows the rogue's forbidden change {} (seq {} of {})",
                        r.token,
                        r.seq,
                        r.case.short()
                    ));
                }
            }
        }
    }
    // A signed note shows what was signed, never an edit merged in later.
    for (case, v) in &owner_view {
        for n in v.notes.iter().filter(|n| n.is_signed()) {
            let shown: BTreeMap<String, String> = n.editable_fields().into_iter().collect();
            if let Some(signed) = world.signed.get(&(*case, n.id.clone()))
                && !signed.contains(&shown)
            {
                failed.push(format!(
                    "note {} of case {} shows as signed content that was never signed",
                    n.id,
                    case.short()
                ));
            }
            if n.signature_broken {
                failed.push(format!("note {} has a broken signature", n.id));
            }
        }
    }
    // A share that ran out has ended: once the owner's devices have synced,
    // no access log they hold still lists a member past their expiry (the
    // member was removed and the keys rotated), so it cuts off for real.
    for d in world.live_of(0) {
        let now = world.home(d).now();
        for case in world.cases.clone() {
            let Ok(Some(meta)) = world.home(d).access().doc_meta(&case) else {
                continue;
            };
            for (member, _, expires) in &meta.members {
                if expires.is_some_and(|e| e <= now) {
                    failed.push(format!(
                        "{}: the share of {} with {} expired and is still in its access log",
                        world.devices[d].label,
                        case.short(),
                        member.short()
                    ));
                }
            }
        }
    }
    // A case disposed of is on no device, whatever the relay lost since.
    for d in world.live() {
        for case in world.cases_on(d) {
            if disposed.contains(&case) {
                failed.push(format!(
                    "{} still holds case {}, disposed of",
                    world.devices[d].label,
                    case.short()
                ));
            }
        }
    }
    // Every device's audit trail verifies.
    for d in world.live() {
        if let Err(e) = world.home(d).trail().verify() {
            failed.push(format!("{}: audit: {e}", world.devices[d].label));
        }
    }
    failed
}
