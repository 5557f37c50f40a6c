//! The account's devices: listing them, revoking one (which rotates the
//! account key and every document this account owns), and recovering the
//! account on a new device from the recovery words.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use casebook_shared::access::{self, DocOp};
use casebook_shared::account::{self, AccountState, DeviceInfo, DeviceKind};
use casebook_shared::codec;
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, DocId};
use serde::Serialize;

use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::identity::Identity;
use crate::net::Relay;
use crate::recovery::{self, RecoveryError};

/// The sealed setting behind [`Home::rotations_due`].
const ROTATIONS_DUE: &str = "rotations_due";

/// Why a device was not revoked as asked.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A device would lose the key it needs to finish the revocation; it
    /// is revoked from another device of the account.
    #[error("not allowed: a device cannot revoke itself; revoke it from another device")]
    RevokeSelf,
    #[error("not allowed: device {} is not active", .0.short())]
    NotActive(DeviceId),
}

/// One device of the account, as `device list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    pub id: DeviceId,
    /// The name a device of the account last gave it, if any.
    pub name: Option<String>,
    /// When it last wrote to the account's audit trail, as far as this
    /// device has synced.
    pub last_seen: Option<u64>,
    /// `device` or `recovery` (the paper key).
    pub kind: &'static str,
    pub added_at: u64,
    pub revoked: bool,
    pub this_device: bool,
}

impl Home {
    /// The account's devices, from the signed log held here.
    pub fn devices(&self) -> Result<Vec<DeviceRow>> {
        let state = self.account_state()?;
        let me = self.device_id();
        // Names and sightings travel in the audit trail the account's
        // devices share (newest first), so every device knows them.
        let trail = self.trail().entries()?;
        let name_of = |id: &DeviceId| {
            trail.iter().find_map(|r| {
                let rest = r.what.strip_prefix("device ")?;
                let (who, name) = rest.split_once(" named ")?;
                (who == id.to_hex()).then(|| name.to_string())
            })
        };
        let seen = |id: &DeviceId| trail.iter().find(|r| r.device == *id).map(|r| r.at);
        let mut rows: Vec<DeviceRow> = state
            .devices
            .values()
            .map(|d| DeviceRow {
                id: d.info.id,
                name: name_of(&d.info.id),
                last_seen: seen(&d.info.id),
                kind: match d.info.kind {
                    DeviceKind::Device => "device",
                    DeviceKind::Paper => "recovery",
                },
                added_at: d.added_at,
                revoked: d.revoked_seq.is_some(),
                this_device: d.info.id == me,
            })
            .collect();
        rows.sort_by_key(|r| (r.added_at, r.id));
        Ok(rows)
    }

    /// Names a device of this account (this one or another), for every
    /// device of the account to show; recorded in the shared audit trail.
    pub fn name_device(&mut self, device: &DeviceId, name: &str) -> Result<()> {
        let name = crate::names::check(name)?;
        if name.is_empty() {
            return Err(Error::NoName);
        }
        if !self.account_state()?.devices.contains_key(device) {
            return Err(Error::UnknownDevice(device.short()));
        }
        self.trail()
            .record(&format!("device {} named {name}", device.to_hex()), None)
    }

