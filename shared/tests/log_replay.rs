//! Property tests for the signed logs: arbitrary but validly *signed*
//! account and access log entries (so replay gets past the signature
//! check) never make a log replay panic, and what replay accepts keeps the
//! rules. The verification gaps these tests found are in `access_gaps.rs`.

use proptest::prelude::*;

use casebook_shared::access::{self, DocEntry, DocOp, DocState, KeyEnvelope, Role};
use casebook_shared::account::{self, AccountEntry, AccountKeyPub, AccountOp, AccountState};
use casebook_shared::codec;
use casebook_shared::crypto::Wrapped;
use casebook_shared::ids::{AccountId, DeviceId, DocId, Hash};
use casebook_shared::signed::Signed;

mod common;
use common::{Fixture, POOL, fixture, pool_dh, pool_info, pool_signer};

// ---------------------------------------------------------------------------
// Validly signed, structurally arbitrary account logs.

fn junk_wrap() -> Wrapped {
    Wrapped {
        enc: vec![9; 32],
        ct: vec![9; 48],
    }
}

/// Mostly the right choice, sometimes an arbitrary one.
fn mostly(p: f64) -> proptest::bool::Weighted {
    proptest::bool::weighted(p)
}

/// A rare skew: usually 0 (none), sometimes any small or large amount.
fn rare_skew() -> impl Strategy<Value = u64> {
    prop_oneof![80 => Just(0u64), 1 => 1u64..3, 1 => any::<u64>()]
}

/// One step of a generated account log. `*_pick` index into a set of
/// candidates: with `*_valid`, the set a valid entry would draw from (unlisted
/// devices to add, active devices to revoke or sign), else the whole pool.
#[derive(Clone, Debug)]
struct Step {
    op: u8,
    pick: usize,
    valid: bool,
    paper: bool,
    sign_pick: usize,
    sign_valid: bool,
    seq_skew: u64,
    link: bool,
    gen_skew: u32,
    exact_wraps: bool,
    wraps: Vec<usize>,
    at: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![1 => Just(0u8), 6 => Just(1u8), 4 => Just(2u8)],
        (any::<usize>(), mostly(0.95), proptest::bool::weighted(0.15)),
        (any::<usize>(), mostly(0.95)),
        (rare_skew(), mostly(0.985)),
        prop_oneof![10 => Just(1u32), 1 => Just(0u32), 1 => any::<u32>()],
        (mostly(0.9), proptest::collection::vec(0..POOL, 0..POOL + 1)),
        any::<u64>(),
    )
        .prop_map(
            |(
                op,
                (pick, valid, paper),
                (sign_pick, sign_valid),
                (seq_skew, link),
                gen_skew,
                (exact_wraps, wraps),
                at,
            )| Step {
                op,
                pick,
                valid,
                paper,
                sign_pick,
                sign_valid,
                seq_skew,
                link,
                gen_skew,
                exact_wraps,
                wraps,
                at,
            },
        )
}

fn pool_index(id: &DeviceId) -> usize {
    (0..POOL)
        .find(|i| pool_signer(*i).device_id() == *id)
        .expect("a pool device")
}

fn choose<T: Copy>(from: &[T], pick: usize) -> Option<T> {
    (!from.is_empty()).then(|| from[pick % from.len()])
}

