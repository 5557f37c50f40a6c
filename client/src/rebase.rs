//! Two devices of one owner may change a document's access log before
//! either has synced: the relay takes whichever arrives first, and the
//! other's entries no longer continue its log. That device replays what it
//! meant (add this member, remove that one, move to a new key) on top of the
//! relay's log, so neither device's decision is lost, and its entries go
//! out again, re-signed, at the next push. Where the relay's first entries
//! are its own signed again by the other device (both signed again what a
//! turned account log left unverified, see `sync::resign`), the relay's
//! stand in their place, and only what follows is replayed.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, DocState, HASH_LABEL, Role, SIG_LABEL};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use casebook_shared::signed::Signed;
use zeroize::Zeroizing;

use crate::error::{Inconsistent, Result};
use crate::home::Home;

/// What one unsent entry meant.
enum Intent {
    Add {
        member: AccountId,
        role: Role,
        expires: Option<u64>,
        details: Zeroizing<Vec<u8>>,
    },
    Remove(AccountId),
    Rotate,
    /// The case disposed of: replayed last, and nothing after it matters.
    Dispose,
}

impl Home {
    /// Removes the access entries of `doc` queued here; how many they held.
    pub(crate) fn drop_access_outbox(&self, doc: &DocId) -> Result<usize> {
        let mut queued = 0;
        for row in self.store.access_outbox()? {
            if row.doc == *doc {
                queued += codec::decode::<Vec<Signed>>(&row.payload)?.len();
                self.store.remove_outbox(row.id)?;
            }
        }
        Ok(queued)
    }

