//! A device home: the opened local store, this device's identity, and the
//! account keys it can reach. Everything the CLI does goes through [`Home`].

use std::path::{Path, PathBuf};

use casebook_shared::account::{self, AccountState};
use casebook_shared::codec;
use casebook_shared::crypto::DhSecret;
use casebook_shared::ids::{AccountId, DeviceId};
use casebook_shared::signed::Signed;
use zeroize::Zeroizing;

use crate::audit::Trail;
use crate::docs::{Access, DocCache, Docs};
use crate::error::{Error, Inconsistent, Result};
use crate::identity::{Identity, IdentityRecord};
use crate::recovery;
use crate::session::SyncMemory;
use crate::store::Store;

pub use crate::audit::{AuditRecord, Disclosure};

/// The database file inside a home folder.
pub const DB_FILE: &str = "casebook.db";

/// Seconds without an audit entry after which an unlock is recorded again.
pub const UNLOCK_SPELL: u64 = 15 * 60;

/// Whether an unlock at `now` starts a new spell of use, given when this
/// device last recorded anything.
fn unlock_is_recorded(last_entry: Option<u64>, now: u64) -> bool {
    last_entry.is_none_or(|at| now.saturating_sub(at) >= UNLOCK_SPELL)
}

/// How a home is made and reaches its relay, beyond its folder and
/// passphrase. People get the default: a relay over QUIC at the address
/// the home holds, and the full key-derivation cost. A simulation hands a
/// relay in this process and a cheap derivation.
#[derive(Clone, Default)]
pub struct Setup {
    pub kdf: crate::store::KdfParams,
    pub local: Option<std::sync::Arc<dyn crate::net::LocalRelay>>,
    /// What every instant the core records and every expiry it judges is
    /// read from: the system's, or a simulation's that lets days pass.
    pub clock: casebook_shared::clock::Clock,
    /// Where a simulated process stops writing: none for people.
    pub crash: Option<crate::store::CrashPoint>,
    /// Whether each edit is sent as soon as it is saved, by a front end
    /// that syncs after every save (the web page, a watching service).
    /// While the next sync will send it before catching up (a full round
    /// ran within seconds, see `Home::edit_atomically`), its commit does
    /// not wait for the disk: the sync that sends it makes it durable while
    /// the upload travels to the relay, and the relay's answer is taken
    /// only once it is. Off for a command that saves and exits, whose edit
    /// is durable when it returns.
    ///
    /// What this risks is a power cut in that instant: the edit may be gone
    /// here and stored by the relay. The device then takes its own change
    /// back from the relay (it never skips one of its own changes without
    /// checking that it holds it), and records that it did.
    pub sends_at_once: bool,
}

impl Setup {
    /// Opens a connection to the relay at `addr` (or the one in process).
    pub(crate) async fn reach(
        &self,
        addr: &str,
        fingerprint: [u8; 32],
    ) -> std::result::Result<crate::net::Relay, crate::net::NetError> {
        match &self.local {
            Some(l) => Ok(crate::net::Relay::local(l.as_ref(), fingerprint)),
            None => crate::net::Relay::connect(addr, fingerprint).await,
        }
    }
}

/// An opened device home.
pub struct Home {
    pub(crate) store: Store,
    pub(crate) id: Identity,
    /// Account keys by generation, as far as this device can reach.
    pub(crate) account_keys: Vec<DhSecret>,
    /// Documents kept loaded between operations.
    pub(crate) cache: DocCache,
    dir: PathBuf,
    /// How it reaches its relay.
    pub(crate) setup: Setup,
    /// What this session remembers of its sync rounds.
    pub(crate) synced: SyncMemory,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Home({})", self.dir.display())
    }
}

fn encode_keys(keys: &[DhSecret]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(keys.len() * 32));
    for k in keys {
        out.extend_from_slice(k.expose());
    }
    out
}

fn decode_keys(bytes: &[u8]) -> Vec<DhSecret> {
    bytes
        .chunks_exact(32)
        .map(|c| DhSecret::from_bytes(c.try_into().expect("chunks_exact(32) yields 32 bytes")))
        .collect()
}

