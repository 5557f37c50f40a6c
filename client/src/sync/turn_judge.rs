//! Judging an account log that took another turn on the relay: where the
//! two histories part, and what the one held here did that the relay's
//! lacks (see [`super::turn`] for what is then done with it).

use casebook_shared::account::{
    self, AccountEntry, AccountKeyPub, AccountOp, AccountState, DeviceInfo, DeviceKind,
};
use casebook_shared::ids::{AccountId, DeviceId};
use casebook_shared::signed::Signed;

use super::RollbackError;

/// Where two histories of an account log part, and what the one held here
/// did that the relay's lacks.
#[derive(Debug, PartialEq)]
pub(crate) struct Turn {
    /// How many entries both begin with.
    pub common: u64,
    /// Devices the turn held here added.
    pub added_here: Vec<DeviceId>,
    /// Devices the turn held here revoked, and those the relay's turn
    /// added by one of them (or by one of theirs): each stands revoked
    /// later in the log taken than it was here (see `revoked_again`).
    pub revoked_again: Vec<DeviceId>,
    /// The devices that signed the revocations held here.
    pub revokers: Vec<DeviceId>,
    /// Devices a device the turn held here revokes revoked in the relay's
    /// turn (a lost phone, a device again on the restored relay, revoking
    /// the desk): they stay revoked, as a revocation is not undone, and
    /// are paired again.
    pub stay_revoked: Vec<DeviceId>,
    /// Devices the turn held here added by a device the relay's revokes
    /// (and the one held here does not), or by one of these: left out of
    /// the log taken, as a device that pairs again.
    pub dropped: Vec<DeviceId>,
    /// Devices the relay's turn revokes and the one held here does not
    /// (but those a device revoked here revoked there: the desk, revoked
    /// by the lost phone, is the therapist's), and those left out: a share
    /// one of them granted in an access entry signed again is ended (see
    /// `resign`).
    pub distrusted: Vec<DeviceId>,
    /// Whether the turn held here made account keys (a revocation): the
    /// relay's log may hold other keys of the same generations, so a case
    /// sealed to one made here (by a colleague, too) moves on, as its
    /// generation alone does not tell.
    pub keys_parted: bool,
    /// The newest account-key generation such a revocation made: a key
    /// the revoked device knows, so the log taken must end in a newer one
    /// this device made.
    pub tainted_key: Option<u32>,
    /// What the log taken must have that the relay's lacks, in the order
    /// it is done on top of the relay's.
    pub lost: Vec<Lost>,
    /// Whether each revocation made again takes the key it made here (the
    /// generations line up: the relay's turn revoked nothing else), so
    /// what was sealed to that key stays readable; otherwise each takes a
    /// new key, and what was sealed to the old one is reached through the
    /// new epoch every case then moves to.
    pub same_keys: bool,
}

/// One thing the log taken must have that the relay's lacks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lost {
    /// A device the turn held here added, to be signed in again.
    Device(DeviceInfo),
    /// A device the relay's turn added by a device the one held here
    /// revokes: a lost phone, a device again on the restored relay,
    /// pairing a watch. Revoked, to a new key.
    Cut(DeviceId),
    /// A revocation the turn held here made, to be made again (to the key
    /// it made here, with [`Turn::same_keys`]).
    Revocation {
        device: DeviceId,
        key: AccountKeyPub,
    },
}

impl Lost {
    /// The device it revokes, if it is a revocation.
    pub fn revokes(&self) -> Option<DeviceId> {
        match self {
            Lost::Revocation { device, .. } | Lost::Cut(device) => Some(*device),
            Lost::Device(_) => None,
        }
    }
}

/// Why a turn is not taken (the rest of the refusal's text is
/// [`RollbackError::AccountLogTurned`]'s).
pub(crate) const REVOKED_SIGNS: &str = "one holds an entry signed by a device the other revokes, other than a pairing, or a revocation of another device (not one revoked here or that signed anything here, nor the recovery words' paper one), by a device the one held here revokes";
pub const LACKS_DEVICES: &str = "the relay's lacks devices or revocations of the one held, which a device of that account adds again";
pub(crate) const UNEXPECTED: &str = "an entry of it is neither an added device nor a revocation";

