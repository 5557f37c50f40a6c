//! Checked-in test vectors for the protocol crate.
//!
//! HPKE is randomized, so the account entries and the key envelope are
//! *verification* vectors: fixed device seeds and secrets, and the exact bytes
//! one run of the generator produced. The tests check that today's code still
//! decodes, verifies and opens those bytes to the expected values. The change
//! envelope, signatures and the pinned values below are deterministic, so the
//! tests also recompute them and compare byte for byte.
//!
//! The vectors live in `tests/vectors.txt`: `name = value` lines, where a value
//! is hex (continued on indented lines), a decimal number, or a "quoted string".
//!
//! To regenerate (only after a deliberate format change; every HPKE-bearing
//! vector and the pinned account id will change):
//!
//! ```text
//! CASEBOOK_WRITE_VECTORS=1 cargo test -p casebook-shared --test vectors -- --ignored generate
//! ```
//!
//! Without the variable the generator prints the file instead of writing it.
//! It keeps the HPKE-bearing vectors of the existing file while they still
//! verify, so a change to a deterministic value (a frame, a pin) rewrites only
//! what changed. `CASEBOOK_FRESH_VECTORS=1` makes new ones; then update
//! [`ACCOUNT_ID`] to the `account.id` it printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use casebook_shared::access::{self, KeyEnvelope};
use casebook_shared::account::{
    self, AccountEntry, AccountOp, AccountState, DeviceInfo, DeviceKind,
};
use casebook_shared::codec;
use casebook_shared::crypto::{self, DeviceSigner, DhSecret, SecretKey, Sig};
use casebook_shared::envelope::{self, Envelope, Header, Kind};
use casebook_shared::frames::{self, Request};
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId, Hash};
use casebook_shared::signed::Signed;

/// The account id of the checked-in genesis entry. Pinned here as well as in the
/// file so that an accidental regeneration of the file fails loudly.
const ACCOUNT_ID: &str = "85c8cab90b3a92c59aa3971dc4eca9c86f9bb3c267c367db643925dc6cd0734d";

const DEVICE_A_SEED: [u8; 32] = [1; 32];
const DEVICE_A_DH: [u8; 32] = [2; 32];
const DOC_KEY: [u8; 32] = [3; 32];
const DEVICE_B_SEED: [u8; 32] = [4; 32];
const DEVICE_B_DH: [u8; 32] = [5; 32];
const DOC_ID: [u8; 16] = [6; 16];
const CHANGE_ID: [u8; 24] = [7; 24];
const SNAPSHOT_ID: [u8; 24] = [8; 24];
const SIGNAL_ID: [u8; 24] = [9; 24];
const GENESIS_AT: u64 = 1_700_000_000;
const ADD_AT: u64 = 1_700_000_100;
const DOC_EPOCH: u32 = 0;
const SNAPSHOT_COVERS: u64 = 42;
const CHANGE_BODY: &str = "session 3: patient reports better sleep";
const SNAPSHOT_BODY: &str = "a whole saved document, standing in for Automerge bytes";
const SIGNAL_BODY: &str = "claims and wants, standing in for their encoding";
const DERIVE_IKM: [u8; 32] = [9; 32];
const DERIVE_LABEL: &str = "casebook/v1/test/derive";
const DERIVE_CONTEXT: &str = "context";
const HASH_LABEL: &str = "casebook/v1/test/hash";
const HASH_DATA: &str = "abc";
const AUTH_FINGERPRINT: [u8; 32] = [0xaa; 32];
const AUTH_NONCE: [u8; 32] = [0xbb; 32];
const PADDED_SIZES: [usize; 12] = [0, 1, 2, 3, 9, 17, 100, 1000, 1025, 5000, 65_537, 1_000_000];

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors.txt");

// ---------------------------------------------------------------------------
// The file format.

#[derive(Default)]
struct Vectors {
    values: BTreeMap<String, String>,
}

