//! The signed account logs a round reads: this account's, and those of
//! every account it shares documents with. Each is fetched from the last
//! entry held on, which must come back unchanged (a relay that shows less
//! than this device has seen is refused), and verified once a session up
//! to the entry it ends at.

use std::collections::BTreeMap;

use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::AccountId;
use casebook_shared::signed::Signed;

use super::{RollbackError, unexpected};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::Relay;

/// The new entries of an account log the relay sent from the last one
/// held on (`held_last`): the relay's log must extend the one held, so its
/// first entry is that last one, unchanged.
pub(crate) fn extension<'a>(
    account: &AccountId,
    held_last: Option<&Signed>,
    fetched: &'a [Signed],
) -> std::result::Result<&'a [Signed], RollbackError> {
    match held_last {
        None => Ok(fetched),
        Some(last) => match fetched.split_first() {
            Some((first, rest)) if first == last => Ok(rest),
            Some(_) => Err(RollbackError::AccountLogDiffers(*account)),
            None => Err(RollbackError::AccountLogShorter(*account)),
        },
    }
}

impl Home {
    /// Brings every account log held up to date; returns their states.
    pub(super) async fn refresh_accounts(
        &mut self,
        relay: &Relay,
    ) -> Result<BTreeMap<AccountId, AccountState>> {
        let mut out = BTreeMap::new();
        let mine = self.account_id();
        let me = self.refresh_log(relay, &mine).await?;
        if !me.is_active(&self.device_id()) {
            return Err(Error::Revoked);
        }
        out.insert(mine, me);
        for other in self.store.log_owners(32)? {
            let id = AccountId(
                other
                    .try_into()
                    .map_err(|_| Inconsistent::AccountIdLength)?,
            );
            if id != mine {
                let st = self.refresh_log(relay, &id).await?;
                out.insert(id, st);
            }
        }
        Ok(out)
    }

    /// Makes sure the log of every member of every document this account
    /// owns is held: a rotation seals the new key to each of them. A round
    /// that accepted a share's entries and then failed before fetching the
    /// new member's log would otherwise leave every later rotation unable
    /// to seal to that member.
    pub(super) async fn member_logs(
        &mut self,
        relay: &Relay,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<()> {
        let me = self.account_id();
        for doc in self.store.doc_ids()? {
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            if meta.owner != me {
                continue;
            }
            for member in meta.members.iter().map(|(a, _, _)| *a) {
                if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(member) {
                    slot.insert(self.refresh_log(relay, &member).await?);
                }
            }
        }
        Ok(())
    }

    /// Fetches an account log's new entries, checking that the relay's log
    /// extends the one held (the last held entry must come back unchanged).
    pub(crate) async fn refresh_log(
        &mut self,
        relay: &Relay,
        account: &AccountId,
    ) -> Result<AccountState> {
        let held = self.account_log_of(account)?;
        let from = held.len().saturating_sub(1) as u64;
        let entries = match relay
            .request(&Request::GetAccount {
                account: *account,
                from,
            })
            .await?
        {
            Response::Log { entries } => entries,
            r => return Err(unexpected(r)),
        };
        let new = extension(account, held.last(), &entries)?;
        if new.is_empty()
            && let Some(state) = self.synced.verified_logs.unchanged(account, &held)
        {
            return Ok(state.clone());
        }
        let mut all = held;
        let first_new = all.len() as u64;
        all.extend_from_slice(new);
        let state = AccountState::verify_log(&all)?;
        if state.id != *account {
            return Err(Inconsistent::AnotherAccountsLog.into());
        }
        if *account == self.account_id() && new.is_empty() {
            // Once a session: a home that stopped between storing its log
            // and the keys it reaches (before that was one write) heals.
            self.heal_account_keys(&all)?;
        }
        if !new.is_empty() {
            if *account == self.account_id() {
                self.extend_account_log(first_new, new)?;
            } else {
                let encoded: Vec<Vec<u8>> = new.iter().map(codec::encode).collect();
                self.store.append_log(&account.0, first_new, &encoded)?;
            }
        }
        self.synced.verified_logs.remember(*account, &all, &state);
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use casebook_shared::crypto::{DeviceSigner, DhSecret};

    use super::*;
    use crate::session::VerifiedLogs;

    fn log(entries: usize) -> Vec<Signed> {
        let signer = DeviceSigner::generate();
        let (genesis, _) = casebook_shared::account::genesis(&signer, &DhSecret::generate(), 1);
        let mut log = vec![genesis];
        for n in 1..entries {
            let mut next = log[0].clone();
            next.body.push(n as u8);
            log.push(next);
        }
        log
    }

    #[test]
    fn a_relay_log_must_extend_the_one_held() {
        let a = AccountId([7; 32]);
        let held = log(3);
        assert_eq!(extension(&a, None, &held).unwrap().len(), 3);
        assert!(extension(&a, held.last(), &held[2..]).unwrap().is_empty());
        let mut longer = held[2..].to_vec();
        longer.push(held[0].clone());
        assert_eq!(extension(&a, held.last(), &longer).unwrap().len(), 1);
        assert!(matches!(
            extension(&a, held.last(), &held[1..]),
            Err(RollbackError::AccountLogDiffers(x)) if x == a
        ));
        assert!(matches!(
            extension(&a, held.last(), &[]),
            Err(RollbackError::AccountLogShorter(x)) if x == a
        ));
    }

    #[test]
    fn a_log_is_taken_as_verified_only_at_the_length_and_last_entry_verified() {
        let held = log(1);
        let state = AccountState::verify_log(&held).unwrap();
        let mut verified = VerifiedLogs::default();
        assert!(verified.unchanged(&state.id, &held).is_none());
        verified.remember(state.id, &held, &state);
        assert!(verified.unchanged(&state.id, &held).is_some());
        assert!(verified.get(&state.id).is_some());
        assert_eq!(verified.states().len(), 1);
        // Another last entry, or another length, is verified afresh.
        let mut other = held.clone();
        other[0].body.push(0);
        assert!(verified.unchanged(&state.id, &other).is_none());
        let longer = log(2);
        assert!(verified.unchanged(&state.id, &longer).is_none());
        assert!(verified.unchanged(&AccountId([1; 32]), &held).is_none());
    }
}
