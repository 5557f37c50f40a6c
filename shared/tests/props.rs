//! Property tests for the codec and the wire frames: arbitrary `Request`,
//! `Response` and `Signed` values encode and decode to themselves, and
//! arbitrary bytes never make a decoder panic. The signed logs' replay has
//! its own (`log_replay.rs`).

use proptest::prelude::*;

use casebook_shared::access::DocState;
use casebook_shared::account::AccountState;
use casebook_shared::codec::{self, CodecError};
use casebook_shared::crypto::{DeviceSigner, SecretKey, Sig};
use casebook_shared::envelope::{self, Envelope, Header, Kind};
use casebook_shared::frames::{DocHead, ErrorCode, Request, Response, Stored};
use casebook_shared::ids::{AccountId, DeviceId, DocId, EnvelopeId, Hash};
use casebook_shared::signed::Signed;

// ---------------------------------------------------------------------------
// Strategies.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn account_id() -> impl Strategy<Value = AccountId> {
    any::<[u8; 32]>().prop_map(AccountId)
}

fn device_id() -> impl Strategy<Value = DeviceId> {
    any::<[u8; 32]>().prop_map(DeviceId)
}

fn doc_id() -> impl Strategy<Value = DocId> {
    any::<[u8; 16]>().prop_map(DocId)
}

fn sig() -> impl Strategy<Value = Sig> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Sig(s)
    })
}

fn signed() -> impl Strategy<Value = Signed> {
    (bytes(300), device_id(), sig()).prop_map(|(body, signer, sig)| Signed { body, signer, sig })
}

