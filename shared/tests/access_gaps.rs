//! Verification gaps in access-log replay that the property tests of
//! `log_replay.rs` found, each now closed and kept here as a regression.

use casebook_shared::access::{self, DocEntry, DocOp, DocState, Role};
use casebook_shared::crypto::SecretKey;
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

mod common;
use common::{Fixture, fixture, pool_signer};

/// The first entry of `doc`'s access log, signed by the fixture's first
/// device, sealing `key` to its account.
fn genesis(f: &Fixture, doc: DocId, key: &SecretKey) -> Signed {
    Signed::sign(
        &pool_signer(0),
        access::SIG_LABEL,
        &DocEntry {
            doc,
            seq: 0,
            prev: None,
            at: 0,
            account: f.acct.id,
            account_len: f.acct.len,
            op: DocOp::Genesis {
                key: access::key_envelope(&doc, 0, key, &f.acct).unwrap(),
            },
        },
    )
}

/// `DocState::check_signer` asks whether the signing device is *listed* in the
/// owner's account log (`devices.contains_key`), not whether it is still
/// *active*: a revoked (lost, stolen) device can keep signing access-log
/// entries for every document its account owns, e.g. add a member.
#[test]
fn revoked_device_cannot_sign_access_entries() {
    let f = fixture();
    assert!(!f.acct.is_active(&pool_signer(1).device_id()));
    let doc = DocId([6; 16]);
    let lookup = |a: &AccountId| (*a == f.acct.id).then_some(&f.acct);
    let k0 = SecretKey::from_bytes([3; 32]);
    let genesis = genesis(&f, doc, &k0);
    let mut st = DocState::verify_log(std::slice::from_ref(&genesis), lookup).unwrap();
    // Revoked device 1 adds an outsider as a writer.
    let by_revoked = Signed::sign(
        &pool_signer(1),
        access::SIG_LABEL,
        &DocEntry {
            doc,
            seq: 1,
            prev: Some(st.head),
            at: 0,
            account: f.acct.id,
            account_len: f.acct.len,
            op: DocOp::AddMember {
                member: f.other.id,
                role: Role::Write,
                expires: None,
                details: vec![],
                key: access::key_envelope(&doc, 0, &k0, &f.other).unwrap(),
            },
        },
    );
    assert!(
        st.apply(&by_revoked, &lookup).is_err(),
        "a revoked device extended the access log"
    );
}

/// `DocOp::AddMember` may name an account that is already a member, the owner
/// included: the owner's `Role::Owner` is then overwritten (here with `Write`),
/// after which no account is owner and the log can never be extended again.
/// `RemoveMember` refuses to remove the owner, but this path demotes it.
#[test]
fn add_member_cannot_demote_the_owner() {
    let f = fixture();
    let doc = DocId([6; 16]);
    let lookup = |a: &AccountId| (*a == f.acct.id).then_some(&f.acct);
    let k0 = SecretKey::from_bytes([3; 32]);
    let owner = pool_signer(0);
    let genesis = genesis(&f, doc, &k0);
    let mut st = DocState::verify_log(std::slice::from_ref(&genesis), lookup).unwrap();
    let demote = Signed::sign(
        &owner,
        access::SIG_LABEL,
        &DocEntry {
            doc,
            seq: 1,
            prev: Some(st.head),
            at: 0,
            account: f.acct.id,
            account_len: f.acct.len,
            op: DocOp::AddMember {
                member: f.acct.id,
                role: Role::Write,
                expires: Some(1),
                details: vec![],
                key: access::key_envelope(&doc, 0, &k0, &f.acct).unwrap(),
            },
        },
    );
    let accepted = st.apply(&demote, &lookup).is_ok();
    assert!(
        !accepted || st.role_of(&f.acct.id, 0) == Some(Role::Owner),
        "the owner was demoted to {:?}",
        st.role_of(&f.acct.id, 0)
    );
}

/// A member removed and added again in the same epoch would hold, under
/// the epoch it kept the key of, both its old role and its new one; and a
/// change is judged by the role of its epoch. So an addition comes only
/// after a rotation, and an ended membership vouches only until an envelope
/// of a later epoch has been taken (the fence).
#[test]
fn a_removed_member_comes_back_only_under_a_new_epoch() {
    let f = fixture();
    let doc = DocId([6; 16]);
    let lookup = |a: &AccountId| (*a == f.acct.id).then_some(&f.acct);
    let owner = pool_signer(0);
    let (k0, k1) = (
        SecretKey::from_bytes([3; 32]),
        SecretKey::from_bytes([4; 32]),
    );
    let sign = |seq: u64, prev: Option<casebook_shared::ids::Hash>, op: DocOp| {
        Signed::sign(
            &owner,
            access::SIG_LABEL,
            &DocEntry {
                doc,
                seq,
                prev,
                at: 0,
                account: f.acct.id,
                account_len: f.acct.len,
                op,
            },
        )
    };
    let add = |role: Role, epoch: u32, key: &SecretKey| DocOp::AddMember {
        member: f.other.id,
        role,
        expires: None,
        details: vec![],
        key: access::key_envelope(&doc, epoch, key, &f.other).unwrap(),
    };
    let genesis = sign(
        0,
        None,
        DocOp::Genesis {
            key: access::key_envelope(&doc, 0, &k0, &f.acct).unwrap(),
        },
    );
    let mut st = DocState::verify_log(std::slice::from_ref(&genesis), lookup).unwrap();
    st.apply(&sign(1, Some(st.head), add(Role::Write, 0, &k0)), &lookup)
        .unwrap();
    st.apply(
        &sign(2, Some(st.head), DocOp::RemoveMember { member: f.other.id }),
        &lookup,
    )
    .unwrap();
    let again = sign(3, Some(st.head), add(Role::Comment, 0, &k0));
    assert!(
        st.clone().apply(&again, &lookup).is_err(),
        "added again before a rotation"
    );
    st.apply(
        &sign(
            3,
            Some(st.head),
            DocOp::Rotate {
                epoch: 1,
                keys: vec![access::key_envelope(&doc, 1, &k1, &f.acct).unwrap()],
                previous: access::seal_previous(&doc, 1, &k1, &k0),
            },
        ),
        &lookup,
    )
    .unwrap();
    st.apply(&sign(4, Some(st.head), add(Role::Comment, 1, &k1)), &lookup)
        .unwrap();
    let other = f.other.id;
    assert_eq!(st.role_in_epoch(&other, 0, 0), Some(Role::Write));
    assert_eq!(st.role_in_epoch(&other, 0, 1), None, "past the fence");
    assert_eq!(st.role_in_epoch(&other, 1, 1), Some(Role::Comment));
    assert_eq!(st.current_grant_from(&other), Some(1));
}