    /// Finds a device by id or unique prefix.
    pub fn resolve_device(&self, id: &str) -> Result<DeviceId> {
        let needle = id.trim().to_lowercase();
        let found: Vec<DeviceId> = self
            .account_state()?
            .devices
            .keys()
            .filter(|d| !needle.is_empty() && d.to_hex().starts_with(&needle))
            .copied()
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::UnknownDevice(id.to_string())),
            _ => Err(Error::UnknownDevice(format!(
                "{id} (more than one matches)"
            ))),
        }
    }

    /// Revokes a device: the relay refuses it from then on, the account key
    /// rotates to the remaining devices, and every document this account owns
    /// moves to a new epoch key sealed to the members' current account keys,
    /// so what is written afterwards is sealed under keys the revoked device
    /// never had. The rotations go out with the next sync.
    ///
    /// The recovery key is refused here ([`Error::RecoveryKey`]): revoked on
    /// its own, it would leave the account with no way back after a lost
    /// device. [`Home::replace_recovery_words`] revokes it and issues new
    /// words in one step.
    pub async fn revoke(&mut self, relay: &Relay, device: &DeviceId) -> Result<usize> {
        let mine = self.account_id();
        let state = self.refresh_log(relay, &mine).await?;
        if state
            .devices
            .get(device)
            .is_some_and(|d| d.info.kind == DeviceKind::Paper)
        {
            return Err(Error::RecoveryKey);
        }
        let rotated = self.revoke_in(relay, state, &[*device], None).await?;
        self.trail().record(
            &format!(
                "device {} revoked; {rotated} documents rotated",
                device.short()
            ),
            None,
        )?;
        Ok(rotated)
    }

    /// Issues new recovery words and revokes every recovery key the account
    /// had, in one step: the old words stop working, and documents move to
    /// keys they never opened. Returns the words, to show once.
    pub async fn replace_recovery_words(
        &mut self,
        relay: &Relay,
    ) -> Result<(zeroize::Zeroizing<String>, usize)> {
        let mine = self.account_id();
        let state = self.refresh_log(relay, &mine).await?;
        let old: Vec<DeviceId> = state
            .devices
            .values()
            .filter(|d| d.info.kind == DeviceKind::Paper && state.is_active(&d.info.id))
            .map(|d| d.info.id)
            .collect();
        let (words, paper) = recovery::generate();
        let rotated = self
            .revoke_in(relay, state, &old, Some(paper.info()))
            .await?;
        self.trail().record(
            &format!(
                "recovery words replaced; {} old recovery key(s) revoked; {rotated} documents rotated",
                old.len()
            ),
            None,
        )?;
        Ok((words, rotated))
    }

    /// Adds `add` (if any), then revokes each of `devices`, in one append to
    /// the account log, and moves every owned document to a new epoch.
    async fn revoke_in(
        &mut self,
        relay: &Relay,
        state: AccountState,
        devices: &[DeviceId],
        add: Option<DeviceInfo>,
    ) -> Result<usize> {
        let first = state.len;
        let mut state = state;
        let mut entries = Vec::new();
        if let Some(info) = add {
            let key = self.current_account_key(&state)?;
            let entry = account::add_device(&state, &self.id.signer, key, info, self.now())?;
            state.apply(&entry)?;
            entries.push(entry);
        }
        let mut keys = self
            .account_keys
            .iter()
            .map(|k| DhSecret::from_bytes(*k.expose()))
            .collect::<Vec<_>>();
        for device in devices {
            if *device == self.device_id() {
                return Err(DeviceError::RevokeSelf.into());
            }
            if !state.is_active(device) {
                return Err(DeviceError::NotActive(*device).into());
            }
            let key = keys
                .get(state.key.generation as usize)
                .ok_or(Error::Revoked)?;
            let (entry, new_key) =
                account::revoke_device(&state, &self.id.signer, key, *device, self.now())?;
            state.apply(&entry)?;
            keys.push(new_key);
            entries.push(entry);
        }
        relay
            .request(&Request::AppendAccount {
                entries: entries.clone(),
            })
            .await?;
        self.extend_account_log(first, &entries)?;
        self.atomically(|home| home.rotate_owned())
    }

    /// Moves every document this account owns and has not disposed of to
    /// a new epoch ([`Home::rotate_doc`]), after a revocation. Returns how
    /// many. The caller makes it one transaction with what it follows.
    pub(crate) fn rotate_owned(&mut self) -> Result<usize> {
        let owned = self.owned_shared_with(None)?;
        for doc in &owned {
            self.rotate_doc(doc)?;
        }
        Ok(owned.len())
    }

    /// The documents a turn of an account log could not move to a new key
    /// at once (see `sync::turn`), which upkeep does.
    pub(crate) fn rotations_due(&self) -> Result<BTreeSet<DocId>> {
        Ok(match self.store.get_secret(ROTATIONS_DUE)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeSet::new(),
        })
    }

    /// Adds `docs` to [`Home::rotations_due`].
    pub(crate) fn rotation_due(&self, docs: &[DocId]) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut due = self.rotations_due()?;
        due.extend(docs.iter().copied());
        self.set_rotations_due(&due)
    }

    pub(crate) fn set_rotations_due(&self, due: &BTreeSet<DocId>) -> Result<()> {
        Ok(self.store.put_secret(ROTATIONS_DUE, &codec::encode(due))?)
    }

    /// The documents this account owns and has not disposed of, only those
    /// `with` is a member of, where given.
    pub(crate) fn owned_shared_with(&self, with: Option<&AccountId>) -> Result<Vec<DocId>> {
        let mine = self.account_id();
        let mut owned = Vec::new();
        for doc in self.store.doc_ids()? {
            if self.access().doc_meta(&doc)?.is_some_and(|m| {
                m.owner == mine
                    && !m.disposed
                    && with.is_none_or(|a| m.members.iter().any(|(x, _, _)| x == a))
            }) {
                owned.push(doc);
            }
        }
        Ok(owned)
    }

    /// Moves a document to a new epoch key, sealed to each member's current
    /// account key, with the old key sealed under the new one so members keep
    /// reading the history.
    ///
    /// Every check comes before its one write, and that write fails only
    /// with a store error: a caller that goes on after any other error
    /// (`sync::turn`, upkeep) leaves nothing half written.
    pub(crate) fn rotate_doc(&mut self, doc: &DocId) -> Result<()> {
        let meta = self
            .access()
            .doc_meta(doc)?
            .ok_or(Inconsistent::NoAccessLog(*doc))?;
        let keys = self.access().doc_keys(doc)?;
        let old = keys.get(&meta.epoch).ok_or(Error::NoKey(*doc))?;
        let epoch = meta.epoch + 1;
        let new = SecretKey::random();
        let mut recipients: BTreeMap<AccountId, AccountState> = BTreeMap::new();
        let me = self.account_state()?;
        recipients.insert(me.id, me);
        for (member, _, _) in &meta.members {
            if !recipients.contains_key(member) {
                let log = self.account_log_of(member)?;
                recipients.insert(*member, AccountState::verify_log(&log)?);
            }
        }
        let mut envelopes = Vec::new();
        for st in recipients.values() {
            envelopes.push(access::key_envelope(doc, epoch, &new, st)?);
        }
        let previous = access::seal_previous(doc, epoch, &new, old);
        self.access().append_access_entry(
            doc,
            DocOp::Rotate {
                epoch,
                keys: envelopes,
                previous,
            },
        )?;
        Ok(())
    }
}

