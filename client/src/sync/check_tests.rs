//! Tests of [`super`]: the listing's plan and each envelope's admission.

use super::*;

/// A log's last entry hash, made up: the same for the same length, as on
/// a relay that holds the entries this device has.
fn hash_at(access_len: u64) -> Hash {
    Hash([access_len as u8; 32])
}

fn head(doc: u8, access_len: u64, seq: u64) -> DocHead {
    DocHead {
        doc: DocId([doc; 16]),
        access_len,
        access_head: hash_at(access_len),
        seq,
    }
}

type Held = (DocSync, bool, Option<Hash>);

/// A listing's needs; a document held back counts as refused here (see
/// `another_accounts_access_log_shorter_is_held_back_alone`).
fn plan(heads: &[DocHead], held: &BTreeMap<DocId, Held>) -> Result<Vec<Need>, RollbackError> {
    let planned = super::plan(heads, held)?;
    match planned.held_back.into_iter().next() {
        Some((_, refused)) => Err(refused),
        None => Ok(planned.needs),
    }
}

fn held(doc: u8, access_len: u64, seen: u64, owned: bool) -> (DocId, Held) {
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
            (access_len > 0).then(|| hash_at(access_len)),
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

fn sealed_in(a: &Author, key: &SecretKey, epoch: u32, kind: Kind, covers: u64, seq: u64) -> Stored {
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
        Kind::Signal => b"claims and wants".to_vec(),
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
        crate::notes::CaseDoc::new("Jordan Avery", "2026-11-20", DocId([2; 16]), &actor).unwrap();
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
        Some(Refused::AfterRemoval),
        "under its old key, but after the next epoch's first envelope"
    );
    // Only the relay's order says so: the document is fetched again, and
    // judged in the order a repaired relay serves.
    assert!(Refused::AfterRemoval.relay_may_mend());
    assert!(!Refused::NotAllowed.relay_may_mend());

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
    let writer = author();
    let key = SecretKey::random();
    let keys = BTreeMap::from([(0, SecretKey::from_bytes(*key.expose()))]);
    let meta = meta_of(
        &[
            (&owner, Role::Owner, 0, None),
            (&reader, Role::Read, 0, None),
            (&commenter, Role::Comment, 0, None),
            (&writer, Role::Write, 0, None),
        ],
        0,
    );
    let accounts: BTreeMap<_, _> = [&owner, &reader, &commenter, &writer]
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
    // A signal is any member's to send (a reader asks for what it lacks),
    // and is not Automerge: no actor to check.
    assert!(admit(&sealed(&reader, &key, Kind::Signal, 0, 3)).is_ok());
    assert!(matches!(
        admit(&sealed(&stranger, &key, Kind::Signal, 0, 3)),
        Err(Refused::UnknownDevice(_))
    ));
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
    // The owner's device may carry another device's changes, as its
    // snapshots do: it sends them on behalf of one that no longer can.
    let forwarded = Stored {
        doc: DOC,
        seq: 41,
        envelope: Envelope::seal(
            Header {
                kind: Kind::Change,
                doc: DOC,
                epoch: 0,
                account: owner.state.id,
                author: owner.signer.device_id(),
                id: EnvelopeId([41; 24]),
                covers: 0,
            },
            &key,
            &owner.signer,
            &change_as(&commenter.signer.device_id().0),
        )
        .into_bytes(),
    };
    assert!(admit(&forwarded).is_ok());
    // A colleague who may write may not: only the owner holds the case.
    let by_writer = Stored {
        doc: DOC,
        seq: 42,
        envelope: Envelope::seal(
            Header {
                kind: Kind::Change,
                doc: DOC,
                epoch: 0,
                account: writer.state.id,
                author: writer.signer.device_id(),
                id: EnvelopeId([42; 24]),
                covers: 0,
            },
            &key,
            &writer.signer,
            &change_as(&commenter.signer.device_id().0),
        )
        .into_bytes(),
    };
    assert_eq!(admit(&by_writer).err(), Some(Refused::ForeignActor));
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
                fork: false,
            },
            Need {
                doc: DocId([2; 16]),
                access_from: None,
                changes_after: Some(9),
                rewind: false,
                fork: false,
            },
            Need {
                doc: DocId([3; 16]),
                access_from: Some(0),
                changes_after: Some(0),
                rewind: false,
                fork: false,
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
    let turned = plan(&[head(1, 1, 5)], &local).unwrap();
    assert_eq!(
        (turned[0].access_from, turned[0].fork),
        (Some(0), true),
        "an owned access log shorter, not sent back: fetched whole, to find where it turned"
    );
    assert!(
        plan(&[head(1, 1, 5)], &BTreeMap::from([held(1, 2, 5, false)])).is_err(),
        "another account's access log shorter"
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

#[test]
fn another_accounts_access_log_shorter_is_held_back_alone() {
    let local = BTreeMap::from([held(1, 2, 5, false), held(2, 1, 5, true)]);
    let planned = super::plan(&[head(1, 1, 5), head(2, 1, 7)], &local).unwrap();
    assert!(
        matches!(
            &planned.held_back[..],
            [(d, RollbackError::FewerAccessEntries { relay: 1, here: 2, .. })] if *d == DocId([1; 16])
        ),
        "{:?}",
        planned.held_back
    );
    let docs: Vec<DocId> = planned.needs.iter().map(|n| n.doc).collect();
    assert_eq!(docs, vec![DocId([2; 16])], "the rest goes on");
}

#[test]
fn an_access_log_as_long_but_not_the_same_is_fetched_whole() {
    let local = BTreeMap::from([held(1, 3, 5, true)]);
    assert!(plan(&[head(1, 3, 5)], &local).unwrap().is_empty());
    let mut other = head(1, 3, 5);
    other.access_head = Hash([9; 32]);
    let needs = plan(&[other], &local).unwrap();
    assert_eq!(
        (needs[0].access_from, needs[0].fork),
        (Some(0), true),
        "another last entry at the same length: the whole log, to find where it turned"
    );
    assert!(
        plan(&[head(1, 4, 5)], &local)
            .unwrap()
            .iter()
            .all(|n| !n.fork),
        "a longer log is fetched from the end held; its first entry tells"
    );
}
