//! `status`: what a person wants to know at a glance before they trust a
//! device: is everything sent, when did it last sync, what ends soon.

use casebook_shared::access::Role;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use serde::Serialize;

use crate::sync::{HeldEdits, Incomplete};
use crate::{Home, Result};

/// Shares ending within this many seconds are listed.
const SOON: u64 = 7 * 86_400;

/// A share of this account's case that ends soon.
#[derive(Clone, Debug, Serialize)]
pub struct EndingShare {
    pub case: DocId,
    pub case_name: String,
    pub member: AccountId,
    /// The contact's name, if it is one.
    pub contact: Option<String>,
    pub role: Role,
    /// Unix seconds.
    pub expires: u64,
}

/// This device at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub name: String,
    pub account: AccountId,
    pub device: DeviceId,
    pub relay: String,
    /// Changes written here and not yet acknowledged by the relay.
    pub unsent: u64,
    /// Of those, what the last round held back and why.
    pub held: Vec<HeldEdits>,
    /// Documents the last round left incomplete: changes they hold build
    /// on changes the relay has not served.
    pub incomplete: Vec<Incomplete>,
    /// When a sync round last finished (Unix seconds).
    pub last_sync: Option<u64>,
    /// Shares of this account's cases that end within a week.
    pub ending: Vec<EndingShare>,
}

impl Home {
    /// This device's state, from what it holds (no relay needed).
    pub fn status(&self) -> Result<Status> {
        let last = self.last_round()?;
        let now = self.now();
        let mut ending = Vec::new();
        for (case, summary) in self.docs().cases()? {
            let owned = self
                .access()
                .doc_meta(&case)?
                .is_some_and(|m| m.owner == self.account_id());
            if !owned {
                continue;
            }
            for row in self.shares(&case)? {
                if let Some(expires) = row.expires.filter(|e| *e > now && *e <= now + SOON) {
                    ending.push(EndingShare {
                        case,
                        case_name: summary.name.clone(),
                        member: row.member,
                        contact: row.contact,
                        role: row.role,
                        expires,
                    });
                }
            }
        }
        ending.sort_by_key(|e| e.expires);
        Ok(Status {
            name: self.name().to_string(),
            account: self.account_id(),
            device: self.device_id(),
            relay: self.relay().0.to_string(),
            unsent: self.pending()?,
            held: last.as_ref().map(|l| l.held.clone()).unwrap_or_default(),
            incomplete: last
                .as_ref()
                .map(|l| l.incomplete.clone())
                .unwrap_or_default(),
            last_sync: last.map(|l| l.at),
            ending,
        })
    }
}
