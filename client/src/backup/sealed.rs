//! The sealed form of a backup: a header in the clear (what it is, how its
//! key is derived), then the contents in 64 KiB chunks sealed with STREAM
//! (`aead-stream`) over XChaCha20-Poly1305.
//!
//! Each chunk's nonce carries its position and whether it is the last, and
//! each chunk authenticates the header as associated data: a chunk changed,
//! moved, dropped or added, a stream cut short at a chunk boundary, or a
//! header edited (a cheaper key derivation, say) does not open.

use std::io::{Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32};
use casebook_shared::crypto::{self, SecretKey};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{KeyInit, Payload};

use crate::store::KdfParams;

use super::BackupError;

const MAGIC: &[u8; 16] = b"casebook-backup\n";
const VERSION: u8 = 1;
/// Plaintext per chunk.
pub(super) const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// XChaCha20-Poly1305's 24-byte nonce less STREAM's 5 bytes of counter
/// and last-chunk flag.
const NONCE: usize = 19;
const HEADER: usize = 16 + 1 + 1 + 12 + 16 + NONCE;

/// What the backup's key is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A passphrase chosen for backups.
    Passphrase = 1,
    /// The account's recovery words.
    RecoveryWords = 2,
}

/// The header: in the clear, and bound into every chunk.
pub(super) struct Header {
    pub kind: SecretKind,
    pub kdf: KdfParams,
    salt: [u8; 16],
    nonce: [u8; NONCE],
}

impl Header {
    pub fn new(kind: SecretKind, kdf: KdfParams) -> Header {
        Header {
            kind,
            kdf,
            salt: crypto::random_bytes(),
            nonce: crypto::random_bytes(),
        }
    }

    fn encode(&self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[..16].copy_from_slice(MAGIC);
        out[16] = VERSION;
        out[17] = self.kind as u8;
        out[18..30].copy_from_slice(&self.kdf.encode());
        out[30..46].copy_from_slice(&self.salt);
        out[46..].copy_from_slice(&self.nonce);
        out
    }

    fn decode(b: &[u8; HEADER]) -> Result<Header, BackupError> {
        if &b[..16] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        if b[16] != VERSION {
            return Err(BackupError::Version(b[16]));
        }
        let kind = match b[17] {
            1 => SecretKind::Passphrase,
            2 => SecretKind::RecoveryWords,
            _ => return Err(BackupError::Damaged("the header names no known key".into())),
        };
        // Read before anything is authenticated: a cost above four times
        // ours (memory) or twice (passes) is refused, not attempted.
        let ours = KdfParams::default();
        let kdf = KdfParams::decode(&b[18..30])
            .filter(|k| k.m_kib <= 4 * ours.m_kib && k.t <= 2 * ours.t && k.p <= 4)
            .ok_or_else(|| BackupError::Damaged("the header's key-derivation cost".into()))?;
        Ok(Header {
            kind,
            kdf,
            salt: b[30..46].try_into().expect("16 bytes"),
            nonce: b[46..].try_into().expect("19 bytes"),
        })
    }

    /// The key, from the secret (Argon2id at the header's cost).
    pub fn key(&self, secret: &[u8]) -> Result<SecretKey, BackupError> {
        crate::store::kek(secret, &self.salt, self.kdf)
            .map_err(|e| BackupError::Damaged(format!("key derivation: {e}")))
    }
}

/// 16 bytes derived from the key, written after the header: a wrong
/// passphrase is told apart from a damaged backup before any chunk is
/// tried. (They say nothing about the key a guess could not learn by
/// trying to open the first chunk.)
fn key_check(key: &SecretKey) -> [u8; 16] {
    crypto::hash("casebook/v1/backup/key-check", key.expose()).0[..16]
        .try_into()
        .expect("16 of 32 bytes")
}

/// Seals everything `input` yields into `out`, under `key`.
pub(super) fn seal(
    header: &Header,
    key: &SecretKey,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<(), BackupError> {
    let head = header.encode();
    out.write_all(&head)?;
    out.write_all(&key_check(key))?;
    let aead = XChaCha20Poly1305::new(key.expose().into());
    let mut stream = EncryptorBE32::from_aead(aead, (&header.nonce).into());
    let mut buf = vec![0u8; CHUNK];
    // One chunk is held back until the next is read, so the last is known.
    let mut held = read_full(input, &mut buf)?;
    let mut pending = buf[..held].to_vec();
    loop {
        held = read_full(input, &mut buf)?;
        if held == 0 {
            let sealed = stream
                .encrypt_last(Payload {
                    msg: &pending,
                    aad: &head,
                })
                .map_err(|_| BackupError::Damaged("sealing failed".into()))?;
            out.write_all(&sealed)?;
            return Ok(());
        }
        let sealed = stream
            .encrypt_next(Payload {
                msg: &pending,
                aad: &head,
            })
            .map_err(|_| BackupError::Damaged("sealing failed".into()))?;
        out.write_all(&sealed)?;
        pending.clear();
        pending.extend_from_slice(&buf[..held]);
    }
}

/// Reads the header of a sealed backup.
pub(super) fn read_header(input: &mut impl Read) -> Result<Header, BackupError> {
    let mut head = [0u8; HEADER];
    let n = read_full(input, &mut head)?;
    if n < HEADER {
        return Err(BackupError::NotABackup);
    }
    Header::decode(&head)
}

/// Opens the chunks after the header, writing each one's plaintext to
/// `out` only once it has been authenticated. A wrong key fails before any
/// chunk; damage anywhere fails where it is.
pub(super) fn open(
    header: &Header,
    key: &SecretKey,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64, BackupError> {
    let head = header.encode();
    let mut check = [0u8; 16];
    if read_full(input, &mut check)? < 16 {
        return Err(BackupError::Damaged("it ends inside its header".into()));
    }
    if check != key_check(key) {
        return Err(BackupError::WrongSecret);
    }
    let aead = XChaCha20Poly1305::new(key.expose().into());
    let mut stream = DecryptorBE32::from_aead(aead, (&header.nonce).into());
    let mut buf = vec![0u8; CHUNK + TAG];
    let mut next = vec![0u8; CHUNK + TAG];
    let mut have = read_full(input, &mut buf)?;
    let mut written = 0u64;
    loop {
        if have < TAG {
            return Err(BackupError::Damaged("it ends inside a chunk".into()));
        }
        let more = if have == CHUNK + TAG {
            read_full(input, &mut next)?
        } else {
            0
        };
        let damaged = |_| {
            BackupError::Damaged(format!(
                "the chunk at {written} bytes in does not open: changed, moved, dropped or cut short"
            ))
        };
        let payload = Payload {
            msg: &buf[..have],
            aad: &head,
        };
        if more == 0 {
            let plain = stream.decrypt_last(payload).map_err(damaged)?;
            out.write_all(&plain)?;
            return Ok(written + plain.len() as u64);
        }
        let plain = stream.decrypt_next(payload).map_err(damaged)?;
        out.write_all(&plain)?;
        written += plain.len() as u64;
        std::mem::swap(&mut buf, &mut next);
        have = more;
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
