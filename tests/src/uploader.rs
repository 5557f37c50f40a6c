//! A device that speaks the protocol directly, without a home: its own
//! account, one document, and pre-sealed changes to upload. For the
//! benchmark's ingest and for tests that need many uploads fast.

use casebook::net::Relay;
use casebook_shared::access::{self, DocEntry, DocOp};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey, random_bytes};
use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::Request;
use casebook_shared::ids::{DocId, EnvelopeId};
use casebook_shared::signed::Signed;

/// A device of its own account with one document, ready to upload.
pub struct Uploader {
    pub relay: Relay,
    pub signer: DeviceSigner,
    pub account: casebook_shared::ids::AccountId,
    pub doc: DocId,
    key: SecretKey,
}

/// A new account with one device and one document, on the relay at `addr`.
pub async fn uploader(addr: &str, fp: [u8; 32]) -> anyhow::Result<Uploader> {
    let relay = Relay::connect(addr, fp).await?;
    let signer = DeviceSigner::generate();
    let dh = DhSecret::generate();
    let (genesis, _) = account::genesis(&signer, &dh, 0);
    let state = AccountState::from_genesis(&genesis)?;
    relay
        .request(&Request::CreateAccount {
            entries: vec![genesis],
        })
        .await?;
    relay.authenticate(&signer, Some(state.id)).await?;
    let doc = DocId::random();
    let key = SecretKey::random();
    let entry = DocEntry {
        doc,
        seq: 0,
        prev: None,
        at: 0,
        account: state.id,
        account_len: state.len,
        op: DocOp::Genesis {
            key: access::key_envelope(&doc, 0, &key, &state)?,
        },
    };
    relay
        .request(&Request::AppendAccess {
            doc,
            entries: vec![Signed::sign(&signer, access::SIG_LABEL, &entry)],
        })
        .await?;
    Ok(Uploader {
        relay,
        signer,
        account: state.id,
        doc,
        key,
    })
}

impl Uploader {
    /// `n` sealed changes of about 1 KiB, ready to upload.
    pub fn seal(&self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let header = Header {
                    kind: Kind::Change,
                    doc: self.doc,
                    epoch: 0,
                    account: self.account,
                    author: self.signer.device_id(),
                    id: EnvelopeId(random_bytes()),
                    covers: 0,
                };
                let body: [u8; 32] = random_bytes();
                Envelope::seal(header, &self.key, &self.signer, &body.repeat(25)).into_bytes()
            })
            .collect()
    }
}
