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
use casebook_shared::ids::{AccountId, DocId};
use zeroize::Zeroizing;

use crate::docs::DocMeta;
use crate::store::DocSync;

/// What one document needs this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub doc: DocId,
    /// Access-log entries held; fetch from here when the relay has more.
    pub access_from: Option<u64>,
    /// Envelopes seen; fetch after this when the relay has more.
    pub changes_after: Option<u64>,
}

/// Compares the relay's listing with what this device has seen. A relay that
/// shows fewer access entries or a lower sequence number than the device has
/// already seen is rolling it back, and the whole listing is refused.
/// `held` is each document this device holds with its sync record and whether
/// its own account owns it; an owned document missing from the listing is a
/// rollback too (a relay cannot make an owner's document vanish).
pub fn plan(
    heads: &[DocHead],
    held: &BTreeMap<DocId, (DocSync, bool)>,
) -> Result<Vec<Need>, String> {
    let mut needs = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for h in heads {
        listed.insert(h.doc);
        let local = held.get(&h.doc).map(|(s, _)| *s).unwrap_or_default();
        if h.access_len < local.access_len {
            return Err(format!(
                "document {} has {} access entries on the relay, {} here",
                h.doc.short(),
                h.access_len,
                local.access_len
            ));
        }
        if h.seq < local.seen {
            return Err(format!(
                "document {} is at {} on the relay, {} seen here",
                h.doc.short(),
                h.seq,
                local.seen
            ));
        }
        let need = Need {
            doc: h.doc,
            access_from: (h.access_len > local.access_len).then_some(local.access_len),
            changes_after: (h.seq > local.seen).then_some(local.seen),
        };
        if need.access_from.is_some() || need.changes_after.is_some() {
            needs.push(need);
        }
    }
    for (doc, (sync, owned)) in held {
        if *owned && sync.access_len > 0 && !listed.contains(doc) {
            return Err(format!(
                "document {} is missing from the relay",
                doc.short()
            ));
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
}

/// A fetched envelope that passed every check, opened.
pub struct Admitted {
    pub kind: Kind,
    pub body: Zeroizing<Vec<u8>>,
    /// The author's role allows comments only: the change must be checked
    /// to add comments and nothing else before it is applied.
    pub comments_only: bool,
}

/// Checks a fetched envelope against everything the device knows, trusting
/// the relay for nothing: the document it was stored under, the author's
/// signature, the author's place in its signed account log, the account's
/// role in the document's signed access log, and the key of its epoch.
pub fn admit(
    item: &Stored,
    meta: &DocMeta,
    accounts: &BTreeMap<AccountId, AccountState>,
    keys: &BTreeMap<u32, SecretKey>,
    now: u64,
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
    // A revoked device's old changes stay readable; after the revocation the
    // documents rotate, and it holds no key of the newer epochs.
    if device.revoked_seq.is_some() && h.epoch >= meta.epoch {
        return Err(Refused::RevokedDevice);
    }
    let role = if h.account == meta.owner {
        Some(Role::Owner)
    } else {
        meta.role_of(&h.account, now)
    };
    let allowed = match (h.kind, role) {
        (Kind::Change, Some(r)) => r.can_upload(),
        (Kind::Snapshot, Some(r)) => r >= Role::Write,
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
    Ok(Admitted {
        kind: h.kind,
        body,
        comments_only: role == Some(Role::Comment),
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
                },
                owned,
            ),
        )
    }

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
        let header = Header {
            kind,
            doc: DOC,
            epoch: 0,
            account: a.state.id,
            author: a.signer.device_id(),
            id: EnvelopeId([seq as u8; 24]),
            covers,
        };
        Stored {
            doc: DOC,
            seq,
            envelope: Envelope::seal(header, key, &a.signer, b"automerge bytes").into_bytes(),
        }
    }

    #[test]
    fn admit_checks_everything_a_relay_could_fake() {
        let (owner, reader, commenter, stranger) = (author(), author(), author(), author());
        let key = SecretKey::random();
        let keys = BTreeMap::from([(0, SecretKey::from_bytes(*key.expose()))]);
        let meta = DocMeta {
            owner: owner.state.id,
            epoch: 0,
            members: vec![
                (owner.state.id, Role::Owner, None),
                (reader.state.id, Role::Read, None),
                (commenter.state.id, Role::Comment, None),
            ],
        };
        let accounts: BTreeMap<_, _> = [&owner, &reader, &commenter]
            .iter()
            .map(|a| (a.state.id, a.state.clone()))
            .collect();
        let admit = |item: &Stored| admit(item, &meta, &accounts, &keys, 0);

        let good = sealed(&owner, &key, Kind::Change, 0, 1);
        let a = admit(&good).unwrap();
        assert_eq!(&a.body[..], b"automerge bytes");
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
                    changes_after: None
                },
                Need {
                    doc: DocId([2; 16]),
                    access_from: None,
                    changes_after: Some(9)
                },
                Need {
                    doc: DocId([3; 16]),
                    access_from: Some(0),
                    changes_after: Some(0)
                },
            ]
        );
    }

    #[test]
    fn plan_refuses_rollback() {
        let local = BTreeMap::from([held(1, 2, 5, true)]);
        assert!(
            plan(&[head(1, 1, 5)], &local).is_err(),
            "shorter access log"
        );
        assert!(plan(&[head(1, 2, 4)], &local).is_err(), "lower sequence");
        assert!(plan(&[], &local).is_err(), "owned document withheld");
        let shared = BTreeMap::from([held(1, 2, 5, false)]);
        assert!(
            plan(&[], &shared).is_ok(),
            "a shared document may be unshared"
        );
    }
}