impl Vectors {
    fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        let mut last: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                last = None;
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                let key = last
                    .as_ref()
                    .unwrap_or_else(|| panic!("line {}: continuation without a name", n + 1));
                values
                    .get_mut(key)
                    .map(|v: &mut String| v.push_str(trimmed))
                    .expect("the previous name was stored");
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: expected `name = value`", n + 1));
            let name = name.trim().to_string();
            assert!(
                values
                    .insert(name.clone(), value.trim().to_string())
                    .is_none(),
                "line {}: {name} appears twice",
                n + 1
            );
            last = Some(name);
        }
        Vectors { values }
    }

    fn load() -> Self {
        let text = std::fs::read_to_string(VECTORS_PATH)
            .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
        Self::parse(&text)
    }

    fn raw(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("vector {name} is missing"))
    }

    fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.raw(name)).unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"))
    }

    fn arr<const N: usize>(&self, name: &str) -> [u8; N] {
        self.hex(name)
            .try_into()
            .unwrap_or_else(|_| panic!("vector {name} is not {N} bytes"))
    }

    fn str(&self, name: &str) -> &str {
        let v = self.raw(name);
        v.strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("vector {name} is not a quoted string"))
    }

    fn num(&self, name: &str) -> u64 {
        self.raw(name)
            .parse()
            .unwrap_or_else(|e| panic!("vector {name} is not a number: {e}"))
    }
}

/// Writes the file: comments, hex wrapped at 64 characters, numbers, strings.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn comment(&mut self, text: &str) {
        for line in text.lines() {
            if line.is_empty() {
                self.out.push_str("#\n");
            } else {
                writeln!(self.out, "# {line}").unwrap();
            }
        }
    }

    fn blank(&mut self) {
        self.out.push('\n');
    }

    fn hex(&mut self, name: &str, bytes: &[u8]) {
        let h = hex::encode(bytes);
        let mut chunks = h.as_bytes().chunks(64);
        let first = chunks.next().map(|c| std::str::from_utf8(c).unwrap());
        writeln!(self.out, "{name} = {}", first.unwrap_or("")).unwrap();
        for c in chunks {
            writeln!(self.out, "    {}", std::str::from_utf8(c).unwrap()).unwrap();
        }
    }

    fn num(&mut self, name: &str, n: u64) {
        writeln!(self.out, "{name} = {n}").unwrap();
    }

    fn str(&mut self, name: &str, s: &str) {
        assert!(!s.contains('"') && !s.contains('\n'));
        writeln!(self.out, "{name} = \"{s}\"").unwrap();
    }
}

// ---------------------------------------------------------------------------
// Fixed inputs and the deterministic values built from them.

fn device_a() -> (DeviceSigner, DhSecret) {
    (
        DeviceSigner::from_seed(&DEVICE_A_SEED),
        DhSecret::from_bytes(DEVICE_A_DH),
    )
}

fn device_b() -> (DeviceSigner, DhSecret) {
    (
        DeviceSigner::from_seed(&DEVICE_B_SEED),
        DhSecret::from_bytes(DEVICE_B_DH),
    )
}