fn signed_vec() -> impl Strategy<Value = Vec<Signed>> {
    proptest::collection::vec(signed(), 0..4)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::Unauthorized),
        Just(ErrorCode::Forbidden),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::Invalid),
        Just(ErrorCode::Conflict),
        Just(ErrorCode::Limited),
        Just(ErrorCode::Internal),
        Just(ErrorCode::AccessMoved),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Challenge),
        Just(Request::Subscribe),
        any::<u32>().prop_map(|max_bytes| Request::SubscribeItems { max_bytes }),
        (proptest::option::of(account_id()), device_id(), sig()).prop_map(
            |(account, device, sig)| Request::Auth {
                account,
                device,
                sig
            }
        ),
        signed_vec().prop_map(|entries| Request::CreateAccount { entries }),
        signed_vec().prop_map(|entries| Request::AppendAccount { entries }),
        (account_id(), any::<u64>())
            .prop_map(|(account, from)| Request::GetAccount { account, from }),
        (doc_id(), signed_vec()).prop_map(|(doc, entries)| Request::AppendAccess { doc, entries }),
        (doc_id(), any::<u64>()).prop_map(|(doc, from)| Request::GetAccess { doc, from }),
        (
            doc_id(),
            signed(),
            proptest::collection::vec(account_id(), 0..3)
        )
            .prop_map(|(doc, entry, readers)| Request::RestoreDisposal {
                doc,
                entry,
                readers
            }),
        any::<u64>().prop_map(|since| Request::ListDocs { since }),
        proptest::collection::vec(bytes(200), 0..5)
            .prop_map(|envelopes| Request::Upload { envelopes }),
        proptest::collection::vec(bytes(200), 0..5).prop_map(|envelopes| Request::UploadLatest {
            envelopes,
            heads: vec![(DocId([3; 16]), Hash([4; 32]))],
        }),
        (
            proptest::collection::vec((doc_id(), any::<u64>()), 0..5),
            any::<u32>(),
        )
            .prop_map(|(docs, max_bytes)| Request::Fetch { docs, max_bytes }),
        (any::<[u8; 16]>(), any::<u8>(), bytes(100))
            .prop_map(|(mailbox, slot, msg)| Request::MailboxPut { mailbox, slot, msg }),
        (any::<[u8; 16]>(), any::<u8>(), any::<u32>()).prop_map(|(mailbox, slot, wait_ms)| {
            Request::MailboxTake {
                mailbox,
                slot,
                wait_ms,
            }
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let head = (doc_id(), any::<u64>(), any::<[u8; 32]>(), any::<u64>()).prop_map(
        |(doc, access_len, h, seq)| DocHead {
            doc,
            access_len,
            access_head: Hash(h),
            seq,
        },
    );
    let stored = || {
        (doc_id(), any::<u64>(), bytes(200)).prop_map(|(doc, seq, envelope)| Stored {
            doc,
            seq,
            envelope,
        })
    };
    let result = prop_oneof![any::<u64>().prop_map(Ok), error_code().prop_map(Err)];
    prop_oneof![
        Just(Response::Ok),
        account_id().prop_map(|account| Response::Authenticated { account }),
        any::<[u8; 32]>().prop_map(|nonce| Response::Challenge { nonce }),
        signed_vec().prop_map(|entries| Response::Log { entries }),
        (proptest::collection::vec(head, 0..5), any::<u64>())
            .prop_map(|(docs, cursor)| Response::Docs { docs, cursor }),
        proptest::collection::vec(result, 0..8).prop_map(|results| Response::Uploaded { results }),
        (proptest::collection::vec(stored(), 0..4), any::<bool>())
            .prop_map(|(items, more)| Response::Changes { items, more }),
        (doc_id(), any::<u64>()).prop_map(|(doc, seq)| Response::Notify { doc, seq }),
        (stored(), any::<u64>()).prop_map(|(item, prev)| Response::Pushed { item, prev }),
        proptest::option::of(bytes(100)).prop_map(|msg| Response::Mailbox { msg }),
        (error_code(), ".{0,40}").prop_map(|(code, reason)| Response::error(code, reason)),
    ]
}

// ---------------------------------------------------------------------------
// Round trips.

proptest! {
    #[test]
    fn request_round_trips(r in request()) {
        let f = codec::frame(&r);
        prop_assert_eq!(codec::unframe::<Request>(&f)?, r.clone());
        prop_assert_eq!(codec::decode::<Request>(&codec::encode(&r))?, r.clone());
        // Every strict prefix is refused, and so is one trailing byte.
        for cut in 0..f.len() {
            prop_assert!(codec::unframe::<Request>(&f[..cut]).is_err(), "prefix {}", cut);
        }
        let mut long = f.clone();
        long.push(0);
        prop_assert_eq!(codec::unframe::<Request>(&long), Err(CodecError::Trailing(1)));
        let mut body = codec::encode(&r);
        body.push(0);
        prop_assert_eq!(codec::decode::<Request>(&body), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn response_round_trips(r in response()) {
        let f = codec::frame(&r);
        prop_assert_eq!(codec::unframe::<Response>(&f)?, r.clone());
        prop_assert_eq!(codec::decode::<Response>(&codec::encode(&r))?, r);
    }

    #[test]
    fn signed_round_trips(s in signed(), v in signed_vec()) {
        prop_assert_eq!(codec::decode::<Signed>(&codec::encode(&s))?, s);
        prop_assert_eq!(codec::decode::<Vec<Signed>>(&codec::encode(&v))?, v);
    }

    #[test]
    fn garbage_logs_never_panic(b in bytes(600)) {
        if let Ok(entries) = codec::decode::<Vec<Signed>>(&b) {
            let _ = AccountState::verify_log(&entries);
            let _ = DocState::verify_log(&entries, |_| None);
        }
        if let Ok(s) = codec::decode::<Signed>(&b) {
            let _ = AccountState::verify_log(std::slice::from_ref(&s));
        }
        let _ = codec::unframe::<Request>(&b);
        let _ = codec::decode::<Response>(&b);
    }

    #[test]
    fn arbitrary_signed_values_never_verify_or_panic(v in signed_vec()) {
        // Random signatures over random bodies: replay must refuse, not panic.
        prop_assume!(!v.is_empty());
        prop_assert!(AccountState::verify_log(&v).is_err());
    }

    #[test]
    fn padded_len_is_bounded_and_idempotent(len in 0usize..(1 << 40)) {
        let p = envelope::padded_len(len);
        prop_assert!(p >= len);
        prop_assert!(p as f64 <= len as f64 * 1.125 + 1.0, "{} -> {}", len, p);
        prop_assert_eq!(envelope::padded_len(p), p);
    }

    #[test]
    fn envelope_seal_open_round_trips(body in bytes(3000), snapshot in any::<bool>(), covers in any::<u64>()) {
        let signer = DeviceSigner::from_seed(&[1; 32]);
        let key = SecretKey::from_bytes([3; 32]);
        let header = Header {
            kind: if snapshot { Kind::Snapshot } else { Kind::Change },
            doc: DocId([6; 16]),
            epoch: 2,
            account: AccountId([5; 32]),
            author: signer.device_id(),
            id: EnvelopeId([7; 24]),
            covers,
        };
        let env = Envelope::seal(header.clone(), &key, &signer, &body);
        let back = Envelope::decode(env.as_bytes().to_vec())?;
        prop_assert_eq!(&back.header, &header);
        back.verify()?;
        prop_assert_eq!(&back.open(&key)?[..], &body[..]);
    }
}
