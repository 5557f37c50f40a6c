//! The sync engine's decisions, with no I/O: what the relay's listing means
//! for each document (and whether it is a rollback), and whether a fetched
//! envelope may touch a document. The tokio shell in [`super`] only moves
//! bytes between these functions, the relay and the store.

use std::collections::BTreeMap;

use casebook_shared::access::Role;
use casebook_shared::account::AccountState;
use casebook_shared::crypto::SecretKey;
use casebook_shared::envelope::{Envelope, Kind};
use casebook_shared::frames::{DocHead, Stored};
use casebook_shared::ids::{AccountId, DeviceId, DocId, Hash};
use zeroize::Zeroizing;

use crate::docs::DocMeta;
use crate::store::DocSync;
use crate::sync::RollbackError;

/// What one document needs this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub doc: DocId,
    /// Access-log entries held; fetch from here when the relay has more.
    pub access_from: Option<u64>,
    /// Envelopes seen; fetch after this when the relay has more.
    pub changes_after: Option<u64>,
    /// The relay holds less of the document's envelopes than this device
    /// has seen, or lost an upload of its own it acknowledged: restored
    /// from an older copy, or losing data. Everything it has is fetched
    /// again, the seen mark starts from its numbers, and what this device
    /// holds is sent again (see `sync::apply`); the next pull looks for
    /// what the relay lost of every other document (`sync::heal::RECHECK`).
    pub rewind: bool,
    /// The relay's access log holds as many entries as this device has
    /// had from it, but not the same last one, or (of a document this
    /// account owns) fewer that could not be sent back: restored from an
    /// older copy after which another device's entries took the place of
    /// this one's, or showing another history. It is fetched whole
    /// ([`Need::access_from`] is 0) and taken only where this account
    /// signed what differs (see `rebase_fork`).
    pub fork: bool,
}

/// What a listing calls for.
#[derive(Debug, Default)]
pub struct Plan {
    pub needs: Vec<Need>,
    /// Documents the relay shows fewer access entries of than this device
    /// has had from it, entries it cannot send back (another account's
    /// devices signed them), each with why: held back this round.
    pub held_back: Vec<(DocId, RollbackError)>,
}

/// Compares the relay's listing with what this device has seen. A relay that
/// shows fewer access entries than the device has already seen is rolling
/// that document back (an older access log could bring back a member who
/// was removed): it is held back, named, and the rest goes on, since a
/// restore loses a colleague's entries that only her devices can send back
/// and that must not stop this device's own cases meanwhile. A listing
/// that names a document twice, or lacks one this account owns, is
/// refused whole. One that holds fewer envelopes
/// (a lower sequence number than was seen, or than an upload of this
/// device's was given) lost them: the document is fetched again and healed
/// ([`Need::rewind`]), so a relay restored from an older copy locks nobody
/// out.
/// `held` is each document this device holds with its sync record, whether
/// its own account owns it, and the hash of the last access entry it has
/// had from the relay; an owned document missing from the listing is a
/// rollback too (a relay cannot make an owner's document vanish).
pub fn plan(
    heads: &[DocHead],
    held: &BTreeMap<DocId, (DocSync, bool, Option<Hash>)>,
) -> Result<Plan, RollbackError> {
    let mut needs = Vec::new();
    let mut held_back = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for h in heads {
        if !listed.insert(h.doc) {
            return Err(RollbackError::ListedTwice(h.doc));
        }
        let (local, owned, here_head) = held
            .get(&h.doc)
            .map_or((DocSync::default(), false, None), |(s, o, head)| {
                (*s, *o, *head)
            });
        // This account signed every entry of a document it owns: one the
        // relay shows shorter, that was not sent back (see `heal_access`),
        // took another turn there, and is taken as one that is as long.
        let turned = owned && h.access_len > 0 && h.access_len < local.access_len;
        if h.access_len < local.access_len && !turned {
            let refused = RollbackError::FewerAccessEntries {
                doc: h.doc,
                relay: h.access_len,
                here: local.access_len,
            };
            held_back.push((h.doc, refused));
            continue;
        }
        let rewind = h.seq < local.seen || h.seq < local.acked;
        // A document that lacks changes its changes build on is fetched
        // again from the start: a repaired relay may serve them anywhere.
        // So is one the relay holds less of than was seen here.
        let changes_after = match (local.missing > 0 || rewind) && h.seq > 0 {
            true => Some(0),
            false => (h.seq > local.seen).then_some(local.seen),
        };
        let fork = turned
            || (h.access_len == local.access_len
                && here_head.is_some_and(|here| here != h.access_head));
        let access_from = match fork {
            true => Some(0),
            false => (h.access_len > local.access_len).then_some(local.access_len),
        };
        let need = Need {
            doc: h.doc,
            access_from,
            changes_after,
            rewind,
            fork,
        };
        if need.access_from.is_some() || need.changes_after.is_some() || need.rewind {
            needs.push(need);
        }
    }
    for (doc, (sync, owned, _)) in held {
        if *owned && (sync.access_len > 0 || sync.acked > 0) && !listed.contains(doc) {
            return Err(RollbackError::Missing(*doc));
        }
    }
    Ok(Plan { needs, held_back })
}