    /// Replaces this device's unsent entries after the first `confirmed`
    /// with the relay's `fetched` ones, then replays what the unsent ones
    /// meant. What `undo` says is done first (shares a device revoked here
    /// granted on a restored relay ended, its key moved on; see
    /// `sync::revoked_again`).
    /// `Ok(Some(reason))` when the relay's entries do not verify, or it
    /// confirms more than is held here, or (with none confirmed) its log
    /// begins with neither the genesis held here nor one standing in for
    /// it ([`stands_in`]): then the log here does not change (only queued
    /// entries the relay shows it took leave the outbox).
    pub(crate) fn rebase_access(
        &mut self,
        doc: &DocId,
        confirmed: u64,
        fetched: &[Signed],
        accounts: &BTreeMap<AccountId, AccountState>,
        undo: &crate::sync::Undo,
    ) -> Result<Option<String>> {
        let held = self.access().access_log(doc)?;
        // Zero confirmed is a document made here whose genesis landed on an
        // attempt whose answer was lost (then the relay's log starts with
        // it), or one whose genesis another device of the owner signed again
        // after a turn, as this one did (see `sync::resign`). Otherwise the
        // relay shows this case another history: refused, this case alone.
        let Some(confirmed) = usize::try_from(confirmed)
            .ok()
            .filter(|c| *c <= held.len())
            .filter(|c| {
                *c > 0
                    || (held.first().zip(fetched.first())).is_some_and(|p| {
                        p.0 == p.1 || stands_in(p, &fetched[1..], |a| accounts.get(a))
                    })
            })
        else {
            return Ok(Some(
                "the relay's log of this case is not the one held here: it confirms more than this device holds, or begins with neither the genesis held here nor the same signed again by a device of its owner"
                    .to_string(),
            ));
        };
        // Some of the unsent entries did land, on an attempt whose answer
        // was lost: they are the relay's next entries. Those stay, with
        // their outbox rows gone; the rest is rebased on what follows.
        let landed = held[confirmed..]
            .iter()
            .zip(fetched)
            .take_while(|(a, b)| a == b)
            .count();
        if landed > 0 {
            let mut left = landed;
            for row in self.store.access_outbox()? {
                if row.doc != *doc {
                    continue;
                }
                let n = codec::decode::<Vec<Signed>>(&row.payload)?.len();
                if n > left {
                    break;
                }
                self.store.remove_outbox(row.id)?;
                left -= n;
            }
        }
        let confirmed = confirmed + landed;
        let fetched = &fetched[landed..];
        // Whom the other device removed: its removal stands against an
        // addition replayed from here (ending a share wins over changing
        // it), one twinned below too (two devices ending a share in the same
        // second make twins).
        let removed_there: Vec<AccountId> = (fetched.iter())
            .filter_map(|e| match e.open::<DocEntry>(SIG_LABEL) {
                Ok(DocEntry {
                    op: DocOp::RemoveMember { member },
                    ..
                }) => Some(member),
                _ => None,
            })
            .collect();
        let lookup = |a: &AccountId| accounts.get(a);
        // Some are the relay's signed again by another device (both signed
        // again what a turned account log left unverified, see
        // `sync::resign`): the relay's stand in their place, and what
        // follows them here is done again on top.
        let twinned = (held[confirmed..].iter().zip(fetched).enumerate())
            .take_while(|(i, p)| stands_in(*p, &fetched[i + 1..], lookup))
            .count();
        // Why the relay's entries on top of the first `confirmed` held here
        // are refused, if they are.
        let refused = |held: &[Signed], confirmed: usize, fetched: &[Signed]| {
            let mut trial = held[..confirmed].to_vec();
            trial.extend_from_slice(fetched);
            (DocState::verify_log(&trial, lookup).err()).map(|e| {
                format!("the relay's entries do not verify ({e}); this device's own are kept")
            })
        };
        let (held, confirmed, fetched) = match twinned {
            0 => (held, confirmed, fetched),
            n => {
                if let Some(why) = refused(&held, confirmed, fetched) {
                    return Ok(Some(why));
                }
                let keys = self.access().doc_keys(doc)?;
                self.drop_access_outbox(doc)?;
                self.store.truncate_log(&doc.0, confirmed as u64)?;
                self.access()
                    .accept_access_entries(doc, &fetched[..n], accounts)?;
                // The same envelopes: the same keys.
                self.access().keep_doc_keys(doc, keys)?;
                let mut now = held[..confirmed].to_vec();
                now.extend_from_slice(&fetched[..n]);
                now.extend_from_slice(&held[confirmed + n..]);
                (now, confirmed + n, &fetched[n..])
            }
        };
        if confirmed == held.len() && !undo.needed() {
            return self.access().accept_fetched_access(doc, fetched, accounts);
        }
        // Nothing to go on top of, and what is queued here still is (a
        // part twinned is not: dropped, so what follows is done again).
        if fetched.is_empty() && twinned == 0 {
            return Ok(None);
        }
        if let Some(why) = refused(&held, confirmed, fetched) {
            return Ok(Some(why));
        }

        // What this device meant, with the details it sealed opened again.
        let old_keys = self.access().doc_keys(doc)?;
        let mut epoch = DocState::verify_log(&held[..confirmed], lookup)?.epoch;
        let mut intents: Vec<Intent> = undo.members.iter().map(|m| Intent::Remove(*m)).collect();
        if undo.rotate {
            intents.push(Intent::Rotate);
        }
        let mut passed_over = Vec::new();
        let mine = &held[confirmed..];
        for (e, again) in mine.iter().zip(made_again(mine, &undo.passed_over)) {
            let entry: DocEntry = e.open(SIG_LABEL).map_err(access::AccessError::from)?;
            if let DocOp::AddMember { member, .. } = &entry.op
                && !again
            {
                if undo.passed_over.contains(&e.signer) {
                    passed_over.push((*member, e.signer));
                }
                continue;
            }
            intents.push(match entry.op {
                DocOp::Rotate { epoch: next, .. } => {
                    epoch = next;
                    Intent::Rotate
                }
                DocOp::AddMember {
                    member,
                    role,
                    expires,
                    details,
                    ..
                } => {
                    let key = old_keys
                        .get(&epoch)
                        .ok_or(Inconsistent::NoEpochKey(epoch))?;
                    let details = Zeroizing::new(
                        access::open_details(doc, epoch, key, &details)
                            .map_err(access::AccessError::from)?,
                    );
                    Intent::Add {
                        member,
                        role,
                        expires,
                        details,
                    }
                }
                DocOp::RemoveMember { member } => Intent::Remove(member),
                DocOp::Dispose => Intent::Dispose,
                DocOp::Genesis { .. } => {
                    return Err(Inconsistent::SecondGenesis.into());
                }
            });
        }

        // The relay's entries in place of the unsent ones.
        self.drop_access_outbox(doc)?;
        self.store.truncate_log(&doc.0, confirmed as u64)?;
        let there = self
            .access()
            .accept_access_entries(doc, fetched, accounts)?;
        for (member, by) in passed_over {
            // Granted in the relay's log too: that share stands.
            if there.members.contains_key(&member) {
                continue;
            }
            self.trail().record(
                &format!(
                    "share to {} not granted again: device {} granted it, which the account log taken at a turn revokes (or left out); grant it again if it was yours",
                    member.short(),
                    by.short()
                ),
                Some(*doc),
            )?;
        }

        // Replayed where still needed; a removal or rotation means one new
        // epoch at the end, sealed to whoever is a member then.
        let mut rotate = false;
        if intents.iter().any(|i| matches!(i, Intent::Dispose)) {
            self.access().append_access_entry(doc, DocOp::Dispose)?;
            return Ok(None);
        }
        for intent in intents {
            let meta = self
                .access()
                .doc_meta(doc)?
                .ok_or(Inconsistent::NoAccessLog(*doc))?;
            let is_member = |a: &AccountId| meta.members.iter().any(|(m, _, _)| m == a);
            match intent {
                Intent::Add { member, .. } if is_member(&member) => {
                    self.trail().record(
                        &format!(
                            "share to {} was granted by another device of this account at the same time; its terms stand",
                            member.short()
                        ),
                        Some(*doc),
                    )?;
                }
                Intent::Add { member, .. } if removed_there.contains(&member) => {
                    self.trail().record(
                        &format!(
                            "share to {} not granted again: another device of this account ended it at the same time",
                            member.short()
                        ),
                        Some(*doc),
                    )?;
                }
                Intent::Add {
                    member,
                    role,
                    expires,
                    details,
                } => {
                    // A removal replayed before it is followed by its
                    // rotation first: a member is added again only under a
                    // new epoch.
                    let meta = if rotate {
                        self.rotate_doc(doc)?;
                        rotate = false;
                        self.access()
                            .doc_meta(doc)?
                            .ok_or(Inconsistent::NoAccessLog(*doc))?
                    } else {
                        meta
                    };
                    let keys = self.access().doc_keys(doc)?;
                    let key = keys
                        .get(&meta.epoch)
                        .ok_or(Inconsistent::NoEpochKey(meta.epoch))?;
                    let recipient = AccountState::verify_log(&self.account_log_of(&member)?)?;
                    let op = DocOp::AddMember {
                        member,
                        role,
                        expires,
                        details: access::seal_details(doc, meta.epoch, key, &details),
                        key: access::key_envelope(doc, meta.epoch, key, &recipient)?,
                    };
                    self.access().append_access_entry(doc, op)?;
                }
                Intent::Remove(member) if is_member(&member) => {
                    self.access()
                        .append_access_entry(doc, DocOp::RemoveMember { member })?;
                    rotate = true;
                }
                Intent::Rotate => rotate = true,
                _ => {}
            }
        }
        if rotate {
            self.rotate_doc(doc)?;
        }
        Ok(None)
    }
}

