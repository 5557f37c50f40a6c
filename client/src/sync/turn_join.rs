//! Joining an account log's turn (see [`super::turn`]): what this device
//! signs on top of the relay's log, and whether what it holds still
//! verifies under the log it would take.

use casebook_shared::access::{self, DocEntry};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::DhSecret;
use casebook_shared::ids::{AccountId, DeviceId};
use casebook_shared::signed::Signed;

use super::RollbackError;
use super::turn::{Lost, REVOKES, Turn};
use crate::error::{Error, Result};
use crate::home::Home;

impl Home {
    /// Does again on top of the relay's log `theirs`, as `state` leaves it,
    /// what `turn` says its turn lacks, and revokes the devices it cuts;
    /// returns the entries, signed by this device and applied to `state`.
    ///
    /// A revocation is made again to the account key it made here, so what
    /// was sealed to that generation stays readable, or, where the keys
    /// made here are left behind, to a new one. Either way it holds from
    /// where it held here ([`account::AccountOp::RevokeDeviceSince`]), and
    /// a device cut from its own addition on: what they signed on the
    /// restored relay meanwhile does not verify.
    pub(super) fn join_turn(
        &self,
        state: &mut AccountState,
        theirs: &[Signed],
        turn: &Turn,
    ) -> Result<Vec<Signed>> {
        let account = state.id;
        let wrong = || RollbackError::AccountLogTurned {
            account,
            after: turn.common,
            why: REVOKES,
        };
        // Keys by generation as the relay's log leaves them to this device,
        // then each one a revocation made again brings. (One out of reach
        // means the relay's log no longer wraps its key to this device.)
        let me = self.device_id();
        let mut keys = account::account_keys(theirs, &state.id, &me, &self.id.dh)?;
        let current = |keys: &[DhSecret], state: &AccountState| {
            keys.get(state.key.generation as usize)
                .map(|k| DhSecret::from_bytes(*k.expose()))
                .ok_or(Error::Revoked)
        };
        let mut signed = Vec::new();
        let mut sign = |state: &mut AccountState, entry: Signed| -> Result<()> {
            state.apply(&entry)?;
            signed.push(entry);
            Ok(())
        };
        for lost in &turn.lost {
            let now = self.now();
            match lost {
                Lost::Device(info) => {
                    let key = current(&keys, state)?;
                    let entry =
                        account::add_device(state, &self.id.signer, &key, info.clone(), now)?;
                    sign(state, entry)?;
                }
                Lost::Revoked(info) => {
                    let since = state.len;
                    let nobodys = DhSecret::generate();
                    let entry =
                        account::add_device(state, &self.id.signer, &nobodys, info.clone(), now)?;
                    sign(state, entry)?;
                    let new_key = DhSecret::generate();
                    let entry = self.revoke_again(state, &keys, info.id, &new_key, since)?;
                    sign(state, entry)?;
                    keys.push(new_key);
                }
                // The keys made here left behind: to a new key, unless the
                // device is revoked already (cut, or revoked there).
                Lost::Revocation { device, since, .. } if turn.orphans => {
                    if !state.is_active(device) {
                        continue;
                    }
                    let new_key = DhSecret::generate();
                    let entry = self.revoke_again(state, &keys, *device, &new_key, *since)?;
                    sign(state, entry)?;
                    keys.push(new_key);
                }
                Lost::Revocation { device, key, since } => {
                    let held = self
                        .account_keys
                        .get(key.generation as usize)
                        .filter(|k| {
                            k.public() == key.public && key.generation == state.key.generation + 1
                        })
                        .ok_or_else(wrong)?;
                    let entry = self.revoke_again(state, &keys, *device, held, *since)?;
                    sign(state, entry)?;
                    keys.push(DhSecret::from_bytes(*held.expose()));
                }
            }
        }
        for device in &turn.cut {
            let Some(added) = state
                .devices
                .get(device)
                .filter(|_| state.is_active(device))
                .map(|d| d.added_seq)
            else {
                continue;
            };
            let new_key = DhSecret::generate();
            let entry = self.revoke_again(state, &keys, *device, &new_key, added)?;
            sign(state, entry)?;
            keys.push(new_key);
        }
        Ok(signed)
    }

    /// An entry, signed by this device, revoking `device` on top of `state`
    /// to `new_key` from length `since` on (`keys` by generation).
    fn revoke_again(
        &self,
        state: &AccountState,
        keys: &[DhSecret],
        device: DeviceId,
        new_key: &DhSecret,
        since: u64,
    ) -> Result<Signed> {
        let current = keys
            .get(state.key.generation as usize)
            .ok_or(Error::Revoked)?;
        Ok(account::revoke_device_to(
            state,
            &self.id.signer,
            current,
            device,
            new_key,
            Some(since),
            self.now(),
        )?)
    }

    /// Moves every case sealed to the account keys a turn left behind to a
    /// new key (see [`Home::rotate_doc`]): this account's own, or, `with`
    /// another account, the cases this account owns that it is a member
    /// of. One that cannot be moved is named rather than failing the turn
    /// (which would then be judged again, and fail again, every round).
    /// Returns the words for the trail.
    pub(super) fn move_cases_after_turn(&mut self, with: Option<&AccountId>) -> Result<String> {
        let mine = self.account_id();
        let (mut moved, mut not) = (0, Vec::new());
        for doc in self.store.doc_ids()? {
            let shared = self.access().doc_meta(&doc)?.is_some_and(|m| {
                m.owner == mine
                    && !m.disposed
                    && with.is_none_or(|a| m.members.iter().any(|(b, _, _)| b == a))
            });
            if !shared {
                continue;
            }
            match self.rotate_doc(&doc) {
                Ok(()) => moved += 1,
                Err(e) => not.push(format!("{} ({e})", doc.short())),
            }
        }
        let mut said = format!(
            "; the account keys of the history held here are left behind, so {moved} case(s) moved to a new key"
        );
        if !not.is_empty() {
            said.push_str(&format!(", and these could not be: {}", not.join(", ")));
        }
        Ok(said)
    }

    /// Whether every access entry held here (queued ones too) and every
    /// disposal kept here that a device of `account` signed still
    /// verifies under its log as `state` leaves it.
    pub(super) fn held_entries_verify_under(
        &self,
        account: &AccountId,
        state: &AccountState,
    ) -> Result<bool> {
        for doc in self.store.doc_ids()? {
            for signed in self.access().access_log(&doc)? {
                if !verifies_under(&signed, account, state) {
                    return Ok(false);
                }
            }
        }
        let kept = self.kept_disposals()?;
        Ok(kept
            .values()
            .all(|k| verifies_under(&k.gone, account, state)))
    }
}

/// Whether an access entry, if `account` signed it, verifies under its log
/// as `state` leaves it: its signer active at the log length it was signed
/// at ([`AccountState::active_at`], as the access log's own check asks).
/// Another account's entry, or one that does not open, is not this check's
/// to judge.
fn verifies_under(signed: &Signed, account: &AccountId, state: &AccountState) -> bool {
    let Ok(entry) = signed.open::<DocEntry>(access::SIG_LABEL) else {
        return true;
    };
    if entry.account != *account {
        return true;
    }
    state.active_at(&signed.signer, entry.account_len)
}
