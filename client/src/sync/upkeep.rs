//! What an owned document's access rules call for, decided without I/O.
//!
//! At every round, after the pull (so what the owner's other devices did
//! is known) and before the push, each document this account owns is kept
//! as its rules say: a member whose share expired is removed, and a
//! document whose newest key was sealed to an account key since replaced
//! (a device revoked, by this account or a member's) moves to a new epoch,
//! so the revoked device holds no key of it. An edit sent before the round
//! catches up (`push_early`) is sealed under the newest epoch only when
//! none of this is due and every member's account key is known.

use casebook_shared::ids::AccountId;

use crate::docs::DocMeta;

/// What one owned document's access calls for now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Upkeep {
    /// Members other than the owner whose share has expired: each is
    /// removed, then the keys are rotated.
    pub expired: Vec<AccountId>,
    /// Members whose newest epoch key was sealed to an older account key
    /// than theirs now (or to none): the keys are rotated.
    pub stale: Vec<AccountId>,
    /// Members whose account key is not known here: whether their key is
    /// stale cannot be told.
    pub unknown: Vec<AccountId>,
}

impl Upkeep {
    /// A rotation (after any removals) is due.
    pub fn due(&self) -> bool {
        !self.expired.is_empty() || !self.stale.is_empty()
    }
}

/// What `meta`'s document, owned by `me`, calls for at `at`, given each
/// account's newest account-key generation as far as it is known.
pub(crate) fn upkeep(
    meta: &DocMeta,
    me: &AccountId,
    at: u64,
    generation: impl Fn(&AccountId) -> Option<u32>,
) -> Upkeep {
    let mut out = Upkeep::default();
    for (account, _, expires) in &meta.members {
        if account != me && expires.is_some_and(|e| e <= at) {
            out.expired.push(*account);
            continue;
        }
        match generation(account) {
            None => out.unknown.push(*account),
            Some(newest) => {
                if meta
                    .wrap_generation(meta.epoch, account)
                    .is_none_or(|sealed| sealed < newest)
                {
                    out.stale.push(*account);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use casebook_shared::access::Role;

    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId([n; 32])
    }

    /// Owned by account 1, at epoch 2, whose key was sealed to each
    /// member's account key of generation 0.
    fn meta(members: &[(u8, Option<u64>)]) -> DocMeta {
        DocMeta {
            owner: account(1),
            epoch: 2,
            members: members
                .iter()
                .map(|(a, e)| (account(*a), Role::Write, *e))
                .collect(),
            grants: Vec::new(),
            wraps: members.iter().map(|(a, _)| ((2, account(*a)), 0)).collect(),
            disposed: false,
        }
    }

    #[test]
    fn nothing_is_due_while_shares_last_and_keys_are_current() {
        let m = meta(&[(1, None), (2, Some(100))]);
        let u = upkeep(&m, &account(1), 99, |_| Some(0));
        assert_eq!(u, Upkeep::default());
        assert!(!u.due());
    }

    #[test]
    fn an_expired_share_is_removed_but_never_the_owners_own() {
        let m = meta(&[(1, Some(50)), (2, Some(100)), (3, None)]);
        let u = upkeep(&m, &account(1), 100, |_| Some(0));
        assert_eq!(u.expired, [account(2)]);
        assert!(u.stale.is_empty());
        assert!(u.due());
    }

    #[test]
    fn a_replaced_account_key_calls_for_a_rotation() {
        let m = meta(&[(1, None), (2, None), (3, None)]);
        let newest = BTreeMap::from([(account(1), 0), (account(2), 1)]);
        let u = upkeep(&m, &account(1), 0, |a| newest.get(a).copied());
        assert_eq!(u.stale, [account(2)]);
        assert_eq!(u.unknown, [account(3)]);
        assert!(u.due());
    }

    #[test]
    fn a_member_the_newest_key_was_never_sealed_to_is_stale() {
        let mut m = meta(&[(1, None), (2, None)]);
        m.wraps.remove(&(2, account(2)));
        let u = upkeep(&m, &account(1), 0, |_| Some(0));
        assert_eq!(u.stale, [account(2)]);
    }

    #[test]
    fn an_expired_member_is_not_also_stale_or_unknown() {
        let m = meta(&[(1, None), (2, Some(10))]);
        let u = upkeep(&m, &account(1), 10, |a| (*a == account(1)).then_some(0));
        assert_eq!(u.expired, [account(2)]);
        assert!(u.stale.is_empty() && u.unknown.is_empty());
    }
}