/// Restores an account on a new device from its recovery words: signs in
/// to the relay as the paper key, adds a new device to the account log, and
/// makes a home in `dir` for it. The cases arrive with the first sync.
pub async fn recover(
    dir: &Path,
    passphrase: &[u8],
    words: &str,
    name: &str,
    relay_addr: &str,
    fingerprint: [u8; 32],
) -> Result<Home> {
    recover_with(
        dir,
        passphrase,
        words,
        name,
        relay_addr,
        fingerprint,
        &crate::home::Setup::default(),
    )
    .await
}

/// [`recover`] with a [`Setup`](crate::home::Setup) of the caller's.
pub async fn recover_with(
    dir: &Path,
    passphrase: &[u8],
    words: &str,
    name: &str,
    relay_addr: &str,
    fingerprint: [u8; 32],
    setup: &crate::home::Setup,
) -> Result<Home> {
    if Home::exists(dir) {
        return Err(Error::Store(crate::store::StoreError::AlreadyInitialised));
    }
    if crate::names::check(name)?.is_empty() {
        return Err(Error::NoName);
    }
    let paper = recovery::from_words(words)?;
    let relay = setup.reach(relay_addr, fingerprint).await?;
    let account = relay
        .authenticate(&paper.signer, None)
        .await
        .map_err(RecoveryError::UnknownToRelay)?;
    let entries = match relay
        .request(&Request::GetAccount { account, from: 0 })
        .await?
    {
        Response::Log { entries } => entries,
        other => return Err(RecoveryError::UnexpectedAnswer(Box::new(other)).into()),
    };
    let state = AccountState::verify_log(&entries)?;
    if state.id != account || !state.is_active(&paper.signer.device_id()) {
        return Err(RecoveryError::NotListed.into());
    }
    let keys = account::account_keys(&entries, &account, &paper.signer.device_id(), &paper.dh)?;
    let current = keys
        .get(state.key.generation as usize)
        .ok_or(RecoveryError::NotCurrent)?;
    let signer = DeviceSigner::generate();
    let dh = DhSecret::generate();
    let info = DeviceInfo {
        id: signer.device_id(),
        dh: dh.public(),
        kind: DeviceKind::Device,
    };
    let entry = account::add_device(&state, &paper.signer, current, info, setup.clock.now())?;
    relay
        .request(&Request::AppendAccount {
            entries: vec![entry],
        })
        .await?;
    relay.close().await;
    let id = Identity::new(
        signer,
        dh,
        account,
        name.to_string(),
        relay_addr.to_string(),
        fingerprint,
    );
    let mut home = Home::create_joined(dir, passphrase, id, setup)?;
    let finish = async {
        let relay = home.connect().await?;
        home.refresh_log(&relay, &account).await?;
        relay.close().await;
        home.trail()
            .record("account recovered onto this device", None)
    };
    match finish.await {
        Ok(()) => Ok(home),
        Err(e) => {
            home.discard();
            Err(e)
        }
    }
}
