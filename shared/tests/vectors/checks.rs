//! The checks, shared by the generator and the tests.

use super::*;

pub(crate) fn account_log(v: &Vectors) -> Vec<Signed> {
    ["account.genesis", "account.add_device"]
        .iter()
        .map(|n| codec::decode::<Signed>(&v.hex(n)).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

pub(crate) fn check_account(v: &Vectors, pinned_id: Option<&str>) {
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

pub(crate) fn unwrap_key_envelope(v: &Vectors, bytes: &[u8]) -> Result<SecretKey, String> {
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

pub(crate) fn check_key_envelope(v: &Vectors) {
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
pub(crate) fn open_envelope(bytes: &[u8]) -> Result<(Header, Vec<u8>), String> {
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

pub(crate) fn check_envelopes(v: &Vectors) {
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

pub(crate) fn check_pins(v: &Vectors) {
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

/// The vouch entry: today's code makes the same bytes on top of the log,
/// the log with it verifies, and it vouches for exactly the entries it
/// names, signed by device B, at a length where B is not listed yet.
pub(crate) fn check_vouch(v: &Vectors) {
    let (b, _) = device_b();
    let mut log = account_log(v);
    let state = AccountState::verify_log(&log).expect("the account log verifies");
    let bytes = v.hex("account.vouch");
    assert_eq!(v.num("account.vouch.at"), VOUCH_AT);
    assert_eq!(
        bytes,
        codec::encode(&vouch_entry(&state)),
        "the vouch's bytes"
    );
    let vouch: Signed = codec::decode(&bytes).expect("decodes");
    let entry: AccountEntry = vouch.open(account::SIG_LABEL).expect("opens");
    assert_eq!(
        (entry.seq, entry.prev, entry.at),
        (2, Some(state.head), VOUCH_AT)
    );
    log.push(vouch);
    let state = AccountState::verify_log(&log).expect("the log with the vouch verifies");
    assert_eq!(state.len, 3);
    let (named, other) = (Hash(VOUCHED[0]), Hash([0x33; 32]));
    assert!(state.vouched_for(&named, &b.device_id(), 1));
    assert!(state.vouched_for(&Hash(VOUCHED[1]), &b.device_id(), 0));
    assert!(
        !state.vouched_for(&named, &b.device_id(), 2),
        "B is listed at 2"
    );
    assert!(!state.vouched_for(&other, &b.device_id(), 1));
    assert!(!state.vouched_for(&named, &device_a().0.device_id(), 0));
}