/// One entry of a turn: who signed it and what it does.
type Step = (DeviceId, AccountOp);

/// Judges the relay's whole log `theirs` of `account` (verified by the
/// caller) against the one `held`: a turn (they part after a shared
/// beginning) that can be taken, as [`super::turn`] says. Anything else
/// keeps the refusal the fetch met, as `not_a_turn`.
pub(crate) fn judge_turn(
    account: &AccountId,
    held: &[Signed],
    theirs: &[Signed],
    not_a_turn: RollbackError,
) -> std::result::Result<Turn, RollbackError> {
    let common = held.iter().zip(theirs).take_while(|(a, b)| a == b).count();
    // No shared genesis, or one log is the other's beginning: a rollback
    // or another account's log, not a turn.
    if common == 0 || common == held.len() || common == theirs.len() {
        return Err(not_a_turn);
    }
    let refused = |why: &'static str| RollbackError::AccountLogTurned {
        account: *account,
        after: common as u64,
        why,
    };
    // Both logs verified whole, so every entry opens and none is a genesis.
    let steps = |entries: &[Signed]| -> std::result::Result<Vec<Step>, RollbackError> {
        entries
            .iter()
            .map(|e| match e.open::<AccountEntry>(account::SIG_LABEL) {
                Ok(AccountEntry { op, .. }) if !matches!(op, AccountOp::Genesis { .. }) => {
                    Ok((e.signer, op))
                }
                _ => Err(refused(UNEXPECTED)),
            })
            .collect()
    };
    let here = steps(&held[common..])?;
    let there = steps(&theirs[common..])?;
    let (rev_here, rev_there) = (revocations(&here), revocations(&there));
    let revoked_there: Vec<DeviceId> = rev_there.iter().map(|r| r.0).collect();
    let revokers: Vec<DeviceId> = (here.iter())
        .filter(|(_, op)| matches!(op, AccountOp::RevokeDevice { .. }))
        .map(|(s, _)| *s)
        .collect();
    // The kinds of the devices the relay's log lists (it verified whole).
    let paper: Vec<DeviceId> = AccountState::verify_log(theirs)
        .map_err(|_| refused(UNEXPECTED))?
        .devices
        .values()
        .filter(|d| d.info.kind == DeviceKind::Paper)
        .map(|d| d.info.id)
        .collect();
    // What a device the turn held here revokes signed in the relay's:
    // devices it paired (and what they paired), which are cut too, and
    // revocations of other devices, which stand (the device it revoked
    // pairs again). Not a revocation of itself or of another device
    // revoked here (its key would be the newest, and no revocation made
    // again after it), of a device that signed anything held here (the
    // laptop that revoked it could then not make that again, and what
    // another paired here would be left out at its word), or of the
    // recovery words' paper device (the account's recovery would be gone
    // unasked).
    let mut tainted: Vec<DeviceId> = rev_here.iter().map(|r| r.0).collect();
    let mut cut = Vec::new();
    let mut stay_revoked = Vec::new();
    let mut tainted_key = None;
    for (signer, op) in &there {
        if !tainted.contains(signer) {
            continue;
        }
        match op {
            AccountOp::AddDevice { device, .. } => {
                tainted.push(device.id);
                cut.push(device.id);
            }
            AccountOp::RevokeDevice { device, key, .. }
                if !tainted.contains(device)
                    && !here.iter().any(|(s, _)| s == device)
                    && !paper.contains(device) =>
            {
                stay_revoked.push(*device);
                tainted_key = Some(key.generation);
            }
            _ => return Err(refused(REVOKED_SIGNS)),
        }
    }
    let added_there: Vec<DeviceId> = there
        .iter()
        .filter_map(|(_, op)| match op {
            AccountOp::AddDevice { device, .. } => Some(device.id),
            _ => None,
        })
        .collect();
    // A device the relay's turn revoked (the desk revoking a lost phone on
    // the restored relay), where this turn did not revoke it too, that
    // paired a device held here (and what that one paired): left out, as
    // it may be the thief's, and paired again if it is not. Anything else
    // such a device signed here is refused.
    let revoked_here: Vec<DeviceId> = rev_here.iter().map(|r| r.0).collect();
    let mut dropped: Vec<DeviceId> = Vec::new();
    for (s, op) in &here {
        let gone = revoked_there.contains(s) && !revoked_here.contains(s);
        if !gone && !dropped.contains(s) {
            continue;
        }
        match op {
            AccountOp::AddDevice { device, .. } => {
                if !added_there.contains(&device.id) {
                    dropped.push(device.id);
                }
            }
            _ => return Err(refused(REVOKED_SIGNS)),
        }
    }
    let mut added_here = Vec::new();
    let mut lost = Vec::new();
    let mut cut_yet = false;
    for (_, op) in &here {
        match op {
            AccountOp::AddDevice { device, .. } if dropped.contains(&device.id) => {}
            // Added and revoked here, and not in the relay's log: where the
            // relay's turn made keys (or a cut will), not signed in again,
            // where it would be wrapped a key it never had (anything it signed here then no
            // longer verifies, and the turn is refused for that). Where it
            // made none, signed in and revoked again like any other: the
            // key it is wrapped is the one both turns began with, and what
            // it signed (its first sync's audit document) is vouched for
            // in between. One the relay's log lists is revoked again.
            AccountOp::AddDevice { device, .. }
                if revoked_here.contains(&device.id)
                    && !added_there.contains(&device.id)
                    && !(rev_there.is_empty() && cut.is_empty()) => {}
            AccountOp::RevokeDevice { device, .. }
                if !added_there.contains(device)
                    && (!(rev_there.is_empty() && cut.is_empty()) || dropped.contains(device))
                    && here.iter().any(|(_, op)| {
                        matches!(op, AccountOp::AddDevice { device: d, .. } if d.id == *device)
                    }) => {}
            AccountOp::AddDevice { device, .. } => {
                added_here.push(device.id);
                if !added_there.contains(&device.id) {
                    lost.push(Lost::Device(device.clone()));
                }
            }
            AccountOp::RevokeDevice { device, key, .. } if !revoked_there.contains(device) => {
                // Devices the revoked one paired there go first: a
                // revocation wraps its key to every device left.
                if !cut_yet {
                    cut_yet = true;
                    lost.extend(
                        (cut.iter())
                            .filter(|c| !revoked_there.contains(c))
                            .map(|c| Lost::Cut(*c)),
                    );
                }
                // One the revoked device paired there again is cut.
                if !cut.contains(device) {
                    lost.push(Lost::Revocation {
                        device: *device,
                        key: *key,
                    });
                }
            }
            _ => {}
        }
    }
    if !cut_yet {
        lost.extend(
            (cut.iter())
                .filter(|c| !revoked_there.contains(c))
                .map(|c| Lost::Cut(*c)),
        );
    }
    // The relay's turn made again the first of the revocations held here,
    // to the same keys (another device of the account took the turn
    // first), and nothing else was revoked or is to be cut.
    let same_keys = cut.is_empty() && rev_here.starts_with(&rev_there);
    let mut distrusted: Vec<DeviceId> = (revoked_there.iter())
        .filter(|d| !revoked_here.contains(d) && !stay_revoked.contains(d))
        .copied()
        .collect();
    distrusted.extend(&dropped);
    Ok(Turn {
        common: common as u64,
        added_here,
        revoked_again: tainted,
        revokers,
        stay_revoked,
        dropped,
        distrusted,
        tainted_key,
        keys_parted: !rev_here.is_empty(),
        lost,
        same_keys,
    })
}

/// The revocations among `steps`, in order, with the key each made.
fn revocations(steps: &[Step]) -> Vec<(DeviceId, AccountKeyPub)> {
    steps
        .iter()
        .filter_map(|(_, op)| match op {
            AccountOp::RevokeDevice { device, key, .. } => Some((*device, *key)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
