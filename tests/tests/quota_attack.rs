//! A device whose keys an attacker holds tries to fill the relay's disk
//! past its account's quota with snapshots, which the quota charges only
//! for what they add beyond what the document already stores.

use casebook::net::Relay;
use casebook_shared::access::{self, DocEntry, DocOp};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{self, DeviceSigner, DhSecret, SecretKey};
use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{DocId, EnvelopeId};
use casebook_shared::signed::Signed;
use casebook_tests::TestRelay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_new_documents_count_against_the_quota() {
    let data = tempfile::tempdir().unwrap();
    let mut config = casebook_relay::Config::new("127.0.0.1:0".parse().unwrap(), data.path());
    config.limits.quota_bytes = 64 * 1024;
    let relay = TestRelay {
        handle: casebook_relay::start(config).await.unwrap(),
        data,
    };

    let signer = DeviceSigner::generate();
    let (genesis, _account_key) = account::genesis(&signer, &DhSecret::generate(), 1);
    let me = AccountState::from_genesis(&genesis).unwrap();
    let conn = Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    conn.request(&Request::CreateAccount {
        entries: vec![genesis],
    })
    .await
    .unwrap();
    conn.authenticate(&signer, Some(me.id)).await.unwrap();

    // Documents of its own, each with a snapshot that covers nothing and
    // frees nothing: 40 KiB each against a 64 KiB quota.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let doc = DocId(crypto::random_bytes());
        let key = SecretKey::random();
        let entry = DocEntry {
            doc,
            seq: 0,
            prev: None,
            at: 1,
            account: me.id,
            account_len: 1,
            op: DocOp::Genesis {
                key: access::key_envelope(&doc, 0, &key, &me).unwrap(),
            },
        };
        conn.request(&Request::AppendAccess {
            doc,
            entries: vec![Signed::sign(&signer, access::SIG_LABEL, &entry)],
        })
        .await
        .unwrap();
        let header = Header {
            kind: Kind::Snapshot,
            doc,
            epoch: 0,
            account: me.id,
            author: signer.device_id(),
            id: EnvelopeId(crypto::random_bytes()),
            covers: 0,
        };
        let body: Vec<u8> = (0..40 * 1024)
            .map(|_| crypto::random_bytes::<1>()[0])
            .collect();
        let snapshot = Envelope::seal(header, &key, &signer, &body).into_bytes();
        answers.push(
            conn.request(&Request::Upload {
                envelopes: vec![snapshot],
            })
            .await,
        );
    }
    assert!(
        matches!(answers[0], Ok(Response::Uploaded { ref results }) if results[0].is_ok()),
        "{:?}",
        answers[0]
    );
    // The second would take the account past its quota: refused, as
    // every one after it.
    for a in &answers[1..] {
        assert!(
            matches!(a, Err(casebook::net::NetError::Relay { code: ErrorCode::Limited, reason })
                if reason.starts_with("limit storage-quota:")),
            "{a:?}"
        );
    }
    conn.close().await;
}