/// Which of `entries`, this device's own, are done again on top of
/// another log: all but a grant a device of `passed_over` made (one a
/// turned account log distrusts, see `sync::resign`), or one a later
/// removal among them ends. An addition done again lets its member into
/// that log's newest epoch and, through each rotation's seal of the key
/// before it, every epoch before: a grant cannot stand on record without
/// its keys. (After a turn or a fork, what such a member wrote meanwhile
/// stays on the devices that hold it.)
pub(crate) fn made_again(entries: &[Signed], passed_over: &[DeviceId]) -> Vec<bool> {
    let ops: Vec<Option<DocOp>> = (entries.iter())
        .map(|e| e.open::<DocEntry>(SIG_LABEL).ok().map(|x| x.op))
        .collect();
    let removed_after = |i: usize, member: &AccountId| {
        (ops[i + 1..].iter().flatten())
            .any(|o| matches!(o, DocOp::RemoveMember { member: m } if m == member))
    };
    (entries.iter().zip(&ops).enumerate())
        .map(|(i, (e, op))| match op {
            Some(DocOp::AddMember { member, .. }) => {
                !passed_over.contains(&e.signer) && !removed_after(i, member)
            }
            _ => true,
        })
        .collect()
}

/// Whether the relay's entry `b` stands in for `a`, held here: the same
/// entry, or the same signed again by another device (all but the chain,
/// the account log length and the signature alike), signed by a device its
/// account (as `accounts` has it) has not revoked. Or one revoked since,
/// where it claims a length from before its revocation and a device active
/// past it built on it in `after` (the relay's entries after it): the new
/// epoch every owned case moves to when a device is revoked, which no
/// revoked device can sign. A twin a revoked device signed afterwards could
/// claim a length from before its revocation, lowering the floor every
/// later entry's claim keeps to: what it signed next would date back past
/// the revocation.
pub(crate) fn stands_in<'a>(
    (a, b): (&Signed, &Signed),
    after: &[Signed],
    accounts: impl Fn(&AccountId) -> Option<&'a AccountState>,
) -> bool {
    let (Ok(x), Ok(y)) = (a.open::<DocEntry>(SIG_LABEL), b.open::<DocEntry>(SIG_LABEL)) else {
        return false;
    };
    let Some(owner) = accounts(&y.account) else {
        return false;
    };
    // On the chain that goes on from `b` (checked here: a caller may
    // verify only part of what the relay served).
    let built_on_past = |r: u64| {
        let (mut prev, mut seq) = (b.hash(HASH_LABEL), y.seq);
        for e in after {
            let Ok(z) = e.open::<DocEntry>(SIG_LABEL) else {
                return false;
            };
            if z.doc != y.doc || Some(z.seq) != seq.checked_add(1) || z.prev != Some(prev) {
                return false;
            }
            if z.account == y.account
                && z.account_len > r
                && owner.active_at(&e.signer, z.account_len)
            {
                return true;
            }
            (prev, seq) = (e.hash(HASH_LABEL), z.seq);
        }
        false
    };
    (x.doc, x.seq, x.at, x.account, x.op) == (y.doc, y.seq, y.at, y.account, y.op)
        && match owner.devices.get(&b.signer).map(|d| d.revoked_seq) {
            Some(None) => true,
            Some(Some(r)) => y.account_len <= r && built_on_past(r),
            None => false,
        }
}
