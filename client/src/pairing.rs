//! Pairing a new device with a short code, through the relay's mailbox.
//!
//! The code `CCCCC-PPPP-PPPP` has two parts: the first five characters name
//! a mailbox on the relay, the other eight are a SPAKE2 password that never
//! leaves the two devices. The devices run SPAKE2 through the mailbox, then
//! exchange sealed messages under the shared key: the new device's public
//! keys one way, the account id and log head the other. The relay sees only
//! PAKE messages and ciphertext; someone who guesses at the code gets one
//! try, after which the existing device gives up and the code is dead.
//!
//! Mailbox slots: 0 the existing device's PAKE message, 1 the new device's,
//! 2 the new device's sealed keys, 3 the existing device's sealed welcome.

use std::path::Path;
use std::time::{Duration, Instant};

use casebook_shared::account::{self, DeviceInfo, DeviceKind};
use casebook_shared::codec;
use casebook_shared::crypto::{self, DeviceSigner, DhSecret, SecretKey};
use casebook_shared::frames::{Request, Response};
use casebook_shared::ids::{AccountId, DeviceId, Hash};
use serde::{Deserialize, Serialize};
use spake2::{Ed25519Group, Identity as PakeId, Password, Spake2};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::identity::Identity;
use crate::net::Relay;

/// Code characters: Crockford's base32 (no I, L, O or U; an O typed is read
/// as 0, an I or L as 1), so a code copied by hand survives. 5 bits each.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ID_EXISTING: &[u8] = b"casebook/v1/pair/existing";
const ID_NEW: &[u8] = b"casebook/v1/pair/new";
/// How long the existing device waits for the new one.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(600);

/// The new device's keys, sent under the PAKE key.
#[derive(Serialize, Deserialize)]
struct JoinRequest {
    device: DeviceInfo,
}

/// The account the new device joins, sent back under the PAKE key.
#[derive(Serialize, Deserialize)]
struct Welcome {
    account: AccountId,
    /// The head of the account log once the device is added: the new device
    /// accepts only a log that reaches it.
    head: Hash,
    name: String,
}

/// A parsed pairing code.
struct Code {
    mailbox: [u8; 16],
    password: String,
}

/// Why pairing a device failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    #[error("{0:?} is not a pairing code: it looks like ABCDE-FGHJ-KMNP")]
    NotACode(String),
    #[error("the other device did not answer in time")]
    NoAnswer,
    #[error("the code did not match (mistyped, or someone else tried it)")]
    WrongCode,
    #[error("no device is waiting with that code")]
    NoDeviceWaiting,
    #[error("the new device sent a malformed request")]
    Malformed,
    #[error("that device is already in the account")]
    AlreadyInAccount,
    #[error(
        "the relay's account log does not reach the head the other device sent (it has {entries} entries)"
    )]
    HeadNotReached { entries: u64 },
    #[error("the relay answered {0}")]
    Unexpected(String),
}

fn random_chars(n: usize) -> String {
    let bytes: [u8; 16] = crypto::random_bytes();
    bytes[..n]
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// A fresh pairing code.
pub fn new_code() -> String {
    let p = random_chars(8);
    format!("{}-{}-{}", random_chars(5), &p[..4], &p[4..])
}

fn parse_code(code: &str) -> Result<Code> {
    let clean: String = code
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if clean.len() != 13 || !clean.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(PairingError::NotACode(code.to_string()).into());
    }
    let h = crypto::hash("casebook/v1/pair/mailbox", &clean.as_bytes()[..5]);
    Ok(Code {
        mailbox: h.0[..16].try_into().expect("16 of 32 bytes"),
        password: clean[5..].to_string(),
    })
}

/// What the existing device leaves in the last slot when the new device's
/// request does not open (the code was mistyped), so the new device fails
/// at once instead of waiting out its time. Not secret and not
/// authenticated: a relay could forge it, but a relay can always withhold
/// the answer, which ends the pairing the same way.
const WRONG_CODE: &[u8] = b"casebook/v1/pair/wrong-code";

