//! `casebook backup create | verify | restore`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use casebook::backup::{self, BackupError, BackupInfo, SecretKind};
use casebook::store::KdfParams;
use zeroize::Zeroizing;

use super::print::Out;
use super::term::tell;
use super::{home_dir, open, secrets};
use crate::{BackupCmd, BackupSecretArgs, Cli};

/// The secret of `kind`, read as `args` say, normalised by the core.
fn secret(kind: SecretKind, args: &BackupSecretArgs, choosing: bool) -> Result<Zeroizing<Vec<u8>>> {
    let typed = match kind {
        SecretKind::Passphrase => {
            secrets::backup_passphrase(args.backup_passphrase_file.as_deref(), choosing)
        }
        SecretKind::RecoveryWords => secrets::recovery_words(args.words_file.as_deref()),
    }?;
    Ok(backup::secret_bytes(kind, &typed)?)
}

/// [`secret`] as the core asks for it while opening a backup (once the
/// file says which kind it is sealed under). A secret this CLI could not
/// read is no failure of the backup: its error is kept in `unread`, and
/// the core only told that none came.
fn secret_to_open(
    kind: SecretKind,
    args: &BackupSecretArgs,
    unread: &mut Option<anyhow::Error>,
) -> casebook::Result<Zeroizing<Vec<u8>>> {
    secret(kind, args, false).map_err(|e| match e.downcast::<casebook::Error>() {
        Ok(core) => core,
        Err(e) => {
            *unread = Some(e);
            BackupError::NoSecret.into()
        }
    })
}

/// What opening a backup came to, with this CLI's own error first.
fn opened<T>(r: casebook::Result<T>, unread: Option<anyhow::Error>) -> Result<T> {
    match (r, unread) {
        (Err(_), Some(e)) => Err(e),
        (r, _) => Ok(r?),
    }
}

fn describe(info: &BackupInfo) -> String {
    format!(
        "{}'s device {}, {} case(s), made {}",
        info.name,
        info.device.short(),
        info.cases,
        casebook::clock::local(info.taken_at)
    )
}

pub(super) fn backup(cli: &Cli, out: &Out, cmd: &BackupCmd) -> Result<()> {
    match cmd {
        BackupCmd::Create {
            file,
            secret: args,
            with_recovery_words,
        } => {
            if file.exists() {
                bail!(
                    "{} already exists; a backup never writes over a file: choose a new name",
                    file.display()
                );
            }
            let home = open(cli)?;
            let kind = if *with_recovery_words {
                SecretKind::RecoveryWords
            } else {
                SecretKind::Passphrase
            };
            let secret = secret(kind, args, true)?;
            let info = write_new(file, |w| {
                Ok(home.backup(w, kind, &secret, KdfParams::default())?)
            })?;
            out.changed("backup.created", info.device.to_hex())
                .with("file", file.display().to_string())
                .with("cases", info.cases)
                .done(&format!(
                    "backup written to {}: {}. Keep it away from this device; `casebook backup verify` checks it.",
                    file.display(),
                    describe(&info)
                ))
        }
        BackupCmd::Verify { file, secret: args } => {
            let mut f = std::fs::File::open(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut unread = None;
            let info = backup::verify(&mut std::io::BufReader::new(&mut f), |k| {
                secret_to_open(k, args, &mut unread)
            });
            let info = opened(info, unread)?;
            out.changed("backup.verified", info.device.to_hex())
                .with("cases", info.cases)
                .done(&format!(
                    "the backup is whole and opens: {}",
                    describe(&info)
                ))
        }
        BackupCmd::Restore { file, secret: args } => {
            let dir = home_dir(cli.home.as_deref())?;
            let mut f = std::fs::File::open(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut unread = None;
            let info = backup::restore(&dir, &mut std::io::BufReader::new(&mut f), |k| {
                secret_to_open(k, args, &mut unread)
            });
            let info = opened(info, unread)?;
            tell!(
                "Restored into {}. It opens with this device's passphrase as it was when the backup was made. Run `casebook sync` next: it takes back what the device sent after the backup.",
                dir.display()
            );
            out.changed("backup.restored", info.device.to_hex())
                .with("home", dir.display().to_string())
                .with("cases", info.cases)
                .done(&format!("restored {}", describe(&info)))
        }
    }
}

/// Writes through `f` into a new private file at `path`, put in place only
/// once all of it is written and synced: a failed backup leaves nothing
/// behind that could pass for one.
fn write_new<T>(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> Result<T>,
) -> Result<T> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".casebook-backup-")
        .tempfile_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let out = {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        let out = f(&mut w)?;
        use std::io::Write;
        w.flush()?;
        out
    };
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot put the backup at {}", path.display()))?;
    Ok(out)
}