fn header(kind: Kind, account: AccountId) -> Header {
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

fn sample_requests() -> Vec<(&'static str, Request)> {
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

fn auth_message(account: &AccountId) -> Vec<u8> {
    let (a, _) = device_a();
    frames::auth_message(
        &AUTH_FINGERPRINT,
        &AUTH_NONCE,
        Some(account),
        &a.device_id(),
    )
}

// ---------------------------------------------------------------------------
// The generator.

#[test]
#[ignore = "writes tests/vectors.txt; run by hand after a deliberate format change"]
fn generate() {
    let (a, a_dh) = device_a();
    let (b, b_dh) = device_b();
    let doc = DocId(DOC_ID);
    let doc_key = SecretKey::from_bytes(DOC_KEY);

    let (genesis, add, account_key, key_env) = match reusable_random_vectors() {
        Some(kept) => {
            println!("(keeping the HPKE-bearing vectors of the existing file)");
            kept
        }
        None => fresh_random_vectors(),
    };
    let state = AccountState::verify_log(&[genesis.clone(), add.clone()]).expect("log verifies");
    let change = Envelope::seal(
        header(Kind::Change, state.id),
        &doc_key,
        &a,
        CHANGE_BODY.as_bytes(),
    );
    let snapshot = Envelope::seal(
        header(Kind::Snapshot, state.id),
        &doc_key,
        &a,
        SNAPSHOT_BODY.as_bytes(),
    );
    let signal = Envelope::seal(
        header(Kind::Signal, state.id),
        &doc_key,
        &a,
        SIGNAL_BODY.as_bytes(),
    );

    let mut w = Writer::default();
    w.comment(
        "casebook-shared test vectors, format 1.\n\
         Lines are `name = value`: hex (continued on indented lines), a decimal\n\
         number, or a \"quoted string\". Generated by tests/vectors.rs `generate`;\n\
         HPKE is randomized, so the account entries and the key envelope are\n\
         verification vectors: check them, do not expect to reproduce them.",
    );
    w.blank();
    w.comment("Fixed inputs.");
    w.hex("device_a.seed", &DEVICE_A_SEED);
    w.hex("device_a.dh_secret", &DEVICE_A_DH);
    w.hex("device_b.seed", &DEVICE_B_SEED);
    w.hex("device_b.dh_secret", &DEVICE_B_DH);
    w.hex("doc.id", &DOC_ID);
    w.hex("doc.key", &DOC_KEY);
    w.num("doc.epoch", DOC_EPOCH.into());
    w.blank();
    w.comment("Public keys derived from them (Ed25519 device id, X25519 public key).");
    w.hex("device_a.id", &a.device_id().0);
    w.hex("device_a.dh_public", &a_dh.public());
    w.hex("device_b.id", &b.device_id().0);
    w.hex("device_b.dh_public", &b_dh.public());
    w.blank();
    w.comment(
        "The account log: genesis by device A, then device A adds device B.\n\
         Each entry is the codec (postcard) encoding of a `signed::Signed`.\n\
         account.key_secret is the account key that account::genesis made;\n\
         account_keys must unwrap it for either device.",
    );
    w.hex("account.key_secret", account_key.expose());
    w.hex("account.key_public", &account_key.public());
    w.hex("account.id", &state.id.0);
    w.hex("account.head", &state.head.0);
    w.num("account.genesis.at", GENESIS_AT);
    w.hex("account.genesis", &codec::encode(&genesis));
    w.num("account.add_device.at", ADD_AT);
    w.hex("account.add_device", &codec::encode(&add));
    w.blank();
    w.comment(
        "The document key of doc.id, epoch doc.epoch, sealed to the account key\n\
         (codec encoding of access::KeyEnvelope).",
    );
    w.hex("access.key_envelope", &codec::encode(&key_env));
    w.blank();
    w.comment(
        "Change envelopes by device A under doc.key (deterministic: the nonce is\n\
         the envelope id and Ed25519 signatures are deterministic).",
    );
    w.hex("envelope.change.id", &CHANGE_ID);
    w.str("envelope.change.plaintext", CHANGE_BODY);
    w.hex(
        "envelope.change.key",
        envelope::change_key(&doc_key, &doc, DOC_EPOCH).expose(),
    );
    w.hex("envelope.change", change.as_bytes());
    w.hex("envelope.snapshot.id", &SNAPSHOT_ID);
    w.num("envelope.snapshot.covers", SNAPSHOT_COVERS);
    w.str("envelope.snapshot.plaintext", SNAPSHOT_BODY);
    w.hex("envelope.snapshot", snapshot.as_bytes());
    w.hex("envelope.signal.id", &SIGNAL_ID);
    w.str("envelope.signal.plaintext", SIGNAL_BODY);
    w.hex("envelope.signal", signal.as_bytes());
    w.blank();
    w.comment("Deterministic pins.");
    w.hex("crypto.derive.ikm", &DERIVE_IKM);
    w.str("crypto.derive.label", DERIVE_LABEL);
    w.str("crypto.derive.context", DERIVE_CONTEXT);
    w.hex(
        "crypto.derive.out",
        crypto::derive(&DERIVE_IKM, DERIVE_LABEL, DERIVE_CONTEXT.as_bytes()).expose(),
    );
    w.str("crypto.hash.label", HASH_LABEL);
    w.str("crypto.hash.data", HASH_DATA);
    w.hex(
        "crypto.hash.out",
        &crypto::hash(HASH_LABEL, HASH_DATA.as_bytes()).0,
    );
    w.hex("auth.fingerprint", &AUTH_FINGERPRINT);
    w.hex("auth.nonce", &AUTH_NONCE);
    w.hex(
        "auth.sig",
        &a.sign(frames::AUTH_LABEL, &auth_message(&state.id)).0,
    );
    for n in PADDED_SIZES {
        w.num(&format!("padded_len.{n}"), envelope::padded_len(n) as u64);
    }
    w.comment("Length-prefixed frames (codec::frame) of the Requests in tests/vectors.rs.");
    for (name, r) in sample_requests() {
        w.hex(&format!("frame.{name}"), &codec::frame(&r));
    }

    // The fresh vectors must pass every check before they are written.
    let v = Vectors::parse(&w.out);
    check_account(&v, Some(&state.id.to_hex()));
    check_key_envelope(&v);
    check_envelopes(&v);
    check_pins(&v);

    println!("{}", w.out);
    println!("account.id = {}", state.id.to_hex());
    if std::env::var_os("CASEBOOK_WRITE_VECTORS").is_some() {
        std::fs::write(VECTORS_PATH, &w.out).expect("write tests/vectors.txt");
        println!("wrote {VECTORS_PATH}; ACCOUNT_ID in tests/vectors.rs must match account.id");
    } else {
        println!("(set CASEBOOK_WRITE_VECTORS=1 to write {VECTORS_PATH})");
    }
}

type RandomVectors = (Signed, Signed, DhSecret, KeyEnvelope);

/// The randomized vectors (account entries, account key, key envelope) of the
/// checked-in file, if it has them and they still pass their checks: then a
/// regeneration after a change of a deterministic value keeps them, and the
/// pinned account id with them. `CASEBOOK_FRESH_VECTORS=1` makes new ones.
fn reusable_random_vectors() -> Option<RandomVectors> {
    if std::env::var_os("CASEBOOK_FRESH_VECTORS").is_some() {
        return None;
    }
    let text = std::fs::read_to_string(VECTORS_PATH).ok()?;
    std::panic::catch_unwind(|| {
        let v = Vectors::parse(&text);
        check_account(&v, None);
        check_key_envelope(&v);
        let log = account_log(&v);
        (
            log[0].clone(),
            log[1].clone(),
            DhSecret::from_bytes(v.arr("account.key_secret")),
            codec::decode(&v.hex("access.key_envelope")).unwrap(),
        )
    })
    .ok()
}

fn fresh_random_vectors() -> RandomVectors {
    let (a, a_dh) = device_a();
    let (b, b_dh) = device_b();
    let (genesis, account_key) = account::genesis(&a, &a_dh, GENESIS_AT);
    let state = AccountState::from_genesis(&genesis).expect("fresh genesis verifies");
    let add = account::add_device(
        &state,
        &a,
        &account_key,
        DeviceInfo {
            id: b.device_id(),
            dh: b_dh.public(),
            kind: DeviceKind::Device,
        },
        ADD_AT,
    )
    .expect("device B's key is valid");
    let state = AccountState::verify_log(&[genesis.clone(), add.clone()]).expect("log verifies");
    let doc_key = SecretKey::from_bytes(DOC_KEY);
    let key_env =
        access::key_envelope(&DocId(DOC_ID), DOC_EPOCH, &doc_key, &state).expect("valid key");
    (genesis, add, account_key, key_env)
}

// ---------------------------------------------------------------------------
// The checks, shared by the generator and the tests.

fn account_log(v: &Vectors) -> Vec<Signed> {
    ["account.genesis", "account.add_device"]
        .iter()
        .map(|n| codec::decode::<Signed>(&v.hex(n)).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

fn check_account(v: &Vectors, pinned_id: Option<&str>) {
    let (a, a_dh) = device_a();
    let (b, b_dh) = device_b();
    assert_eq!(v.arr::<32>("device_a.id"), a.device_id().0);
    assert_eq!(v.arr::<32>("device_b.id"), b.device_id().0);
    assert_eq!(v.arr::<32>("device_a.dh_public"), a_dh.public());
    assert_eq!(v.arr::<32>("device_b.dh_public"), b_dh.public());
    let account_id = AccountId(v.arr("account.id"));
    if let Some(pinned) = pinned_id {
        assert_eq!(account_id.to_hex(), pinned, "the pinned account id");
    }

    let log = account_log(v);
    assert_eq!(log[0].signer, a.device_id());
    assert_eq!(log[1].signer, a.device_id());
    // Ed25519 is deterministic: today's signer makes the same signatures.
    for e in &log {
        assert_eq!(a.sign(account::SIG_LABEL, &e.body), e.sig);
    }

    let state = AccountState::verify_log(&log).expect("the account log verifies");
    assert_eq!(state.id, account_id);
    assert_eq!(state.id, AccountId(log[0].hash(account::HASH_LABEL).0));
    assert_eq!(state.head, Hash(v.arr("account.head")));
    assert_eq!(state.len, 2);
    assert_eq!(state.key.generation, 0);
    assert_eq!(state.key.public, v.arr::<32>("account.key_public"));
    assert_eq!(state.active().count(), 2);
    let rec_a = &state.devices[&a.device_id()];
    assert_eq!(
        (rec_a.added_seq, rec_a.added_at, rec_a.revoked_seq),
        (0, v.num("account.genesis.at"), None)
    );
    assert_eq!(rec_a.info.dh, a_dh.public());
    assert_eq!(rec_a.info.kind, DeviceKind::Device);
    let rec_b = &state.devices[&b.device_id()];
    assert_eq!(
        (rec_b.added_seq, rec_b.added_at, rec_b.revoked_seq),
        (1, v.num("account.add_device.at"), None)
    );
    assert_eq!(rec_b.info.dh, b_dh.public());

    // The entry fields, as decoded from the signed bodies.
    let g: AccountEntry = log[0].open(account::SIG_LABEL).unwrap();
    assert_eq!((g.seq, g.prev, g.at), (0, None, GENESIS_AT));
    assert!(matches!(g.op, AccountOp::Genesis { ref device, .. } if device.id == a.device_id()));
    let add: AccountEntry = log[1].open(account::SIG_LABEL).unwrap();
    assert_eq!(
        (add.seq, add.prev, add.at),
        (1, Some(log[0].hash(account::HASH_LABEL)), ADD_AT)
    );
    assert!(
        matches!(add.op, AccountOp::AddDevice { ref device, .. } if device.id == b.device_id())
    );

    // Both devices reach the same account key; the wrong device secret does not.
    let secret = v.arr::<32>("account.key_secret");
    for (id, dh) in [(a.device_id(), &a_dh), (b.device_id(), &b_dh)] {
        let keys = account::account_keys(&log, &account_id, &id, dh).expect("unwraps");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].expose(), &secret);
        assert_eq!(keys[0].public(), state.key.public);
    }
    assert!(account::account_keys(&log, &account_id, &b.device_id(), &a_dh).is_err());
    assert!(account::account_keys(&log, &AccountId([0; 32]), &b.device_id(), &b_dh).is_err());
}

fn unwrap_key_envelope(v: &Vectors, bytes: &[u8]) -> Result<SecretKey, String> {
    let ke: KeyEnvelope = codec::decode(bytes).map_err(|e| e.to_string())?;
    let account_key = DhSecret::from_bytes(v.arr("account.key_secret"));
    let info = access::wrap_info(
        &DocId(v.arr("doc.id")),
        v.num("doc.epoch") as u32,
        &ke.recipient,
        ke.generation,
    );
    crypto::unwrap_key(&account_key, &info, &ke.wrap).map_err(|e| e.to_string())
}

fn check_key_envelope(v: &Vectors) {
    let bytes = v.hex("access.key_envelope");
    let ke: KeyEnvelope = codec::decode(&bytes).expect("the key envelope decodes");
    assert_eq!(ke.recipient, AccountId(v.arr("account.id")));
    assert_eq!(ke.generation, 0);
    let key = unwrap_key_envelope(v, &bytes).expect("the key envelope unwraps");
    assert_eq!(key.expose(), &v.arr::<32>("doc.key"));
    assert_eq!(key.expose(), &DOC_KEY);
    // Bound to doc, epoch and generation.
    let account_key = DhSecret::from_bytes(v.arr("account.key_secret"));
    for info in [
        access::wrap_info(&DocId([0; 16]), 0, &ke.recipient, 0),
        access::wrap_info(&DocId(DOC_ID), 1, &ke.recipient, 0),
        access::wrap_info(&DocId(DOC_ID), 0, &ke.recipient, 1),
        access::wrap_info(&DocId(DOC_ID), 0, &AccountId([0; 32]), 0),
    ] {
        assert!(crypto::unwrap_key(&account_key, &info, &ke.wrap).is_err());
    }
}

/// Decodes, verifies with the fixed author and opens with the fixed doc key.
fn open_envelope(bytes: &[u8]) -> Result<(Header, Vec<u8>), String> {
    let env = Envelope::decode(bytes.to_vec()).map_err(|e| e.to_string())?;
    if env.header.author != device_a().0.device_id() {
        return Err("not the fixed author".into());
    }
    env.verify().map_err(|e| e.to_string())?;
    let body = env
        .open(&SecretKey::from_bytes(DOC_KEY))
        .map_err(|e| e.to_string())?;
    Ok((env.header, body.to_vec()))
}

fn check_envelopes(v: &Vectors) {
    let (a, _) = device_a();
    let doc_key = SecretKey::from_bytes(v.arr("doc.key"));
    let account = AccountId(v.arr("account.id"));
    assert_eq!(
        envelope::change_key(&doc_key, &DocId(v.arr("doc.id")), DOC_EPOCH).expose(),
        &v.arr::<32>("envelope.change.key")
    );
    for (name, kind, covers) in [
        ("envelope.change", Kind::Change, 0),
        (
            "envelope.snapshot",
            Kind::Snapshot,
            v.num("envelope.snapshot.covers"),
        ),
        ("envelope.signal", Kind::Signal, 0),
    ] {
        let bytes = v.hex(name);
        let (h, body) = open_envelope(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            body,
            v.str(&format!("{name}.plaintext")).as_bytes(),
            "{name}"
        );
        assert_eq!(h.kind, kind);
        assert_eq!(h.doc, DocId(v.arr("doc.id")));
        assert_eq!(h.epoch, v.num("doc.epoch") as u32);
        assert_eq!(h.account, account);
        assert_eq!(h.author, a.device_id());
        assert_eq!(h.id, EnvelopeId(v.arr(&format!("{name}.id"))));
        assert_eq!(h.covers, covers);
        assert_eq!(h, header(kind, account));
        // Header fields sit at fixed offsets.
        assert_eq!(bytes[0], casebook_shared::PROTOCOL_VERSION);
        assert_eq!(bytes[1], kind as u8);
        assert_eq!(&bytes[2..18], &h.doc.0);
        assert_eq!(&bytes[22..54], &account.0);
        assert_eq!(&bytes[54..86], &h.author.0);
        assert_eq!(&bytes[86..110], &h.id.0);
        let ct_len = u32::from_be_bytes(bytes[118..122].try_into().unwrap()) as usize;
        assert_eq!(bytes.len(), envelope::HEADER_LEN + 4 + ct_len + 64);
        assert_eq!(ct_len, envelope::padded_len(4 + body.len()) + 16);
        // Sealing is deterministic: the same inputs give the same bytes.
        let again = Envelope::seal(header(kind, account), &doc_key, &a, &body);
        assert_eq!(again.as_bytes(), &bytes[..], "{name} re-seals identically");
        // The wrong key does not open it.
        let env = Envelope::decode(bytes.clone()).unwrap();
        assert!(env.open(&SecretKey::from_bytes([0; 32])).is_err());
    }
}

fn check_pins(v: &Vectors) {
    let label = v.str("crypto.derive.label");
    let context = v.str("crypto.derive.context");
    assert_eq!(
        crypto::derive(&v.hex("crypto.derive.ikm"), label, context.as_bytes()).expose(),
        &v.arr::<32>("crypto.derive.out")
    );
    // The SecretKey method is the same function.
    assert_eq!(
        SecretKey::from_bytes(v.arr("crypto.derive.ikm"))
            .derive(label, context.as_bytes())
            .expose(),
        &v.arr::<32>("crypto.derive.out")
    );
    assert_eq!(
        crypto::hash(
            v.str("crypto.hash.label"),
            v.str("crypto.hash.data").as_bytes()
        )
        .0,
        v.arr::<32>("crypto.hash.out")
    );
    for n in PADDED_SIZES {
        assert_eq!(
            envelope::padded_len(n) as u64,
            v.num(&format!("padded_len.{n}")),
            "padded_len({n})"
        );
    }
    for (name, r) in sample_requests() {
        let want = v.hex(&format!("frame.{name}"));
        assert_eq!(codec::frame(&r), want, "frame.{name}");
        assert_eq!(codec::unframe::<Request>(&want).unwrap(), r, "frame.{name}");
    }
    let (a, _) = device_a();
    let msg = frames::auth_message(
        &v.arr("auth.fingerprint"),
        &v.arr("auth.nonce"),
        Some(&AccountId(v.arr("account.id"))),
        &a.device_id(),
    );
    let sig = Sig(v.arr("auth.sig"));
    assert_eq!(a.sign(frames::AUTH_LABEL, &msg), sig);
    crypto::verify(&a.device_id(), frames::AUTH_LABEL, &msg, &sig).unwrap();
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn file_parses_and_pins_the_account_id() {
    let v = Vectors::load();
    assert_eq!(v.raw("account.id"), ACCOUNT_ID);
    // Every hex vector is hex.
    for (name, value) in &v.values {
        if !value.starts_with('"') && value.parse::<u64>().is_err() {
            hex::decode(value).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn account_log_verifies() {
    check_account(&Vectors::load(), Some(ACCOUNT_ID));
}

#[test]
fn key_envelope_unwraps() {
    check_key_envelope(&Vectors::load());
}

#[test]
fn envelopes_verify_and_open() {
    check_envelopes(&Vectors::load());
}

#[test]
fn deterministic_pins() {
    check_pins(&Vectors::load());
}

#[test]
fn frame_snapshot_matches_the_frames_unit_test() {
    // frames.rs pins this one too; both must agree.
    assert_eq!(Vectors::load().raw("frame.list_docs"), "0000000307ac02");
}

/// Every single-bit flip at every byte position, for each vector.
fn flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len()).flat_map(move |i| {
        [0x01u8, 0x80].into_iter().map(move |bit| {
            let mut b = bytes.to_vec();
            b[i] ^= bit;
            (i, b)
        })
    })
}

#[test]
fn flipped_account_entries_fail() {
    let v = Vectors::load();
    let genesis = v.hex("account.genesis");
    let add = v.hex("account.add_device");
    let good = account_log(&v);
    for (i, b) in flips(&genesis) {
        let ok = codec::decode::<Signed>(&b)
            .map_err(|e| e.to_string())
            .and_then(|s| AccountState::verify_log(&[s]).map_err(|e| e.to_string()));
        assert!(ok.is_err(), "genesis: flip at byte {i} went unnoticed");
    }
    for (i, b) in flips(&add) {
        let ok = codec::decode::<Signed>(&b)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                AccountState::verify_log(&[good[0].clone(), s]).map_err(|e| e.to_string())
            });
        assert!(ok.is_err(), "add_device: flip at byte {i} went unnoticed");
    }
}

#[test]
fn flipped_key_envelope_fails() {
    let v = Vectors::load();
    let bytes = v.hex("access.key_envelope");
    for (i, b) in flips(&bytes) {
        assert!(
            unwrap_key_envelope(&v, &b).is_err(),
            "key envelope: flip at byte {i} went unnoticed"
        );
    }
}

#[test]
fn flipped_envelopes_fail() {
    let v = Vectors::load();
    for name in ["envelope.change", "envelope.snapshot"] {
        let bytes = v.hex(name);
        for (i, b) in flips(&bytes) {
            assert!(
                open_envelope(&b).is_err(),
                "{name}: flip at byte {i} went unnoticed"
            );
            // The signature alone catches it, even without the key.
            let verified = Envelope::decode(b).and_then(|e| e.verify());
            assert!(verified.is_err(), "{name}: flip at byte {i} verified");
        }
    }
}

#[test]
fn a_signature_by_another_device_fails() {
    let v = Vectors::load();
    let (b, _) = device_b();
    let mut log = account_log(&v);
    // Device B re-signs the genesis body: the signer no longer matches the
    // genesis device, and with only the signer swapped the signature fails.
    let mut forged = log[0].clone();
    forged.sig = b.sign(account::SIG_LABEL, &forged.body);
    assert!(AccountState::verify_log(&[forged.clone()]).is_err());
    forged.signer = b.device_id();
    assert!(AccountState::verify_log(&[forged]).is_err());
    // An envelope claimed by device B but signed by A.
    let mut env = v.hex("envelope.change");
    env[54..86].copy_from_slice(&b.device_id().0);
    assert!(Envelope::decode(env).unwrap().verify().is_err());
    // Device B is active, but the add entry says A signed it.
    log[1].signer = b.device_id();
    assert!(AccountState::verify_log(&log).is_err());
}

#[test]
fn device_ids_are_not_swappable() {
    // The DeviceId is the Ed25519 public key of the seed: pinned by the file.
    let v = Vectors::load();
    assert_eq!(
        DeviceId(v.arr("device_a.id")),
        DeviceSigner::from_seed(&v.arr("device_a.seed")).device_id()
    );
    assert_eq!(
        DeviceId(v.arr("device_b.id")),
        DeviceSigner::from_seed(&v.arr("device_b.seed")).device_id()
    );
    assert_eq!(
        v.arr::<32>("device_a.dh_public"),
        DhSecret::from_bytes(v.arr("device_a.dh_secret")).public()
    );
}
