//! A device's backup: the whole home in one file, sealed under a key
//! derived (Argon2id) from a backup passphrase or from the account's
//! recovery words, that restores into a new folder as the same device.
//!
//! Inside the seal is a consistent copy of the store, whose values stay
//! sealed under the device's own master key as on its disk: restoring
//! needs the backup's secret, and opening the restored home the device's
//! passphrase as it was when the backup was made.
//!
//! A restored device may be older than what it had sent. Until its first
//! complete sync it takes its own changes back from the relay like anyone
//! else's (a device otherwise skips its own echoes), and the audit entries
//! it had written since the backup are put back in its chain ahead of what
//! it wrote since the restore, so no number it uses collides with one the
//! relay already holds from it ([`Home::restored_audit`]).

mod restored;
mod sealed;

use std::io::{Read, Write};
use std::path::Path;

use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use sealed::SecretKind;

use crate::store::KdfParams;
use crate::{Error, Home, Result};

/// The store setting that marks a restored home until its first complete
/// sync; its value is the audit position the backup ended at.
pub(crate) const RESTORED: &str = "restored";

/// A backup failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("this file is not a casebook backup")]
    NotABackup,
    #[error("this backup was made by a newer casebook (format {0}); update casebook to restore it")]
    Version(u8),
    #[error("wrong backup passphrase or recovery words for this backup")]
    WrongSecret,
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("{0} already holds a casebook home; restore into a new folder")]
    HomeExists(String),
    #[error("these are not this account's current recovery words")]
    NotTheseWords,
    /// The caller could not supply the backup's secret (a prompt closed,
    /// a file unreadable); its own error says why.
    #[error("no secret was given to open the backup")]
    NoSecret,
    /// Too short to resist guessing once the file is out of hand.
    #[error("not allowed: a backup passphrase must be at least 8 characters")]
    PassphraseTooShort,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a backup holds, readable once it is opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub account: AccountId,
    pub device: DeviceId,
    /// The practitioner's name on that device.
    pub name: String,
    /// When it was made (Unix seconds).
    pub taken_at: u64,
    pub cases: u32,
    /// Bytes of the store copy inside.
    pub store_bytes: u64,
}

/// The secret a backup is sealed under, normalised: recovery words are
/// checked and spelled one way, so case and spacing do not matter.
pub fn secret_bytes(kind: SecretKind, typed: &str) -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(match kind {
        SecretKind::Passphrase => {
            if typed.chars().count() < 8 {
                return Err(BackupError::PassphraseTooShort.into());
            }
            typed.as_bytes().to_vec()
        }
        SecretKind::RecoveryWords => {
            crate::recovery::from_words(typed)?;
            typed
                .split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(" ")
                .into_bytes()
        }
    }))
}

impl Home {
    /// Writes a backup of this home to `out`, sealed under `secret` (see
    /// [`secret_bytes`]), and records it in the audit trail (the entry is
    /// in the backup too). Recovery words must be the account's current
    /// ones: words revoked since would seal a backup no one can open.
    pub fn backup(
        &self,
        out: &mut impl Write,
        kind: SecretKind,
        secret: &[u8],
        kdf: KdfParams,
    ) -> Result<BackupInfo> {
        if kind == SecretKind::RecoveryWords {
            let words = std::str::from_utf8(secret).map_err(|_| BackupError::NotTheseWords)?;
            let paper = crate::recovery::from_words(words)?.info().id;
            let current = self
                .devices()?
                .iter()
                .any(|d| d.id == paper && d.kind == "recovery" && !d.revoked);
            if !current {
                return Err(BackupError::NotTheseWords.into());
            }
        }
        let cases = u32::try_from(self.docs().cases()?.len()).unwrap_or(u32::MAX);
        let tmp = tempfile::Builder::new()
            .prefix(".backup-")
            .tempfile_in(self.dir())
            .map_err(BackupError::Io)?;
        let copy = tmp.path().with_extension("db");
        // VACUUM INTO wants a path that does not exist yet.
        let _cleanup = RemoveOnDrop(&copy);
        self.store.snapshot_into(&copy)?;
        let store_bytes = std::fs::metadata(&copy).map_err(BackupError::Io)?.len();
        let info = BackupInfo {
            account: self.account_id(),
            device: self.device_id(),
            name: self.name().to_string(),
            taken_at: self.now(),
            cases,
            store_bytes,
        };
        let head = codec::encode(&info);
        let mut inner = (u32::try_from(head.len()).expect("a small record"))
            .to_be_bytes()
            .to_vec();
        inner.extend_from_slice(&head);
        let file = std::fs::File::open(&copy).map_err(BackupError::Io)?;
        let header = sealed::Header::new(kind, kdf);
        let key = header.key(secret)?;
        sealed::seal(
            &header,
            &key,
            &mut std::io::Cursor::new(inner).chain(std::io::BufReader::new(file)),
            out,
        )?;
        out.flush().map_err(BackupError::Io)?;
        // Recorded once it is made (so not in the backup itself).
        self.trail().record(
            &format!(
                "backup made ({} case(s), sealed under {})",
                cases,
                match kind {
                    SecretKind::Passphrase => "a backup passphrase",
                    SecretKind::RecoveryWords => "the recovery words",
                }
            ),
            None,
        )?;
        Ok(info)
    }
}

