//! Who signed a note (and wrote its comments and addenda), from the signed
//! logs rather than from what the writing device typed.
//!
//! A note's signature names a practitioner in plain text, which any device
//! allowed to write the case could type. What cannot be typed is which
//! device wrote the signature: every change is written as the device that
//! sealed it (checked on arrival, `sync::check`), so the signature's
//! operations name it. Here that device is looked up in the account logs
//! this device holds: the account must be the case's owner or have held
//! write access to it, and the name shown is the one this device knows the
//! account by (its own name, or the contact's). A signature by a device no
//! held log lists, or by an account that could never write the case, is
//! shown as broken.

use std::collections::{HashMap, HashSet};

use casebook_shared::access::Role;
use casebook_shared::account::AccountState;
use casebook_shared::ids::{AccountId, DeviceId, DocId};

use crate::docs::DocMeta;

use crate::notes::{Note, PrivateEntry};
use crate::{Home, Result};

/// Who the account logs held here say each device belongs to, and the
/// names this device knows accounts by: built once per read, as verifying
/// every log is signature checks, not lookups.
pub(crate) struct Authors {
    devices: HashMap<DeviceId, Vec<AccountId>>,
    names: HashMap<AccountId, String>,
}

impl Authors {
    /// The account that lists `device`. A device listed by two accounts
    /// vouches for neither: only an honest relay keeps a log from claiming
    /// another account's device.
    fn account_of(&self, device: &DeviceId) -> Option<AccountId> {
        match self.devices.get(device).map(Vec::as_slice) {
            Some([one]) => Some(*one),
            _ => None,
        }
    }

    /// The name this device knows an account by.
    fn name(&self, account: &AccountId) -> String {
        self.names
            .get(account)
            .cloned()
            .unwrap_or_else(|| format!("account {}", account.short()))
    }
}

impl Home {
    /// The device-to-account map and the names, for [`Home::vouch`].
    pub(crate) fn authors(&self) -> Result<Authors> {
        let mut devices: HashMap<DeviceId, Vec<AccountId>> = HashMap::new();
        let mut states = vec![self.account_state()?];
        for owner in self.store.log_owners(32)? {
            let Ok(id) = <[u8; 32]>::try_from(owner.as_slice()).map(AccountId) else {
                continue;
            };
            if id == states[0].id {
                continue;
            }
            if let Ok(st) = AccountState::verify_log(&self.account_log_of(&id)?) {
                states.push(st);
            }
        }
        for st in &states {
            for d in st.devices.keys() {
                devices.entry(*d).or_default().push(st.id);
            }
        }
        let mut names: HashMap<AccountId, String> = self
            .contacts()
            .list()?
            .into_iter()
            .map(|c| (c.account, c.name))
            .collect();
        names.insert(self.account_id(), self.name().to_string());
        let unnamed: HashSet<AccountId> = states
            .iter()
            .map(|st| st.id)
            .filter(|a| !names.contains_key(a))
            .collect();
        names.extend(self.self_given_names(&unnamed)?);
        Ok(Authors { devices, names })
    }

    /// What accounts that are not contacts call themselves, as each signed
    /// it when sharing a case with this account, marked as such: a
    /// colleague's case then shows its owner's name, not a bare account.
    fn self_given_names(
        &self,
        accounts: &HashSet<AccountId>,
    ) -> Result<HashMap<AccountId, String>> {
        let me = self.account_id();
        let mut out = HashMap::new();
        if accounts.is_empty() {
            return Ok(out);
        }
        for doc in self.store.doc_ids()? {
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            if !accounts.contains(&meta.owner) || out.contains_key(&meta.owner) {
                continue;
            }
            if let Some(d) = self.share_details(&doc, &me)? {
                out.insert(meta.owner, format!("{} (not a contact)", d.shared_by));
            }
        }
        Ok(out)
    }

    /// A case's psychotherapy notes, each one's writer read off its
    /// operations and named as this device knows that account; an entry
    /// written or altered by a device it cannot vouch for is marked.
    pub(crate) fn read_private_vouched(&mut self, case: &DocId) -> Result<Vec<PrivateEntry>> {
        let entries = self.read_private(case, |p| p.entries())?;
        let meta = self.access().doc_meta(&self.private_of(case)?)?;
        let authors = self.authors()?;
        Ok(entries
            .into_iter()
            .map(|mut e| {
                let who = author_of(&authors, meta.as_ref(), e.device.as_deref(), Role::Write);
                match who {
                    Some(a) if !e.unverified => e.by = authors.name(&a),
                    _ => e.unverified = true,
                }
                e
            })
            .collect())
    }

    /// A note as read from a case, with its author, signer and the authors
    /// of its comments and addenda checked and named.
    /// `meta` is the case's access state, read once by the caller.
    pub(crate) fn vouch(&self, authors: &Authors, meta: Option<&DocMeta>, mut note: Note) -> Note {
        let author = |device: Option<&str>, least: Role| author_of(authors, meta, device, least);
        let maker = author(note.created_by_device.as_deref(), Role::Write);
        match maker {
            Some(a) if !note.creator_unverified => note.created_by = authors.name(&a),
            _ => note.creator_unverified = true,
        }
        let mut editors: Vec<String> = Vec::new();
        for d in std::mem::take(&mut note.content_devices) {
            let name = match author(Some(&d), Role::Write) {
                Some(a) if Some(a) == maker => continue,
                Some(a) => authors.name(&a),
                None => format!("UNVERIFIED device {}", &d[..d.len().min(8)]),
            };
            if !editors.contains(&name) {
                editors.push(name);
            }
        }
        note.edited_by = editors;
        if note.signed_by.is_some() {
            match author(note.signed_by_device.as_deref(), Role::Write) {
                Some(a) => {
                    let known = authors.name(&a);
                    if note.signed_by.as_deref() != Some(known.as_str()) {
                        note.signed_as = note.signed_by.take();
                    }
                    note.signed_by = Some(known);
                }
                None => note.signature_broken = true,
            }
        }
        for (remarks, least) in [
            (&mut note.comments, Role::Comment),
            (&mut note.addenda, Role::Write),
        ] {
            for r in remarks.iter_mut() {
                match author(r.device.as_deref(), least) {
                    Some(a) => r.by = authors.name(&a),
                    None => r.unverified = true,
                }
            }
        }
        note
    }

    /// The name this device knows an account by.
    pub(crate) fn name_of(&self, account: &AccountId) -> Result<String> {
        if *account == self.account_id() {
            return Ok(self.name().to_string());
        }
        if let Some(c) = self
            .contacts()
            .list()?
            .into_iter()
            .find(|c| c.account == *account)
        {
            return Ok(c.name);
        }
        Ok(self
            .self_given_names(&HashSet::from([*account]))?
            .remove(account)
            .unwrap_or_else(|| format!("account {}", account.short())))
    }
}

/// The account of a device (hex), if that account ever held `least` on
/// the document whose access state is `meta`.
fn author_of(
    authors: &Authors,
    meta: Option<&DocMeta>,
    device: Option<&str>,
    least: Role,
) -> Option<AccountId> {
    let d = DeviceId::from_hex(device?).ok()?;
    let a = authors.account_of(&d)?;
    meta.is_some_and(|m| m.owner == a || m.grants.iter().any(|g| g.account == a && g.role >= least))
        .then_some(a)
}