/// Why a fetched envelope was refused. Refused envelopes change nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("does not decode: {0}")]
    Malformed(String),
    #[error("was stored under document {stored} but is sealed for {sealed}")]
    Moved { stored: String, sealed: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("its author device is not in account {0}'s log")]
    UnknownDevice(String),
    #[error("its author device was revoked before this epoch")]
    RevokedDevice,
    #[error("its account may not write this document")]
    NotAllowed,
    /// Its account's membership had ended before an envelope the relay
    /// served ahead of it (see [`casebook_shared::access::role_in_epoch`]).
    /// Only the relay's order says so, and a relay that reorders (or was
    /// put right since) serves it otherwise: the document is fetched again
    /// from its start, judged in the order served then.
    #[error("its account's share had ended before envelopes the relay served ahead of it")]
    AfterRemoval,
    #[error("a snapshot that claims to cover {claims} arrived at {at}")]
    SnapshotMismatch { claims: u64, at: u64 },
    #[error("no key for epoch {0}")]
    NoKey(u32),
    #[error("does not decrypt")]
    Decrypt,
    #[error("it carries changes written as another device")]
    ForeignActor,
}

impl Refused {
    /// Whether the relay could have caused this, so that a repaired relay
    /// may serve the envelope as its author wrote it: bytes damaged or
    /// moved, or an author device or key this device does not hold yet.
    /// The seen mark stops before such an envelope, and each round asks
    /// for it again. The rest are verdicts on what the author signed
    /// (checked first), which no relay can mend.
    pub fn relay_may_mend(&self) -> bool {
        match self {
            Refused::Malformed(_)
            | Refused::Moved { .. }
            | Refused::BadSignature
            | Refused::UnknownDevice(_)
            | Refused::SnapshotMismatch { .. }
            | Refused::NoKey(_)
            | Refused::AfterRemoval => true,
            Refused::RevokedDevice
            | Refused::NotAllowed
            | Refused::Decrypt
            | Refused::ForeignActor => false,
        }
    }
}

/// A fetched envelope that passed every check, opened.
pub struct Admitted {
    pub kind: Kind,
    pub body: Zeroizing<Vec<u8>>,
    /// The author's role allows comments only: the change must be checked
    /// to add comments and nothing else before it is applied.
    pub comments_only: bool,
    /// The key epoch it was sealed under.
    pub epoch: u32,
    /// The account that wrote it, and its device.
    pub account: AccountId,
    pub author: DeviceId,
}

/// Checks a fetched envelope against everything the device knows, trusting
/// the relay for nothing: the document it was stored under, the author's
/// signature, the author's place in its signed account log, the account's
/// role in the document's signed access log, and the key of its epoch.
/// `fence` is the highest epoch of any envelope already taken for the
/// document (see [`casebook_shared::access::role_in_epoch`]). `automerge`
/// says the document's changes are Automerge changes (every document but
/// the account's audit document, whose entries name their device anyway).
pub fn admit(
    item: &Stored,
    meta: &DocMeta,
    accounts: &BTreeMap<AccountId, AccountState>,
    keys: &BTreeMap<u32, SecretKey>,
    fence: u32,
    automerge: bool,
) -> Result<Admitted, Refused> {
    let env =
        Envelope::decode(item.envelope.clone()).map_err(|e| Refused::Malformed(e.to_string()))?;
    let h = &env.header;
    if h.doc != item.doc {
        return Err(Refused::Moved {
            stored: item.doc.short(),
            sealed: h.doc.short(),
        });
    }
    env.verify().map_err(|_| Refused::BadSignature)?;
    let account = accounts
        .get(&h.account)
        .ok_or_else(|| Refused::UnknownDevice(h.account.short()))?;
    let device = account
        .devices
        .get(&h.author)
        .ok_or_else(|| Refused::UnknownDevice(h.account.short()))?;
    // A revoked device's old changes stay readable. It held only the account
    // keys older than the one its revocation made, so a change under an
    // epoch sealed to that key or a newer one cannot be its own. (Decided
    // from the signed logs alone: every device decides alike, whenever it
    // first sees the change.)
    if let Some(revoked) = device.revoked_generation
        && meta
            .wrap_generation(h.epoch, &h.account)
            .is_none_or(|g| g >= revoked)
    {
        return Err(Refused::RevokedDevice);
    }
    // The role held in the envelope's epoch, not today's: a colleague's
    // comment written before the share ended is still theirs to have made.
    let role = meta.role_in_epoch(&h.account, h.epoch, fence);
    let allowed = match (h.kind, role) {
        (Kind::Change, Some(r)) => r.can_upload(),
        // Any member tells the others what it holds and lacks (see
        // `sync::signals`).
        (Kind::Signal, Some(_)) => true,
        // A snapshot holds every change as the author's copy has it, whose
        // authors nobody can check: only the owner's devices write one.
        (Kind::Snapshot, Some(r)) => r == Role::Owner,
        (_, None) => false,
    };
    if !allowed {
        let unfenced = meta.role_in_epoch(&h.account, h.epoch, 0);
        return Err(match (h.kind, role, unfenced) {
            (Kind::Change, None, Some(r)) if r.can_upload() => Refused::AfterRemoval,
            (Kind::Signal, None, Some(_)) => Refused::AfterRemoval,
            _ => Refused::NotAllowed,
        });
    }
    if h.kind == Kind::Snapshot && h.covers != item.seq {
        return Err(Refused::SnapshotMismatch {
            claims: h.covers,
            at: item.seq,
        });
    }
    let key = keys.get(&h.epoch).ok_or(Refused::NoKey(h.epoch))?;
    let body = env.open(key).map_err(|_| Refused::Decrypt)?;
    // Who wrote a value is read off its operation's actor (a signature, a
    // comment): a change must be written as the device that sealed it.
    // Save from an owner's device, which holds every change as its
    // snapshots do, and sends one on another device's behalf where the
    // relay lost it (`sync::heal`).
    if automerge
        && h.kind == Kind::Change
        && role != Some(Role::Owner)
        && !crate::notes::written_by(&body, h.author.as_bytes())
    {
        return Err(Refused::ForeignActor);
    }
    Ok(Admitted {
        kind: h.kind,
        body,
        comments_only: role == Some(Role::Comment),
        epoch: h.epoch,
        account: h.account,
        author: h.author,
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