fn keys(shared: &[u8], mailbox: &[u8; 16]) -> (SecretKey, SecretKey) {
    (
        crypto::derive(shared, "casebook/v1/pair/join", mailbox),
        crypto::derive(shared, "casebook/v1/pair/welcome", mailbox),
    )
}

async fn put(relay: &Relay, mailbox: [u8; 16], slot: u8, msg: Vec<u8>) -> Result<()> {
    relay
        .request(&Request::MailboxPut { mailbox, slot, msg })
        .await?;
    Ok(())
}

async fn take(relay: &Relay, mailbox: [u8; 16], slot: u8, within: Duration) -> Result<Vec<u8>> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PairingError::NoAnswer.into());
        }
        let wait_ms = left.min(Duration::from_secs(60)).as_millis() as u32;
        match relay
            .request(&Request::MailboxTake {
                mailbox,
                slot,
                wait_ms,
            })
            .await?
        {
            Response::Mailbox { msg: Some(m) } => return Ok(m),
            Response::Mailbox { msg: None } => continue,
            other => {
                return Err(PairingError::Unexpected(format!("{other:?}")).into());
            }
        }
    }
}

impl Home {
    /// The existing device's side: opens the mailbox for `code` (from
    /// [`new_code`]), waits for the new device, adds it to the account log
    /// and sends it the welcome. Returns the new device's id.
    pub async fn pair_add(
        &mut self,
        relay: &Relay,
        code: &str,
        within: Duration,
    ) -> Result<DeviceId> {
        let c = parse_code(code)?;
        let (pake, msg_a) = Spake2::<Ed25519Group>::start_a(
            &Password::new(c.password.as_bytes()),
            &PakeId::new(ID_EXISTING),
            &PakeId::new(ID_NEW),
        );
        put(relay, c.mailbox, 0, msg_a).await?;
        let msg_b = take(relay, c.mailbox, 1, within).await?;
        let shared =
            zeroize::Zeroizing::new(pake.finish(&msg_b).map_err(|_| PairingError::WrongCode)?);
        let (k_join, k_welcome) = keys(&shared, &c.mailbox);
        let sealed = take(relay, c.mailbox, 2, within).await?;
        let Ok(plain) = crypto::open_random(&k_join, &c.mailbox, &sealed) else {
            // The verdict here is the wrong code, whether or not the mark
            // reaches the other device.
            let _ = put(relay, c.mailbox, 3, WRONG_CODE.to_vec()).await;
            return Err(PairingError::WrongCode.into());
        };
        let req: JoinRequest = codec::decode(&plain)?;
        if req.device.kind != DeviceKind::Device {
            return Err(PairingError::Malformed.into());
        }
        let mine = self.account_id();
        let state = self.refresh_log(relay, &mine).await?;
        if state.devices.contains_key(&req.device.id) {
            return Err(PairingError::AlreadyInAccount.into());
        }
        let key = self.current_account_key(&state)?;
        let entry =
            account::add_device(&state, &self.id.signer, key, req.device.clone(), self.now())?;
        relay
            .request(&Request::AppendAccount {
                entries: vec![entry.clone()],
            })
            .await?;
        self.extend_account_log(state.len, std::slice::from_ref(&entry))?;
        let head = self.account_state()?.head;
        let welcome = Welcome {
            account: mine,
            head,
            name: self.name().to_string(),
        };
        let sealed = crypto::seal_random(&k_welcome, &c.mailbox, &codec::encode(&welcome));
        put(relay, c.mailbox, 3, sealed).await?;
        self.trail()
            .record(&format!("device {} paired", req.device.id.short()), None)?;
        Ok(req.device.id)
    }
}