/// Removes a file when dropped (a copy of the store made for a backup).
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Splits the opened contents: the [`BackupInfo`] in front, the store
/// after it, into `store`.
struct Split<W: Write> {
    front: Vec<u8>,
    info: Option<BackupInfo>,
    store: W,
}

impl<W: Write> Write for Split<W> {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len();
        if self.info.is_none() {
            let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
            while self.front.len() < 4 && !buf.is_empty() {
                self.front.push(buf[0]);
                buf = &buf[1..];
            }
            if self.front.len() < 4 {
                return Ok(n);
            }
            let len = u32::from_be_bytes(self.front[..4].try_into().expect("4 bytes")) as usize;
            if len > 64 * 1024 {
                return Err(bad("its description is too long"));
            }
            let take = (4 + len - self.front.len()).min(buf.len());
            self.front.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.front.len() < 4 + len {
                return Ok(n);
            }
            self.info = Some(
                codec::decode(&self.front[4..])
                    .map_err(|_| bad("its description does not decode"))?,
            );
        }
        self.store.write_all(buf)?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.store.flush()
    }
}

/// Opens a backup into `store`: the secret asked for once its kind is
/// known. Returns what it holds.
fn open_into(
    input: &mut impl Read,
    store: impl Write,
    secret: impl FnOnce(SecretKind) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<BackupInfo> {
    let header = sealed::read_header(input)?;
    let key = header.key(&secret(header.kind)?)?;
    let mut split = Split {
        front: Vec::new(),
        info: None,
        store,
    };
    sealed::open(&header, &key, input, &mut split).map_err(|e| match e {
        BackupError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            BackupError::Damaged(io.to_string())
        }
        e => e,
    })?;
    split.flush().map_err(BackupError::Io)?;
    let info = split
        .info
        .ok_or_else(|| BackupError::Damaged("it holds nothing".into()))?;
    Ok(info)
}

/// Checks a store copy: SQLite's integrity check, and a home's rows there.
fn check_store(path: &Path, info: &BackupInfo) -> Result<()> {
    let damaged = |m: String| Error::from(BackupError::Damaged(m));
    let len = std::fs::metadata(path).map_err(BackupError::Io)?.len();
    if len != info.store_bytes {
        return Err(damaged(format!(
            "the store copy is {len} bytes, not the {} it was",
            info.store_bytes
        )));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| damaged(e.to_string()))?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| damaged(e.to_string()))?;
    if ok != "ok" {
        return Err(damaged(format!(
            "the store copy fails its integrity check: {ok}"
        )));
    }
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM meta WHERE name IN ('salt', 'master')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| damaged(e.to_string()))?;
    if rows != 2 {
        return Err(damaged("the store copy holds no home".into()));
    }
    Ok(())
}

/// Opens and checks a whole backup without restoring it: every chunk
/// authenticated, and the store inside sound.
pub fn verify(
    input: &mut impl Read,
    secret: impl FnOnce(SecretKind) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<BackupInfo> {
    let tmp = tempfile::NamedTempFile::new().map_err(BackupError::Io)?;
    let info = open_into(input, std::io::BufWriter::new(tmp.as_file()), secret)?;
    check_store(tmp.path(), &info)?;
    Ok(info)
}

/// Restores a backup into `dir`, which must not hold a home. Nothing is
/// put in place until the whole backup has opened and checked; the home
/// then opens with the device's passphrase as it was at the backup.
pub fn restore(
    dir: &Path,
    input: &mut impl Read,
    secret: impl FnOnce(SecretKind) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<BackupInfo> {
    if Home::exists(dir) {
        return Err(BackupError::HomeExists(dir.display().to_string()).into());
    }
    crate::files::create_private_dir(dir).map_err(BackupError::Io)?;
    let tmp = tempfile::Builder::new()
        .prefix(".restoring-")
        .tempfile_in(dir)
        .map_err(BackupError::Io)?;
    let info = open_into(input, std::io::BufWriter::new(tmp.as_file()), secret)?;
    tmp.as_file().sync_all().map_err(BackupError::Io)?;
    check_store(tmp.path(), &info)?;
    // Marked restored, with where its audit chain ended, until its first
    // complete sync.
    let mark = || -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open(tmp.path())?;
        let at: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))?;
        conn.execute(
            "INSERT INTO meta(name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            rusqlite::params![RESTORED, &at.to_be_bytes()[..]],
        )?;
        Ok(())
    };
    mark().map_err(|e| BackupError::Damaged(e.to_string()))?;
    tmp.persist(Home::db(dir))
        .map_err(|e| BackupError::Io(e.error))?;
    Ok(info)
}