/// Builds and signs the entries, replaying them as it goes so that most steps
/// extend a valid chain and some break it in one way; the first step is
/// always a genesis.
fn build_account_log(steps: &[Step]) -> Vec<Signed> {
    let mut out: Vec<Signed> = Vec::new();
    let mut state: Option<AccountState> = None;
    for (i, s) in steps.iter().enumerate() {
        let active: Vec<usize> = state
            .iter()
            .flat_map(|st| st.active().map(|d| pool_index(&d.info.id)))
            .collect();
        let unlisted: Vec<usize> = (0..POOL)
            .filter(|d| {
                state
                    .as_ref()
                    .is_none_or(|st| !st.devices.contains_key(&pool_signer(*d).device_id()))
            })
            .collect();
        let pick = |valid_set: &[usize]| match s.valid {
            true => choose(valid_set, s.pick).unwrap_or(s.pick % POOL),
            false => s.pick % POOL,
        };
        let signer = match (i, s.sign_valid) {
            (0, true) => s.pick % POOL,
            (_, true) => choose(&active, s.sign_pick).unwrap_or(s.sign_pick % POOL),
            (_, false) => s.sign_pick % POOL,
        };
        let op = match (i, s.op) {
            (0, _) | (_, 0) => AccountOp::Genesis {
                device: pool_info(s.pick, s.paper && !s.valid),
                key: AccountKeyPub {
                    generation: if s.valid { 0 } else { s.gen_skew },
                    public: [1; 32],
                },
                wrap: junk_wrap(),
            },
            (_, 1) => AccountOp::AddDevice {
                device: pool_info(pick(&unlisted), s.paper),
                wrap: junk_wrap(),
            },
            _ => {
                let revoked = pool_signer(pick(&active)).device_id();
                let wraps: Vec<DeviceId> = if s.exact_wraps {
                    active
                        .iter()
                        .map(|d| pool_signer(*d).device_id())
                        .filter(|d| *d != revoked)
                        .collect()
                } else {
                    s.wraps
                        .iter()
                        .map(|d| pool_signer(*d).device_id())
                        .collect()
                };
                let current = state.as_ref().map_or(0, |st| st.key.generation);
                AccountOp::RevokeDevice {
                    device: revoked,
                    key: AccountKeyPub {
                        generation: current.wrapping_add(s.gen_skew),
                        public: [2; 32],
                    },
                    wraps: wraps.into_iter().map(|d| (d, junk_wrap())).collect(),
                    previous: junk_wrap(),
                }
            }
        };
        let prev = match (out.last(), s.link) {
            (Some(p), true) => Some(p.hash(account::HASH_LABEL)),
            (None, true) => None,
            (_, false) => Some(Hash([7; 32])),
        };
        let entry = AccountEntry {
            seq: (i as u64).wrapping_add(s.seq_skew),
            prev,
            at: s.at,
            op,
        };
        let signed = Signed::sign(&pool_signer(signer), account::SIG_LABEL, &entry);
        match &mut state {
            None => state = AccountState::from_genesis(&signed).ok(),
            Some(st) => {
                let _ = st.apply(&signed);
            }
        }
        out.push(signed);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn signed_account_logs_never_panic(steps in proptest::collection::vec(step(), 1..12)) {
        let log = build_account_log(&steps);
        let result = AccountState::verify_log(&log);
        // The encoded log decodes to the same entries.
        prop_assert_eq!(&codec::decode::<Vec<Signed>>(&codec::encode(&log))?, &log);
        if let Ok(st) = &result {
            // Invariants of every accepted log.
            prop_assert_eq!(st.len, log.len() as u64);
            prop_assert_eq!(st.head, log.last().unwrap().hash(account::HASH_LABEL));
            prop_assert_eq!(st.id.0, log[0].hash(account::HASH_LABEL).0);
            prop_assert!(st.active().count() >= 1, "an accepted log keeps a device");
            let revokes = st.devices.values().filter(|d| d.revoked_seq.is_some()).count();
            prop_assert_eq!(st.key.generation as usize, revokes);
            for (i, e) in log.iter().enumerate().skip(1) {
                // Every entry was signed by a device listed before it.
                let signer = &st.devices[&e.signer];
                prop_assert!(signer.added_seq < i as u64);
                prop_assert!(signer.revoked_seq.is_none_or(|r| r >= i as u64));
            }
            // apply, one entry at a time, agrees with verify_log.
            let mut step_state = AccountState::from_genesis(&log[0]).unwrap();
            for e in &log[1..] {
                step_state.apply(e).unwrap();
            }
            prop_assert_eq!(&step_state, st);
            // Key recovery must fail cleanly (the wraps are junk), never panic.
            for i in 0..POOL {
                let _ = account::account_keys(&log, &st.id, &pool_signer(i).device_id(), &pool_dh(i));
            }
        }
        // Truncating, dropping or swapping entries never panics either, and a
        // reordered log never verifies.
        for cut in 0..log.len() {
            let _ = AccountState::verify_log(&log[..cut]);
            let mut dropped = log.clone();
            dropped.remove(cut);
            let _ = AccountState::verify_log(&dropped);
        }
        if log.len() >= 2 {
            let mut swapped = log.clone();
            swapped.swap(0, 1);
            prop_assert!(AccountState::verify_log(&swapped).is_err());
        }
    }
}

// ---------------------------------------------------------------------------
// Validly signed access logs against real accounts.

#[derive(Clone, Debug)]
struct DocStep {
    /// 0 genesis, 1 rotate, 2 add member, 3 remove member.
    op: u8,
    pick: usize,
    valid: bool,
    role: usize,
    expires: Option<u64>,
    sign_pick: usize,
    sign_valid: bool,
    account_pick: usize,
    account_valid: bool,
    seq_skew: u64,
    link: bool,
    epoch_skew: u32,
}

fn doc_step() -> impl Strategy<Value = DocStep> {
    (
        prop_oneof![1 => Just(0u8), 4 => Just(1u8), 6 => Just(2u8), 2 => Just(3u8)],
        (any::<usize>(), mostly(0.95)),
        (0usize..4, proptest::option::of(any::<u64>())),
        (any::<usize>(), mostly(0.93)),
        (any::<usize>(), mostly(0.95)),
        (rare_skew(), mostly(0.985)),
        prop_oneof![10 => Just(1u32), 1 => Just(0u32), 1 => any::<u32>()],
    )
        .prop_map(
            |(
                op,
                (pick, valid),
                (role, expires),
                (sign_pick, sign_valid),
                (account_pick, account_valid),
                (seq_skew, link),
                epoch_skew,
            )| DocStep {
                op,
                pick,
                valid,
                role,
                expires,
                sign_pick,
                sign_valid,
                account_pick,
                account_valid,
                seq_skew,
                link,
                epoch_skew,
            },
        )
}

/// Builds and signs an access log, replaying it as it goes.
fn build_doc_log(f: &Fixture, steps: &[DocStep]) -> Vec<Signed> {
    let doc = DocId([6; 16]);
    // Account A (owner), account B, and an account no lookup knows.
    let ids = [f.acct.id, f.other.id, AccountId([0xee; 32])];
    let lookup = |a: &AccountId| {
        if *a == f.acct.id {
            Some(&f.acct)
        } else if *a == f.other.id {
            Some(&f.other)
        } else {
            None
        }
    };
    let key = |recipient: AccountId| KeyEnvelope {
        recipient,
        generation: 0,
        wrap: junk_wrap(),
    };
    let mut out: Vec<Signed> = Vec::new();
    let mut state: Option<DocState> = None;
    for (i, s) in steps.iter().enumerate() {
        let members: Vec<AccountId> = state
            .iter()
            .flat_map(|st| st.members.keys().copied())
            .collect();
        let others: Vec<AccountId> = members.iter().copied().filter(|m| *m != ids[0]).collect();
        let account = if s.account_valid {
            ids[0]
        } else {
            ids[s.account_pick % 3]
        };
        // Device 0 is account A's active device; 1 is revoked; 2 is account B's.
        let signer = if s.sign_valid { 0 } else { s.sign_pick % POOL };
        let op = match (i, s.op) {
            (0, _) | (_, 0) => DocOp::Genesis { key: key(account) },
            (_, 1) => {
                let current = state.as_ref().map_or(0, |st| st.epoch);
                let keys = if s.valid {
                    members.clone()
                } else {
                    ids[..=s.pick % 3].to_vec()
                };
                DocOp::Rotate {
                    epoch: current.wrapping_add(s.epoch_skew),
                    keys: keys.into_iter().map(key).collect(),
                    previous: vec![1; 56],
                }
            }
            (_, 2) => {
                let member = if s.valid {
                    ids[1 + s.pick % 2]
                } else {
                    ids[s.pick % 3]
                };
                DocOp::AddMember {
                    member,
                    role: [Role::Read, Role::Comment, Role::Write, Role::Owner][s.role],
                    expires: s.expires,
                    details: vec![2; 40],
                    key: key(member),
                }
            }
            _ => DocOp::RemoveMember {
                member: match s.valid {
                    true => choose(&others, s.pick).unwrap_or(ids[s.pick % 3]),
                    false => ids[s.pick % 3],
                },
            },
        };
        let prev = match (out.last(), s.link) {
            (Some(p), true) => Some(p.hash(access::HASH_LABEL)),
            (None, true) => None,
            (_, false) => Some(Hash([7; 32])),
        };
        let entry = DocEntry {
            doc,
            seq: (i as u64).wrapping_add(s.seq_skew),
            prev,
            at: 0,
            account,
            account_len: f.acct.len,
            op,
        };
        let signed = Signed::sign(&pool_signer(signer), access::SIG_LABEL, &entry);
        match &mut state {
            None => state = DocState::from_genesis(&signed, &lookup).ok(),
            Some(st) => {
                let _ = st.apply(&signed, &lookup);
            }
        }
        out.push(signed);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn signed_access_logs_never_panic(steps in proptest::collection::vec(doc_step(), 1..12)) {
        let f = fixture();
        let log = build_doc_log(&f, &steps);
        let lookup = |a: &AccountId| {
            if *a == f.acct.id {
                Some(&f.acct)
            } else if *a == f.other.id {
                Some(&f.other)
            } else {
                None
            }
        };
        if let Ok(st) = DocState::verify_log(&log, lookup) {
            prop_assert_eq!(st.len, log.len() as u64);
            prop_assert_eq!(st.head, log.last().unwrap().hash(access::HASH_LABEL));
            // Only a known account can own it, and every entry was signed by
            // a device listed in the owner's account log.
            let owner = lookup(&st.owner).expect("the owner's account is known");
            for e in &log {
                prop_assert!(owner.devices.contains_key(&e.signer));
            }
            // Key recovery fails cleanly on junk wraps.
            let _ = access::doc_keys(&log, &f.acct.id, std::slice::from_ref(&f.account_key));
            let _ = access::doc_keys(&log, &f.other.id, std::slice::from_ref(&f.account_key));
        }
        // With no account known, nothing verifies.
        prop_assert!(DocState::verify_log(&log, |_| None).is_err());
    }
}
