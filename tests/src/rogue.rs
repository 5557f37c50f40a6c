//! An account whose device keys a test holds: it signs and seals what an
//! honest client never would (an edit beyond its role, a change written as
//! another device, an access-log entry nobody may sign), and uploads it to
//! the real relay. The hostile-relay tests and the simulation's hostile
//! colleague are one.

use casebook::docs::SnapshotBody;
use casebook::net::{NetError, Relay};
use casebook::notes::CaseDoc;
use casebook_shared::access::{self, DocEntry, DocOp, HASH_LABEL, Role, SIG_LABEL};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{self, DeviceSigner, DhSecret, SecretKey};
use casebook_shared::envelope::{Envelope, Header, Kind};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};
use casebook_shared::signed::Signed;

/// What a forged edit writes into a note.
pub const FORGED: &str = "FORGED: the client asked to stop treatment";

/// An account whose device keys the test holds: it signs what it likes.
pub struct Rogue {
    signer: DeviceSigner,
    account_key: DhSecret,
    pub id: AccountId,
    conn: Relay,
    /// Envelopes of its own that honest devices refuse (by relay sequence
    /// number): it builds on what they hold, not on these.
    pub disowned: Vec<(DocId, u64)>,
}

impl Rogue {
    /// Registers a new account on the relay behind `conn`, and signs in.
    pub async fn register(conn: Relay) -> Rogue {
        let signer = DeviceSigner::generate();
        let (genesis, account_key) = account::genesis(&signer, &DhSecret::generate(), 1);
        let id = AccountState::from_genesis(&genesis).unwrap().id;
        conn.request(&Request::CreateAccount {
            entries: vec![genesis],
        })
        .await
        .unwrap();
        conn.authenticate(&signer, Some(id)).await.unwrap();
        Rogue {
            signer,
            account_key,
            id,
            conn,
            disowned: Vec::new(),
        }
    }

    /// Signs in again over a new connection (the relay restarted).
    pub async fn reconnect(&mut self, conn: Relay) -> Result<(), NetError> {
        conn.authenticate(&self.signer, Some(self.id)).await?;
        std::mem::replace(&mut self.conn, conn).close().await;
        Ok(())
    }

    /// This rogue's device.
    pub fn device(&self) -> casebook_shared::ids::DeviceId {
        self.signer.device_id()
    }

    /// One of this rogue's device's actors: what its changes are written as.
    pub fn actor(&self) -> Vec<u8> {
        [&self.signer.device_id().0[..], b"-rogue"].concat()
    }

    /// Uploads one envelope to the real relay; its answer.
    pub async fn upload(&self, envelope: Vec<u8>) -> Result<u64, ErrorCode> {
        match self
            .conn
            .request(&Request::Upload {
                envelopes: vec![envelope],
            })
            .await
            .unwrap()
        {
            Response::Uploaded { results } => results[0],
            r => panic!("{r:?}"),
        }
    }

    pub async fn access_log(&self, doc: DocId) -> Vec<Signed> {
        self.try_access_log(doc)
            .await
            .expect("the relay serves the access log")
    }

    /// A document's access log as the relay serves it; `None` when it
    /// does not (the document is not there yet).
    pub async fn try_access_log(&self, doc: DocId) -> Option<Vec<Signed>> {
        match self
            .conn
            .request(&Request::GetAccess { doc, from: 0 })
            .await
            .ok()?
        {
            Response::Log { entries } => Some(entries),
            _ => None,
        }
    }

    /// The heads of `doc` as the rogue reads it: the newest changes.
    pub async fn heads(&self, doc: DocId) -> Vec<[u8; 32]> {
        let mut heads = Vec::new();
        self.forge_with(doc, None, &self.actor(), |case| {
            heads = case.heads().iter().map(|h| h.0).collect();
        })
        .await;
        heads
    }

    /// A signal of `doc` under its newest epoch, as a member tells the
    /// others: `claims` (change hash and last operation number) and
    /// `wants`, encoded as the client encodes them.
    pub async fn forge_signal(
        &self,
        doc: DocId,
        claims: Vec<([u8; 32], u64)>,
        wants: Vec<[u8; 32]>,
    ) -> Vec<u8> {
        let body = casebook_shared::codec::encode(&(claims, wants));
        self.forge_signal_raw(doc, &body).await
    }

    /// A signal of `doc` whose body is `body`, whatever it holds.
    pub async fn forge_signal_raw(&self, doc: DocId, body: &[u8]) -> Vec<u8> {
        let log = self.access_log(doc).await;
        let keys = access::doc_keys(
            &log,
            &self.id,
            &[DhSecret::from_bytes(*self.account_key.expose())],
        )
        .expect("the rogue holds the case's keys");
        let (epoch, key) = keys.iter().next_back().expect("a key");
        let header = Header {
            kind: Kind::Signal,
            doc,
            epoch: *epoch,
            account: self.id,
            author: self.signer.device_id(),
            id: EnvelopeId(crypto::random_bytes()),
            covers: 0,
        };
        Envelope::seal(header, key, &self.signer, body).into_bytes()
    }

