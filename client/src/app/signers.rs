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

use casebook_shared::access::Role;
use casebook_shared::account::AccountState;
use casebook_shared::ids::{AccountId, DeviceId, DocId};

use crate::notes::Note;
use crate::{Home, Result};

impl Home {
    /// The account that lists `device`, among the logs this device holds.
    /// A device listed by two accounts vouches for neither: only an honest
    /// relay keeps a log from claiming another account's device.
    fn account_of_device(&self, device: &DeviceId) -> Result<Option<AccountId>> {
        let mut found = Vec::new();
        for owner in self.store.log_owners(32)? {
            let Ok(id) = <[u8; 32]>::try_from(owner.as_slice()).map(AccountId) else {
                continue;
            };
            let log = self.account_log_of(&id)?;
            if AccountState::verify_log(&log).is_ok_and(|st| st.devices.contains_key(device)) {
                found.push(id);
            }
        }
        let me = self.account_state()?;
        if me.devices.contains_key(device) && !found.contains(&me.id) {
            found.push(me.id);
        }
        Ok(match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }

    /// A note as read from a case, with its signer and the authors of its
    /// comments and addenda checked and named.
    pub(crate) fn vouch(&self, case: &DocId, mut note: Note) -> Result<Note> {
        let meta = self.doc_meta(case)?;
        // The account of a device in hex, if it ever held `least` on the case.
        let author = |device: Option<&str>, least: Role| -> Result<Option<AccountId>> {
            let Some(d) = device.and_then(|h| DeviceId::from_hex(h).ok()) else {
                return Ok(None);
            };
            let Some(a) = self.account_of_device(&d)? else {
                return Ok(None);
            };
            let held = meta.as_ref().is_some_and(|m| {
                m.owner == a || m.grants.iter().any(|g| g.account == a && g.role >= least)
            });
            Ok(held.then_some(a))
        };
        match author(note.created_by_device.as_deref(), Role::Write)? {
            Some(a) if !note.creator_unverified => note.created_by = self.name_of(&a)?,
            _ => note.creator_unverified = true,
        }
        if note.signed_by.is_some() {
            match author(note.signed_by_device.as_deref(), Role::Write)? {
                Some(a) => note.signed_by = Some(self.name_of(&a)?),
                None => note.signature_broken = true,
            }
        }
        for (remarks, least) in [
            (&mut note.comments, Role::Comment),
            (&mut note.addenda, Role::Write),
        ] {
            for r in remarks.iter_mut() {
                match author(r.device.as_deref(), least)? {
                    Some(a) => r.by = self.name_of(&a)?,
                    None => r.unverified = true,
                }
            }
        }
        Ok(note)
    }

    /// The name this device knows an account by.
    pub(crate) fn name_of(&self, account: &AccountId) -> Result<String> {
        if *account == self.account_id() {
            return Ok(self.name().to_string());
        }
        Ok(self
            .contacts()?
            .into_iter()
            .find(|c| c.account == *account)
            .map(|c| c.name)
            .unwrap_or_else(|| format!("account {}", account.short())))
    }
}
