//! Reading the passphrase and the recovery words: from a file, the
//! environment, or a prompt that does not echo. They are never printed.

use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// The environment variable a script can set instead of answering a prompt.
pub const PASSPHRASE_ENV: &str = "CASEBOOK_PASSPHRASE";

fn from_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the passphrase file {}", path.display()))?,
    );
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    if line.is_empty() {
        bail!("the passphrase file {} is empty", path.display());
    }
    Ok(line)
}

/// The passphrase for an existing home.
pub fn passphrase(file: Option<&Path>) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(p));
    }
    let p =
        Zeroizing::new(rpassword::prompt_password("casebook passphrase: ").context(
            "cannot read a passphrase: set CASEBOOK_PASSPHRASE or use --passphrase-file",
        )?);
    Ok(p)
}

/// A passphrase for a new home: prompted twice, at least 8 characters.
pub fn new_passphrase(file: Option<&Path>) -> Result<Zeroizing<String>> {
    let p = if file.is_some() || std::env::var(PASSPHRASE_ENV).is_ok() {
        passphrase(file)?
    } else {
        let a = Zeroizing::new(
            rpassword::prompt_password("choose a passphrase for this device: ").context(
                "cannot read a passphrase: set CASEBOOK_PASSPHRASE or use --passphrase-file",
            )?,
        );
        let b = Zeroizing::new(rpassword::prompt_password("type it again: ")?);
        if a != b {
            bail!("the two passphrases differ; nothing was set up");
        }
        a
    };
    casebook::store::check_new_passphrase(&p)?;
    Ok(p)
}

/// The new passphrase for `passphrase change`: from a file,
/// `CASEBOOK_NEW_PASSPHRASE`, or prompted twice; at least 8 characters.
pub fn changed_passphrase(file: Option<&Path>) -> Result<Zeroizing<String>> {
    let p = if let Some(f) = file {
        from_file(f)?
    } else if let Ok(p) = std::env::var("CASEBOOK_NEW_PASSPHRASE") {
        Zeroizing::new(p)
    } else {
        let a = Zeroizing::new(rpassword::prompt_password("new passphrase: ").context(
            "cannot read a passphrase: set CASEBOOK_NEW_PASSPHRASE or use --new-passphrase-file",
        )?);
        let b = Zeroizing::new(rpassword::prompt_password("type it again: ")?);
        if a != b {
            bail!("the two passphrases differ; the old one still unlocks this device");
        }
        a
    };
    casebook::store::check_new_passphrase(&p)
        .map_err(|e| anyhow::anyhow!("{e}; the old one still unlocks this device"))?;
    Ok(p)
}

/// The recovery words: from a file, `CASEBOOK_RECOVERY_WORDS`, or a prompt.
pub fn recovery_words(file: Option<&Path>) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        return Ok(Zeroizing::new(std::fs::read_to_string(f).with_context(
            || format!("cannot read the words file {}", f.display()),
        )?));
    }
    if let Ok(w) = std::env::var("CASEBOOK_RECOVERY_WORDS") {
        return Ok(Zeroizing::new(w));
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password("recovery words (12, separated by spaces): ")
            .context("cannot read the words: set CASEBOOK_RECOVERY_WORDS or use --words-file")?,
    ))
}

/// A backup's passphrase: from a file, `CASEBOOK_BACKUP_PASSPHRASE`, or a
/// prompt (twice when choosing one).
pub fn backup_passphrase(file: Option<&Path>, choosing: bool) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("CASEBOOK_BACKUP_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    let ask = "cannot read a backup passphrase: set CASEBOOK_BACKUP_PASSPHRASE or use --backup-passphrase-file";
    let a = Zeroizing::new(rpassword::prompt_password("backup passphrase: ").context(ask)?);
    if choosing {
        let b = Zeroizing::new(rpassword::prompt_password("type it again: ").context(ask)?);
        if a != b {
            bail!("the two passphrases differ; no backup was made");
        }
    }
    Ok(a)
}

/// The practitioner's name, asked for at a prompt (a recovered device has
/// no name of its own; notes are written and signed under it).
pub fn practitioner_name() -> Result<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("give your name with --name: notes are written and signed under it");
    }
    eprint!("your name, as it appears on notes you write: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read your name; give it with --name")?;
    Ok(line.trim().to_string())
}
