//! Fixed inputs and the deterministic values built from them.

use super::*;

/// The account id of the checked-in genesis entry. Pinned here as well as in the
/// file so that an accidental regeneration of the file fails loudly.
pub(crate) const ACCOUNT_ID: &str =
    "85c8cab90b3a92c59aa3971dc4eca9c86f9bb3c267c367db643925dc6cd0734d";

pub(crate) const DEVICE_A_SEED: [u8; 32] = [1; 32];
pub(crate) const DEVICE_A_DH: [u8; 32] = [2; 32];
pub(crate) const DOC_KEY: [u8; 32] = [3; 32];
pub(crate) const DEVICE_B_SEED: [u8; 32] = [4; 32];
pub(crate) const DEVICE_B_DH: [u8; 32] = [5; 32];
pub(crate) const DOC_ID: [u8; 16] = [6; 16];
pub(crate) const CHANGE_ID: [u8; 24] = [7; 24];
pub(crate) const SNAPSHOT_ID: [u8; 24] = [8; 24];
pub(crate) const SIGNAL_ID: [u8; 24] = [9; 24];
pub(crate) const GENESIS_AT: u64 = 1_700_000_000;
pub(crate) const ADD_AT: u64 = 1_700_000_100;
pub(crate) const VOUCH_AT: u64 = 1_700_000_200;
/// The hashes of two access entries device B signed in a history of the
/// account log a restored relay lost, which device A vouches for.
pub(crate) const VOUCHED: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];
pub(crate) const DOC_EPOCH: u32 = 0;
pub(crate) const SNAPSHOT_COVERS: u64 = 42;
pub(crate) const CHANGE_BODY: &str = "session 3: patient reports better sleep";
pub(crate) const SNAPSHOT_BODY: &str = "a whole saved document, standing in for Automerge bytes";
pub(crate) const SIGNAL_BODY: &str = "claims and wants, standing in for their encoding";
pub(crate) const DERIVE_IKM: [u8; 32] = [9; 32];
pub(crate) const DERIVE_LABEL: &str = "casebook/v1/test/derive";
pub(crate) const DERIVE_CONTEXT: &str = "context";
pub(crate) const HASH_LABEL: &str = "casebook/v1/test/hash";
pub(crate) const HASH_DATA: &str = "abc";
pub(crate) const AUTH_FINGERPRINT: [u8; 32] = [0xaa; 32];
pub(crate) const AUTH_NONCE: [u8; 32] = [0xbb; 32];
pub(crate) const PADDED_SIZES: [usize; 12] =
    [0, 1, 2, 3, 9, 17, 100, 1000, 1025, 5000, 65_537, 1_000_000];

pub(crate) const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors.txt");

pub(crate) fn device_a() -> (DeviceSigner, DhSecret) {
    (
        DeviceSigner::from_seed(&DEVICE_A_SEED),
        DhSecret::from_bytes(DEVICE_A_DH),
    )
}

pub(crate) fn device_b() -> (DeviceSigner, DhSecret) {
    (
        DeviceSigner::from_seed(&DEVICE_B_SEED),
        DhSecret::from_bytes(DEVICE_B_DH),
    )
}

pub(crate) fn header(kind: Kind, account: AccountId) -> Header {
    let (a, _) = device_a();
    Header {
        kind,
        doc: DocId(DOC_ID),
        epoch: DOC_EPOCH,
        account,
        author: a.device_id(),
        id: EnvelopeId(match kind {
            Kind::Change => CHANGE_ID,
            Kind::Snapshot => SNAPSHOT_ID,
            Kind::Signal => SIGNAL_ID,
        }),
        covers: match kind {
            Kind::Change | Kind::Signal => 0,
            Kind::Snapshot => SNAPSHOT_COVERS,
        },
    }
}

pub(crate) fn sample_requests() -> Vec<(&'static str, Request)> {
    let (a, _) = device_a();
    vec![
        ("challenge", Request::Challenge),
        ("list_docs", Request::ListDocs { since: 300 }),
        (
            "get_account",
            Request::GetAccount {
                account: AccountId([0x11; 32]),
                from: 2,
            },
        ),
        (
            "auth",
            Request::Auth {
                account: Some(AccountId([0x11; 32])),
                device: a.device_id(),
                sig: Sig([0x22; 64]),
            },
        ),
        (
            "auth_without_account",
            Request::Auth {
                account: None,
                device: a.device_id(),
                sig: Sig([0x22; 64]),
            },
        ),
        (
            "fetch",
            Request::Fetch {
                docs: vec![(DocId(DOC_ID), 129), (DocId([0x33; 16]), 0)],
                max_bytes: 1 << 20,
            },
        ),
        (
            "mailbox_put",
            Request::MailboxPut {
                mailbox: [0x44; 16],
                slot: 1,
                msg: b"pake".to_vec(),
            },
        ),
    ]
}

pub(crate) fn auth_message(account: &AccountId) -> Vec<u8> {
    let (a, _) = device_a();
    frames::auth_message(
        &AUTH_FINGERPRINT,
        &AUTH_NONCE,
        Some(account),
        &a.device_id(),
    )
}

/// Device A's vouch, on top of the account log `state` ends, for the
/// entries [`VOUCHED`] names, signed by device B (deterministic: it holds
/// no HPKE seal, and Ed25519 signatures are deterministic).
pub(crate) fn vouch_entry(state: &AccountState) -> Signed {
    let (a, _) = device_a();
    let (b, _) = device_b();
    let entries = VOUCHED.iter().map(|h| Hash(*h)).collect();
    account::vouch(state, &a, b.device_id(), entries, VOUCH_AT)
}