/// The new device's side: answers the code, receives the account, and makes
/// a home in `dir` that holds the account log up to the head the existing
/// device sent. Its cases arrive with the first sync.
pub async fn join(
    dir: &Path,
    passphrase: &[u8],
    code: &str,
    relay_addr: &str,
    fingerprint: [u8; 32],
) -> Result<Home> {
    join_with(
        dir,
        passphrase,
        code,
        relay_addr,
        fingerprint,
        &crate::home::Setup::default(),
    )
    .await
}

/// [`join`] with a [`Setup`](crate::home::Setup) of the caller's.
pub async fn join_with(
    dir: &Path,
    passphrase: &[u8],
    code: &str,
    relay_addr: &str,
    fingerprint: [u8; 32],
    setup: &crate::home::Setup,
) -> Result<Home> {
    if Home::exists(dir) {
        return Err(Error::Store(crate::store::StoreError::AlreadyInitialised));
    }
    let c = parse_code(code)?;
    let relay = setup.reach(relay_addr, fingerprint).await?;
    let msg_a = take(&relay, c.mailbox, 0, Duration::from_secs(30))
        .await
        .map_err(|_| PairingError::NoDeviceWaiting)?;
    let (pake, msg_b) = Spake2::<Ed25519Group>::start_b(
        &Password::new(c.password.as_bytes()),
        &PakeId::new(ID_EXISTING),
        &PakeId::new(ID_NEW),
    );
    put(&relay, c.mailbox, 1, msg_b).await?;
    let shared = zeroize::Zeroizing::new(pake.finish(&msg_a).map_err(|_| PairingError::WrongCode)?);
    let (k_join, k_welcome) = keys(&shared, &c.mailbox);
    let signer = DeviceSigner::generate();
    let dh = DhSecret::generate();
    let req = JoinRequest {
        device: DeviceInfo {
            id: signer.device_id(),
            dh: dh.public(),
            kind: DeviceKind::Device,
        },
    };
    put(
        &relay,
        c.mailbox,
        2,
        crypto::seal_random(&k_join, &c.mailbox, &codec::encode(&req)),
    )
    .await?;
    let sealed = take(&relay, c.mailbox, 3, Duration::from_secs(120)).await?;
    if sealed == WRONG_CODE {
        return Err(PairingError::WrongCode.into());
    }
    let plain = crypto::open_random(&k_welcome, &c.mailbox, &sealed)
        .map_err(|_| PairingError::WrongCode)?;
    let welcome: Welcome = codec::decode(&plain)?;
    relay.close().await;

    let id = Identity::new(
        signer,
        dh,
        welcome.account,
        welcome.name.clone(),
        relay_addr.to_string(),
        fingerprint,
    );
    let mut home = Home::create_joined(dir, passphrase, id, setup)?;
    match finish_join(&mut home, &welcome).await {
        Ok(()) => Ok(home),
        Err(e) => {
            home.discard();
            Err(e)
        }
    }
}

/// Fetches the account log and checks it reaches the head the existing
/// device sent through the PAKE channel.
async fn finish_join(home: &mut Home, welcome: &Welcome) -> Result<()> {
    let relay = home.connect().await?;
    let state = home.refresh_log(&relay, &welcome.account).await?;
    relay.close().await;
    if !home.account_log_reaches(&welcome.head)? {
        return Err(PairingError::HeadNotReached { entries: state.len }.into());
    }
    home.trail().record("device paired into the account", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_reject_garbage() {
        let code = new_code();
        assert_eq!(code.len(), 15);
        let a = parse_code(&code).unwrap();
        let b = parse_code(&code.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(a.mailbox, b.mailbox);
        assert_eq!(a.password, b.password);
        for bad in [
            "",
            "ABCDE",
            "ABCDE-FGHJ-KMNU",
            "ABCDE-FGHJ-KMNPQ",
            "ÄBCDE-FGHJ-KMNP",
        ] {
            assert!(parse_code(bad).is_err(), "{bad}");
        }
    }
}