    /// Reads the case as a member does, edits note n1 and seals the change
    /// under the newest epoch: a real change, signed by a real device.
    pub async fn forge_edit(&self, doc: DocId) -> Vec<u8> {
        self.forge_edit_at(doc, None).await
    }

    /// As [`Rogue::forge_edit`], sealed under `epoch` if given.
    pub async fn forge_edit_at(&self, doc: DocId, epoch: Option<u32>) -> Vec<u8> {
        // Written as its own device, as every change must be.
        let actor = self.actor();
        self.forge_with(doc, epoch, &actor, |case| {
            case.edit_note("n1", &[("subjective".into(), FORGED.into())])
                .unwrap();
        })
        .await
    }

    /// Reads the case as a member does, makes `edit` written as `actor`,
    /// and seals it as this rogue's device under `epoch` (the newest if
    /// not given).
    pub async fn forge_with(
        &self,
        doc: DocId,
        epoch: Option<u32>,
        actor: &[u8],
        edit: impl FnOnce(&mut CaseDoc),
    ) -> Vec<u8> {
        self.try_forge_with(doc, epoch, actor, edit)
            .await
            .expect("the rogue reads the case")
    }

    /// As [`Rogue::forge_with`]; `None` when it holds no key to the case or
    /// nothing of it opens.
    pub async fn try_forge_with(
        &self,
        doc: DocId,
        epoch: Option<u32>,
        actor: &[u8],
        edit: impl FnOnce(&mut CaseDoc),
    ) -> Option<Vec<u8>> {
        let log = self.try_access_log(doc).await?;
        let keys = access::doc_keys(
            &log,
            &self.id,
            &[DhSecret::from_bytes(*self.account_key.expose())],
        )
        .ok()?;
        let items = match self
            .conn
            .request(&Request::Fetch {
                docs: vec![(doc, 0)],
                max_bytes: 1 << 22,
            })
            .await
            .ok()?
        {
            Response::Changes { items, .. } => items,
            _ => return None,
        };
        let mut case: Option<CaseDoc> = None;
        for item in items {
            if self.disowned.contains(&(doc, item.seq)) {
                continue;
            }
            // It keeps no copy of its own: where the relay's disk damaged
            // an envelope it cannot tell what it wrote last, and writes
            // nothing this time (its next change could repeat one).
            let env = Envelope::decode(item.envelope)
                .ok()
                .filter(|e| e.verify().is_ok())?;
            // What was sealed under a key it never held stays shut to it.
            let Some(key) = keys.get(&env.header.epoch) else {
                continue;
            };
            let body = env.open(key).ok()?;
            match (case.as_mut(), env.header.kind) {
                (Some(c), Kind::Change) => {
                    c.apply(&body).ok()?;
                }
                // A snapshot holds all before it: the saved document, with
                // the listing's summary beside it.
                (_, Kind::Snapshot) => {
                    let snap: SnapshotBody = casebook_shared::codec::decode(&body).ok()?;
                    case = Some(CaseDoc::load(&snap.doc, actor).ok()?);
                }
                // What a member tells the others is not the document.
                (_, Kind::Signal) => {}
                (None, Kind::Change) => case = Some(CaseDoc::load(&body, actor).ok()?),
            }
        }
        let mut case = case?;
        let heads = case.heads();
        edit(&mut case);
        let body = case.changes_since(&heads);
        let epoch = epoch.or_else(|| keys.keys().max().copied())?;
        let header = Header {
            kind: Kind::Change,
            doc,
            epoch,
            account: self.id,
            author: self.signer.device_id(),
            id: EnvelopeId(crypto::random_bytes()),
            covers: 0,
        };
        Some(Envelope::seal(header, keys.get(&epoch)?, &self.signer, &body).into_bytes())
    }

    /// An access-log entry continuing `log` (of `doc`), claiming `account`
    /// signed it, signed by this rogue device: it adds the rogue as a writer.
    pub async fn forge_access(&self, doc: DocId, log: &[Signed], account: AccountId) -> Signed {
        let st = AccountState::from_genesis(&self.genesis().await).unwrap();
        let entry = DocEntry {
            doc,
            seq: log.len() as u64,
            prev: Some(log.last().unwrap().hash(HASH_LABEL)),
            at: 2,
            account,
            account_len: 1,
            op: DocOp::AddMember {
                member: self.id,
                role: Role::Write,
                expires: None,
                details: Vec::new(),
                key: access::key_envelope(&doc, 0, &SecretKey::random(), &st).unwrap(),
            },
        };
        Signed::sign(&self.signer, SIG_LABEL, &entry)
    }

    pub async fn genesis(&self) -> Signed {
        match self
            .conn
            .request(&Request::GetAccount {
                account: self.id,
                from: 0,
            })
            .await
            .unwrap()
        {
            Response::Log { entries } => entries[0].clone(),
            r => panic!("{r:?}"),
        }
    }
}
