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
use casebook_shared::ids::{AccountId, DeviceId, DocId};
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
    /// holds is sent again (see `sync::apply`).
    pub rewind: bool,
}

/// Compares the relay's listing with what this device has seen. A relay that
/// shows fewer access entries than the device has already seen is rolling
/// it back, and the whole listing is refused (an older access log could
/// bring back a member who was removed). One that holds fewer envelopes
/// (a lower sequence number than was seen, or than an upload of this
/// device's was given) lost them: the document is fetched again and healed
/// ([`Need::rewind`]), so a relay restored from an older copy locks nobody
/// out.
/// `held` is each document this device holds with its sync record and whether
/// its own account owns it; an owned document missing from the listing is a
/// rollback too (a relay cannot make an owner's document vanish).
pub fn plan(
    heads: &[DocHead],
    held: &BTreeMap<DocId, (DocSync, bool)>,
) -> Result<Vec<Need>, RollbackError> {
    let mut needs = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for h in heads {
        if !listed.insert(h.doc) {
            return Err(RollbackError::ListedTwice(h.doc));
        }
        let local = held.get(&h.doc).map(|(s, _)| *s).unwrap_or_default();
        if h.access_len < local.access_len {
            return Err(RollbackError::FewerAccessEntries {
                doc: h.doc,
                relay: h.access_len,
                here: local.access_len,
            });
        }
        let rewind = h.seq < local.seen || h.seq < local.acked;
        // A document that lacks changes its changes build on is fetched
        // again from the start: a repaired relay may serve them anywhere.
        // So is one the relay holds less of than was seen here.
        let changes_after = match (local.missing > 0 || rewind) && h.seq > 0 {
            true => Some(0),
            false => (h.seq > local.seen).then_some(local.seen),
        };
        let need = Need {
            doc: h.doc,
            access_from: (h.access_len > local.access_len).then_some(local.access_len),
            changes_after,
            rewind,
        };
        if need.access_from.is_some() || need.changes_after.is_some() || need.rewind {
            needs.push(need);
        }
    }
    for (doc, (sync, owned)) in held {
        if *owned && (sync.access_len > 0 || sync.acked > 0) && !listed.contains(doc) {
            return Err(RollbackError::Missing(*doc));
        }
    }
    Ok(needs)
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
            | Refused::NoKey(_) => true,
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
        // A snapshot holds every change as the author's copy has it, whose
        // authors nobody can check: only the owner's devices write one.
        (Kind::Snapshot, Some(r)) => r == Role::Owner,
        (_, None) => false,
    };
    if !allowed {
        return Err(Refused::NotAllowed);
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
    if automerge && h.kind == Kind::Change && !crate::notes::written_by(&body, h.author.as_bytes())
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
mod tests {
    use super::*;

    fn head(doc: u8, access_len: u64, seq: u64) -> DocHead {
        DocHead {
            doc: DocId([doc; 16]),
            access_len,
            seq,
        }
    }

    fn held(doc: u8, access_len: u64, seen: u64, owned: bool) -> (DocId, (DocSync, bool)) {
        (
            DocId([doc; 16]),
            (
                DocSync {
                    seen,
                    access_len,
                    since_snapshot: 0,
                    ..DocSync::default()
                },
                owned,
            ),
        )
    }

    use casebook_shared::access::Grant;
    use casebook_shared::account;
    use casebook_shared::crypto::{DeviceSigner, DhSecret};
    use casebook_shared::envelope::Header;
    use casebook_shared::ids::EnvelopeId;

    /// An account of one device, and an envelope sealed by it.
    struct Author {
        signer: DeviceSigner,
        state: AccountState,
    }

    fn author() -> Author {
        let signer = DeviceSigner::generate();
        let (genesis, _) = account::genesis(&signer, &DhSecret::generate(), 0);
        let state = AccountState::from_genesis(&genesis).unwrap();
        Author { signer, state }
    }

    const DOC: DocId = DocId([4; 16]);

    fn sealed(a: &Author, key: &SecretKey, kind: Kind, covers: u64, seq: u64) -> Stored {
        sealed_in(a, key, 0, kind, covers, seq)
    }

    fn sealed_in(
        a: &Author,
        key: &SecretKey,
        epoch: u32,
        kind: Kind,
        covers: u64,
        seq: u64,
    ) -> Stored {
        let header = Header {
            kind,
            doc: DOC,
            epoch,
            account: a.state.id,
            author: a.signer.device_id(),
            id: EnvelopeId([seq as u8; 24]),
            covers,
        };
        let body = match kind {
            Kind::Change => change_as(&a.signer.device_id().0),
            Kind::Snapshot => b"a whole document".to_vec(),
        };
        Stored {
            doc: DOC,
            seq,
            envelope: Envelope::seal(header, key, &a.signer, &body).into_bytes(),
        }
    }

    /// A real batch of changes, written as an actor of `device`.
    fn change_as(device: &[u8]) -> Vec<u8> {
        let actor = [device, b"-process"].concat();
        let mut case =
            crate::notes::CaseDoc::new("Jordan Avery", "2026-11-20", DocId([2; 16]), &actor)
                .unwrap();
        case.changes_since(&[])
    }

    /// A document's state as its access log would leave it: each account's
    /// role from one epoch to another, every epoch sealed to generation 0
    /// except where `wraps` says otherwise.
    fn meta_of(grants: &[(&Author, Role, u32, Option<u32>)], epoch: u32) -> DocMeta {
        let grants: Vec<Grant> = grants
            .iter()
            .map(|(a, role, from, until)| Grant {
                account: a.state.id,
                role: *role,
                from_epoch: *from,
                until_epoch: *until,
            })
            .collect();
        let wraps = (0..=epoch)
            .flat_map(|e| grants.iter().map(move |g| ((e, g.account), 0)))
            .collect();
        DocMeta {
            disposed: false,
            owner: grants[0].account,
            epoch,
            members: grants
                .iter()
                .filter(|g| g.until_epoch.is_none())
                .map(|g| (g.account, g.role, None))
                .collect(),
            grants,
            wraps,
        }
    }

    #[test]
    fn a_change_is_judged_by_the_role_and_keys_of_its_epoch() {
        let (owner, colleague) = (author(), author());
        let (k0, k1) = (SecretKey::random(), SecretKey::random());
        let keys = BTreeMap::from([
            (0, SecretKey::from_bytes(*k0.expose())),
            (1, SecretKey::from_bytes(*k1.expose())),
        ]);
        // The colleague wrote in epoch 0 and was removed; epoch 1 followed.
        let meta = meta_of(
            &[
                (&owner, Role::Owner, 0, None),
                (&colleague, Role::Write, 0, Some(0)),
            ],
            1,
        );
        let accounts: BTreeMap<_, _> = [&owner, &colleague]
            .iter()
            .map(|a| (a.state.id, a.state.clone()))
            .collect();
        assert!(
            admit(
                &sealed_in(&colleague, &k0, 0, Kind::Change, 0, 1),
                &meta,
                &accounts,
                &keys,
                0,
                true
            )
            .is_ok(),
            "written while a member: kept by a device that first sees it now"
        );
        assert_eq!(
            admit(
                &sealed_in(&colleague, &k1, 1, Kind::Change, 0, 2),
                &meta,
                &accounts,
                &keys,
                0,
                true
            )
            .err(),
            Some(Refused::NotAllowed),
            "under the epoch after the removal"
        );
        assert_eq!(
            admit(
                &sealed_in(&colleague, &k0, 0, Kind::Change, 0, 3),
                &meta,
                &accounts,
                &keys,
                1,
                true
            )
            .err(),
            Some(Refused::NotAllowed),
            "under its old key, but after the next epoch's first envelope"
        );

        // The owner's second device, revoked: the revocation made generation
        // 1, and epoch 1 was sealed to it.
        let (tablet_signer, tablet_dh) = (DeviceSigner::generate(), DhSecret::generate());
        let (genesis, first_key) = account::genesis(&owner.signer, &DhSecret::generate(), 0);
        let st = AccountState::from_genesis(&genesis).unwrap();
        let tablet = account::DeviceInfo {
            id: tablet_signer.device_id(),
            dh: tablet_dh.public(),
            kind: account::DeviceKind::Device,
        };
        let add = account::add_device(&st, &owner.signer, &first_key, tablet, 1).unwrap();
        let st = AccountState::verify_log(&[genesis.clone(), add.clone()]).unwrap();
        let (revoke, _) =
            account::revoke_device(&st, &owner.signer, &first_key, tablet_signer.device_id(), 2)
                .unwrap();
        let st = AccountState::verify_log(&[genesis, add, revoke]).unwrap();
        let owner2 = Author {
            signer: tablet_signer,
            state: st.clone(),
        };
        let mut meta = meta_of(&[(&owner2, Role::Owner, 0, None)], 1);
        meta.wraps = BTreeMap::from([((0, st.id), 0), ((1, st.id), 1)]);
        let accounts = BTreeMap::from([(st.id, st)]);
        assert!(
            admit(
                &sealed_in(&owner2, &k0, 0, Kind::Change, 0, 3),
                &meta,
                &accounts,
                &keys,
                0,
                true
            )
            .is_ok(),
            "the revoked device's change from before"
        );
        assert_eq!(
            admit(
                &sealed_in(&owner2, &k1, 1, Kind::Change, 0, 4),
                &meta,
                &accounts,
                &keys,
                0,
                true
            )
            .err(),
            Some(Refused::RevokedDevice),
            "under a key it never held"
        );
    }

    #[test]
    fn admit_checks_everything_a_relay_could_fake() {
        let (owner, reader, commenter, stranger) = (author(), author(), author(), author());
        let key = SecretKey::random();
        let keys = BTreeMap::from([(0, SecretKey::from_bytes(*key.expose()))]);
        let meta = meta_of(
            &[
                (&owner, Role::Owner, 0, None),
                (&reader, Role::Read, 0, None),
                (&commenter, Role::Comment, 0, None),
            ],
            0,
        );
        let accounts: BTreeMap<_, _> = [&owner, &reader, &commenter]
            .iter()
            .map(|a| (a.state.id, a.state.clone()))
            .collect();
        let admit = |item: &Stored| admit(item, &meta, &accounts, &keys, 0, true);

        let good = sealed(&owner, &key, Kind::Change, 0, 1);
        let a = admit(&good).unwrap();
        assert_eq!(&a.body[..], &change_as(&owner.signer.device_id().0)[..]);
        assert!(!a.comments_only);
        assert!(
            admit(&sealed(&commenter, &key, Kind::Change, 0, 2))
                .unwrap()
                .comments_only
        );
        assert_eq!(
            admit(&sealed(&reader, &key, Kind::Change, 0, 3)).err(),
            Some(Refused::NotAllowed)
        );
        assert_eq!(
            admit(&sealed(&commenter, &key, Kind::Snapshot, 4, 4)).err(),
            Some(Refused::NotAllowed)
        );
        assert!(matches!(
            admit(&sealed(&stranger, &key, Kind::Change, 0, 5)),
            Err(Refused::UnknownDevice(_))
        ));
        assert!(matches!(
            admit(&sealed(&owner, &key, Kind::Snapshot, 9, 6)),
            Err(Refused::SnapshotMismatch { .. })
        ));
        assert!(admit(&sealed(&owner, &key, Kind::Snapshot, 7, 7)).is_ok());
        // Changes written as another device (here the owner's), sealed and
        // signed by the commenter: who wrote a value must be who sealed it.
        let header = Header {
            kind: Kind::Change,
            doc: DOC,
            epoch: 0,
            account: commenter.state.id,
            author: commenter.signer.device_id(),
            id: EnvelopeId([40; 24]),
            covers: 0,
        };
        let forged = Stored {
            doc: DOC,
            seq: 40,
            envelope: Envelope::seal(
                header,
                &key,
                &commenter.signer,
                &change_as(&owner.signer.device_id().0),
            )
            .into_bytes(),
        };
        assert_eq!(admit(&forged).err(), Some(Refused::ForeignActor));
        let wrong_key = SecretKey::random();
        assert_eq!(
            admit(&sealed(&owner, &wrong_key, Kind::Change, 0, 8)).err(),
            Some(Refused::Decrypt)
        );

        let moved = Stored {
            doc: DocId([5; 16]),
            ..good.clone()
        };
        assert!(matches!(admit(&moved), Err(Refused::Moved { .. })));
        for i in 0..good.envelope.len() {
            let mut bad = good.clone();
            bad.envelope[i] ^= 0x20;
            assert!(admit(&bad).is_err(), "byte {i} flipped was accepted");
        }
        let mut short = good.clone();
        short.envelope.truncate(100);
        assert!(matches!(admit(&short), Err(Refused::Malformed(_))));
    }

    #[test]
    fn plan_asks_for_what_is_new() {
        let local = BTreeMap::from([held(1, 1, 5, true), held(2, 1, 9, true)]);
        let needs = plan(&[head(1, 2, 5), head(2, 1, 12), head(3, 1, 4)], &local).unwrap();
        assert_eq!(
            needs,
            vec![
                Need {
                    doc: DocId([1; 16]),
                    access_from: Some(1),
                    changes_after: None,
                    rewind: false,
                },
                Need {
                    doc: DocId([2; 16]),
                    access_from: None,
                    changes_after: Some(9),
                    rewind: false,
                },
                Need {
                    doc: DocId([3; 16]),
                    access_from: Some(0),
                    changes_after: Some(0),
                    rewind: false,
                },
            ]
        );
    }

    #[test]
    fn an_incomplete_document_is_fetched_again_from_the_start() {
        let mut local = BTreeMap::from([held(1, 1, 5, true)]);
        local.get_mut(&DocId([1; 16])).unwrap().0.missing = 2;
        let needs = plan(&[head(1, 1, 5)], &local).unwrap();
        assert_eq!(needs[0].changes_after, Some(0), "nothing new, all again");
        local.get_mut(&DocId([1; 16])).unwrap().0.missing = 0;
        assert!(plan(&[head(1, 1, 5)], &local).unwrap().is_empty());
    }

    #[test]
    fn plan_refuses_rollback_and_heals_lost_envelopes() {
        let local = BTreeMap::from([held(1, 2, 5, true)]);
        assert!(
            plan(&[head(1, 1, 5)], &local).is_err(),
            "shorter access log"
        );
        let behind = plan(&[head(1, 2, 4)], &local).unwrap();
        assert_eq!(
            (behind[0].changes_after, behind[0].rewind),
            (Some(0), true),
            "fewer envelopes: all fetched again, and healed"
        );
        let mut acked = local.clone();
        acked.get_mut(&DocId([1; 16])).unwrap().0.acked = 7;
        assert!(
            plan(&[head(1, 2, 6)], &acked).unwrap()[0].rewind,
            "an acknowledged upload lost"
        );
        assert!(
            plan(&[head(1, 2, 7)], &acked)
                .unwrap()
                .iter()
                .all(|n| !n.rewind)
        );
        let emptied = plan(&[head(1, 2, 0)], &local).unwrap();
        assert_eq!((emptied[0].changes_after, emptied[0].rewind), (None, true));
        assert!(plan(&[], &local).is_err(), "owned document withheld");
        let shared = BTreeMap::from([held(1, 2, 5, false)]);
        assert!(
            plan(&[], &shared).is_ok(),
            "a shared document may be unshared"
        );
    }
}