impl Home {
    /// The audit trail, to record in or read.
    pub fn trail(&self) -> Trail<'_> {
        Trail {
            store: &self.store,
            device: self.device_id(),
            clock: &self.setup.clock,
        }
    }

    /// The documents held here, to read or save.
    pub fn docs(&self) -> Docs<'_> {
        Docs::new(&self.store, &self.cache)
    }

    /// The documents' access logs, states and keys.
    pub fn access(&self) -> Access<'_> {
        Access {
            store: &self.store,
            me: self.account_id(),
            account_keys: &self.account_keys,
            signer: &self.id.signer,
            clock: &self.setup.clock,
        }
    }

    /// Unix seconds now, by this home's clock.
    pub fn now(&self) -> u64 {
        self.setup.clock.now()
    }

    pub(crate) fn db(dir: &Path) -> PathBuf {
        dir.join(DB_FILE)
    }

    /// Whether `dir` holds a home.
    pub fn exists(dir: &Path) -> bool {
        Self::db(dir).exists()
    }

    fn create_store(dir: &Path, passphrase: &[u8], setup: &Setup) -> Result<Store> {
        crate::files::create_private_dir(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut store = Store::create_with(&Self::db(dir), passphrase, setup.kdf)?;
        if let Some(point) = &setup.crash {
            store.crash_at(point)?;
        }
        Ok(store)
    }

    /// Sets up a new account with this as its first device, and a recovery
    /// key listed as a paper device. Returns the recovery words, to show once.
    pub fn init(
        dir: &Path,
        passphrase: &[u8],
        name: &str,
        relay: &str,
        fingerprint: [u8; 32],
    ) -> Result<(Home, Zeroizing<String>)> {
        Self::init_with(dir, passphrase, name, relay, fingerprint, &Setup::default())
    }

    /// [`Home::init`], checked against the relay first: it must answer at
    /// `relay` with the pinned certificate before anything is written, and
    /// the account is registered there before this returns. A relay that
    /// cannot be reached, or that refuses the account, leaves no home
    /// behind. ([`Home::init`] alone sets up offline and registers at the
    /// first sync.)
    pub async fn init_online(
        dir: &Path,
        passphrase: &[u8],
        name: &str,
        relay: &str,
        fingerprint: [u8; 32],
        setup: &Setup,
    ) -> Result<(Home, Zeroizing<String>)> {
        if Self::exists(dir) {
            return Err(Error::Store(crate::store::StoreError::AlreadyInitialised));
        }
        crate::names::check(name)?;
        let made_dir = !dir.exists();
        setup.reach(relay, fingerprint).await?.close().await;
        let (mut home, words) = Self::init_with(dir, passphrase, name, relay, fingerprint, setup)?;
        match home.connect().await {
            Ok(conn) => {
                conn.close().await;
                Ok((home, words))
            }
            Err(e) => {
                home.discard();
                if made_dir {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// [`Home::init`] with a [`Setup`] of the caller's.
    pub fn init_with(
        dir: &Path,
        passphrase: &[u8],
        name: &str,
        relay: &str,
        fingerprint: [u8; 32],
        setup: &Setup,
    ) -> Result<(Home, Zeroizing<String>)> {
        let name = crate::names::check(name)?;
        let store = Self::create_store(dir, passphrase, setup)?;
        let signer = casebook_shared::crypto::DeviceSigner::generate();
        let dh = DhSecret::generate();
        let (genesis, account_key) = account::genesis(&signer, &dh, setup.clock.now());
        let mut state = AccountState::from_genesis(&genesis)?;
        let (words, paper) = recovery::generate();
        let add_paper = account::add_device(
            &state,
            &signer,
            &account_key,
            paper.info(),
            setup.clock.now(),
        )?;
        state.apply(&add_paper)?;
        let id = Identity::new(
            signer,
            dh,
            state.id,
            name.to_string(),
            relay.to_string(),
            fingerprint,
        );
        let home = Home {
            store,
            id,
            account_keys: vec![account_key],
            cache: DocCache::default(),
            dir: dir.to_path_buf(),
            setup: setup.clone(),
            synced: SyncMemory::default(),
        };
        home.store.transaction(|s| {
            s.append_log(
                &state.id.0,
                0,
                &[codec::encode(&genesis), codec::encode(&add_paper)],
            )?;
            s.put_secret("account_keys", &encode_keys(&home.account_keys))?;
            s.put_secret("identity", &codec::encode(&home.id.record))
        })?;
        home.trail().record("store created; account set up", None)?;
        Ok((home.with_actor(), words))
    }

    /// Makes a home for a device that joins an existing account (pairing or
    /// recovery). Its account log and keys arrive with the first sync.
    pub(crate) fn create_joined(
        dir: &Path,
        passphrase: &[u8],
        mut id: Identity,
        setup: &Setup,
    ) -> Result<Home> {
        let store = Self::create_store(dir, passphrase, setup)?;
        id.record.registered = true;
        store.put_secret("identity", &codec::encode(&id.record))?;
        Ok(Home {
            store,
            id,
            account_keys: Vec::new(),
            cache: DocCache::default(),
            dir: dir.to_path_buf(),
            setup: setup.clone(),
            synced: SyncMemory::default(),
        }
        .with_actor())
    }

    /// Opens a home; a wrong passphrase is a clear error. The unlock is
    /// recorded in the audit trail once per spell of use: when this device
    /// recorded nothing for [`UNLOCK_SPELL`] seconds. Every operation
    /// records itself, so a CLI command leaves one line, not two.
    pub fn open(dir: &Path, passphrase: &[u8]) -> Result<Home> {
        Self::open_with(dir, passphrase, &Setup::default())
    }

    /// [`Home::open`] with a [`Setup`] of the caller's.
    pub fn open_with(dir: &Path, passphrase: &[u8], setup: &Setup) -> Result<Home> {
        let mut home = Self::open_quietly(dir, passphrase)?;
        home.setup = setup.clone();
        if let Some(point) = &setup.crash {
            home.store.crash_at(point)?;
        }
        let last = match home.store.last_audit()? {
            Some(bytes) => Some(codec::decode::<AuditRecord>(&bytes)?.at),
            None => None,
        };
        if unlock_is_recorded(last, setup.clock.now()) {
            home.trail().record("store unlocked", None)?;
        }
        Ok(home)
    }

    fn open_quietly(dir: &Path, passphrase: &[u8]) -> Result<Home> {
        Self::with_store(Store::open(&Self::db(dir), passphrase)?, dir)
    }

    /// A second handle on this home, as the page's background sync is
    /// beside the page: opened with this handle's key rather than by
    /// deriving it from the passphrase again, which takes a deliberate
    /// while. Its unlock was recorded already.
    pub fn open_again(&self) -> Result<Home> {
        let mut home = Self::with_store(self.store.open_again(&Self::db(&self.dir))?, &self.dir)?;
        home.setup = self.setup.clone();
        if let Some(point) = &home.setup.crash {
            home.store.crash_at(point)?;
        }
        Ok(home)
    }

    fn with_store(store: Store, dir: &Path) -> Result<Home> {
        let record: IdentityRecord = codec::decode(
            &store
                .get_secret("identity")?
                .ok_or(Inconsistent::IdentityMissing)?,
        )?;
        let account_keys = store
            .get_secret("account_keys")?
            .map(|b| decode_keys(&b))
            .unwrap_or_default();
        Ok(Home {
            store,
            id: Identity::from_record(record),
            account_keys,
            cache: DocCache::default(),
            dir: dir.to_path_buf(),
            setup: Setup::default(),
            synced: SyncMemory::default(),
        }
        .with_actor())
    }

    fn with_actor(mut self) -> Home {
        let suffix: [u8; 8] = casebook_shared::crypto::random_bytes();
        self.cache = DocCache::new([&self.id.signer.device_id().0[..], &suffix[..]].concat());
        self
    }

    /// Removes a home that was being set up and failed (a join or recovery
    /// that did not finish), so the person can simply try again.
    pub(crate) fn discard(self) {
        let dir = self.dir.clone();
        drop(self);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{DB_FILE}{suffix}")));
        }
    }

    /// The home's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.id.signer.device_id()
    }

    /// The account's id.
    pub fn account_id(&self) -> AccountId {
        self.id.record.account
    }

    /// The practitioner's name as set at `init`.
    pub fn name(&self) -> &str {
        &self.id.record.name
    }

    /// Changes the passphrase that unlocks this device's home.
    pub fn change_passphrase(&mut self, new: &[u8]) -> Result<()> {
        self.atomically(|home| {
            home.store.change_passphrase(new)?;
            home.trail().record("passphrase changed", None)
        })
    }

    /// Sets the name this device writes and signs notes under (a device
    /// recovered without one could not sign).
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        let name = crate::names::check(name)?;
        if name.is_empty() {
            return Err(Error::NoName);
        }
        self.id.record.name = name.to_string();
        self.save_identity()?;
        self.trail()
            .record(&format!("practitioner name set to {name:?}"), None)
    }

    /// The relay address and pinned fingerprint.
    pub fn relay(&self) -> (&str, [u8; 32]) {
        (&self.id.record.relay, self.id.record.fingerprint)
    }

    pub(crate) fn save_identity(&self) -> Result<()> {
        Ok(self
            .store
            .put_secret("identity", &codec::encode(&self.id.record))?)
    }

    /// The account log as this device holds it.
    pub fn account_log(&self) -> Result<Vec<Signed>> {
        self.account_log_of(&self.account_id())
    }

    /// A stored account log (this account's or a colleague's).
    pub(crate) fn account_log_of(&self, account: &AccountId) -> Result<Vec<Signed>> {
        crate::docs::access_state::stored_log(&self.store, &account.0)
    }

    /// The verified state of the account log this device holds.
    pub fn account_state(&self) -> Result<AccountState> {
        Ok(AccountState::verify_log(&self.account_log()?)?)
    }

    /// Stores new entries of this account's log (already verified by the
    /// caller against the whole chain) and recomputes the reachable keys.
    ///
    /// The entries and the keys they make reachable are written in one
    /// transaction: a process stopped between the two would hold a log
    /// that says a new account key exists and no key to open it with, and
    /// would never look again (the log is no longer news).
    pub(crate) fn extend_account_log(&mut self, first_seq: u64, entries: &[Signed]) -> Result<()> {
        let encoded: Vec<Vec<u8>> = entries.iter().map(codec::encode).collect();
        let mut log = self.account_log()?;
        log.truncate(first_seq as usize);
        log.extend_from_slice(entries);
        let keys =
            match account::account_keys(&log, &self.account_id(), &self.device_id(), &self.id.dh) {
                Ok(keys) => Some(keys),
                // Revoked devices get no new generation; keep what we had.
                Err(e) if self.account_keys.is_empty() => return Err(e.into()),
                Err(_) => None,
            };
        let account = self.account_id();
        self.store.transaction(|s| {
            s.append_log(&account.0, first_seq, &encoded)?;
            if let Some(keys) = &keys {
                s.put_secret("account_keys", &encode_keys(keys))?;
            }
            Ok(())
        })?;
        if let Some(keys) = keys {
            self.account_keys = keys;
        }
        Ok(())
    }

    /// Stores the account keys `log` makes reachable if they are more than
    /// this device holds.
    pub(crate) fn heal_account_keys(&mut self, log: &[Signed]) -> Result<()> {
        if let Ok(keys) =
            account::account_keys(log, &self.account_id(), &self.device_id(), &self.id.dh)
            && keys.len() > self.account_keys.len()
        {
            self.store.put_secret("account_keys", &encode_keys(&keys))?;
            self.account_keys = keys;
        }
        Ok(())
    }

    /// Whether the account log held passes through `head` (a pinned state).
    pub(crate) fn account_log_reaches(&self, head: &casebook_shared::ids::Hash) -> Result<bool> {
        let log = self.account_log()?;
        let Some(first) = log.first() else {
            return Ok(false);
        };
        let mut state = AccountState::from_genesis(first)?;
        if state.head == *head {
            return Ok(true);
        }
        for e in &log[1..] {
            state.apply(e)?;
            if state.head == *head {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The current account key, if this device holds it.
    pub(crate) fn current_account_key(&self, state: &AccountState) -> Result<&DhSecret> {
        self.account_keys
            .get(state.key.generation as usize)
            .ok_or(Error::Revoked)
    }

    /// Sets [`Setup::sends_at_once`] for this session.
    pub fn set_sends_at_once(&mut self, on: bool) {
        self.setup.sends_at_once = on;
    }

    /// Runs an edit as [`Self::atomically`] does. With
    /// [`Setup::sends_at_once`], and only while the next sync will send it
    /// before catching up (`sync::push_early`: a full round ran moments
    /// ago, so the front end is online and syncing), its commit does not
    /// wait for the disk: that sync makes it durable while the upload
    /// travels. Otherwise, and inside a transaction already open, it waits
    /// as every other commit does. An edit left undurable (the sync never
    /// came, the connection failed) becomes durable with the next commit
    /// that waits, the next sync, or when the home is closed.
    pub(crate) fn edit_atomically<T>(
        &mut self,
        f: impl FnOnce(&mut Home) -> Result<T>,
    ) -> Result<T> {
        if !self.setup.sends_at_once || self.store.in_transaction() || !self.sends_early()? {
            return self.atomically(f);
        }
        self.store.wait_for_disk(false)?;
        let out = self.atomically(f);
        let restored = self.store.wait_for_disk(true);
        let out = out?;
        restored?;
        Ok(out)
    }

    /// Runs `f` as one local transaction: all of its writes land, or none
    /// (and one fsync instead of one per write).
    pub(crate) fn atomically<T>(&mut self, f: impl FnOnce(&mut Home) -> Result<T>) -> Result<T> {
        let started = self.store.begin()?;
        let out = f(self);
        let ended = self.store.end(started, out.is_ok());
        if out.is_err() || ended.is_err() {
            // The in-memory copies may hold what was rolled back.
            self.cache.clear();
        }
        ended?;
        out
    }

    /// Changes waiting for the relay.
    pub fn pending(&self) -> Result<u64> {
        Ok(self.store.outbox_len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlock_is_recorded_once_per_spell_of_use() {
        let t = 1_800_000_000;
        assert!(unlock_is_recorded(None, t), "nothing recorded yet");
        assert!(!unlock_is_recorded(Some(t - 60), t), "within the spell");
        assert!(!unlock_is_recorded(Some(t + 5), t), "a clock set back");
        assert!(unlock_is_recorded(Some(t - UNLOCK_SPELL), t), "after it");
    }
}
