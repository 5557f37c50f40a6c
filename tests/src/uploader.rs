//! A device that speaks the protocol directly, without a home: its own
//! account, one document, pre-sealed changes to upload, and the document's
//! access changes. For the benchmark's ingest and for tests that need many
//! uploads fast, or one request at an exact moment.

use casebook::net::Relay;
use casebook_shared::access::{self, DocEntry, DocOp, DocState};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey, random_bytes};
use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;

/// A device of its own account with one document, ready to upload.
pub struct Uploader {
    pub relay: Relay,
    pub signer: DeviceSigner,
    pub account: AccountId,
    pub state: AccountState,
    pub doc: DocId,
    /// The document's key at epoch 0.
    pub key: SecretKey,
    /// The document's access log as this device wrote it.
    pub access: Vec<Signed>,
}

/// The first entry of a new document's access log: `state`'s device
/// `signer` makes `doc`, its epoch-0 `key` sealed to the account.
pub fn doc_genesis(
    signer: &DeviceSigner,
    state: &AccountState,
    doc: DocId,
    key: &SecretKey,
) -> anyhow::Result<Signed> {
    let entry = DocEntry {
        doc,
        seq: 0,
        prev: None,
        at: 0,
        account: state.id,
        account_len: state.len,
        op: DocOp::Genesis {
            key: access::key_envelope(&doc, 0, key, state)?,
        },
    };
    Ok(Signed::sign(signer, access::SIG_LABEL, &entry))
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
    let genesis = doc_genesis(&signer, &state, doc, &key)?;
    relay
        .request(&Request::AppendAccess {
            doc,
            entries: vec![genesis.clone()],
        })
        .await?;
    Ok(Uploader {
        relay,
        signer,
        account: state.id,
        state,
        doc,
        key,
        access: vec![genesis],
    })
}

impl Uploader {
    /// `n` sealed changes of about 1 KiB, ready to upload.
    pub fn seal(&self, n: usize) -> Vec<Vec<u8>> {
        self.seal_into(self.doc, &self.key, n)
    }

    /// `n` changes to `doc` (another account's, shared with this one),
    /// sealed under its epoch-0 `key`.
    pub fn seal_into(&self, doc: DocId, key: &SecretKey, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let header = Header {
                    kind: Kind::Change,
                    doc,
                    epoch: 0,
                    account: self.account,
                    author: self.signer.device_id(),
                    id: EnvelopeId::fresh(),
                    covers: 0,
                };
                let body: [u8; 32] = random_bytes();
                Envelope::seal(header, key, &self.signer, &body.repeat(25)).into_bytes()
            })
            .collect()
    }
}

impl Uploader {
    /// Appends one entry to the document's access log; `others` are the
    /// accounts the log names besides this one.
    pub async fn change_access(
        &mut self,
        op: DocOp,
        others: &[&AccountState],
    ) -> anyhow::Result<Response> {
        let me = &self.state;
        let now = DocState::verify_log(&self.access, |a: &AccountId| {
            std::iter::once(me)
                .chain(others.iter().copied())
                .find(|s| s.id == *a)
        })?;
        let entry = DocEntry {
            doc: self.doc,
            seq: now.len,
            prev: Some(now.head),
            at: 0,
            account: self.account,
            account_len: self.state.len,
            op,
        };
        let signed = Signed::sign(&self.signer, access::SIG_LABEL, &entry);
        let answer = self
            .relay
            .request(&Request::AppendAccess {
                doc: self.doc,
                entries: vec![signed.clone()],
            })
            .await?;
        if matches!(answer, Response::Ok) {
            self.access.push(signed);
        }
        Ok(answer)
    }

    /// Adds `member` with write access at epoch 0.
    pub async fn add_writer(&mut self, member: &AccountState) -> anyhow::Result<Response> {
        let op = DocOp::AddMember {
            member: member.id,
            role: access::Role::Write,
            expires: None,
            details: Vec::new(),
            key: access::key_envelope(&self.doc, 0, &self.key, member)?,
        };
        self.change_access(op, &[member]).await
    }
}
