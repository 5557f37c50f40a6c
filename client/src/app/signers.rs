//! Who signed a note, from the signed logs rather than from what the
//! signing device typed.
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
    fn account_of_device(&self, device: &DeviceId) -> Result<Option<AccountId>> {
        let me = self.account_state()?;
        if me.devices.contains_key(device) {
            return Ok(Some(me.id));
        }
        for owner in self.store.log_owners(32)? {
            let Ok(id) = <[u8; 32]>::try_from(owner.as_slice()).map(AccountId) else {
                continue;
            };
            let log = self.account_log_of(&id)?;
            if AccountState::verify_log(&log).is_ok_and(|st| st.devices.contains_key(device)) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A note as read from a case, with its signer checked and named.
    pub(crate) fn vouch(&self, case: &DocId, mut note: Note) -> Result<Note> {
        if note.signed_by.is_none() {
            return Ok(note);
        }
        let device = note
            .signed_by_device
            .as_deref()
            .and_then(|h| DeviceId::from_hex(h).ok());
        let account = match device {
            Some(d) => self.account_of_device(&d)?,
            None => None,
        };
        let could_write = |a: &AccountId| -> Result<bool> {
            Ok(self.doc_meta(case)?.is_some_and(|m| {
                m.owner == *a
                    || m.grants
                        .iter()
                        .any(|g| g.account == *a && g.role >= Role::Write)
            }))
        };
        match account {
            Some(a) if could_write(&a)? => {
                note.signed_by = Some(self.name_of(&a)?);
            }
            _ => note.signature_broken = true,
        }
        Ok(note)
    }

    /// The name this device knows an account by.
    fn name_of(&self, account: &AccountId) -> Result<String> {
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
