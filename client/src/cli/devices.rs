//! `device ...` and `recover`: pairing, listing, revoking, new recovery
//! words, and restoring an account onto a new device.

use crate::cli::term::tell;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use casebook::Home;

use super::print::Out;
use super::{device_name, home_dir, name_new_device, open, parse_fp, progress, secrets};
use crate::{Cli, DeviceCmd, RelayArgs};

pub(super) async fn device(cli: &Cli, out: &Out, cmd: &DeviceCmd) -> Result<()> {
    match cmd {
        DeviceCmd::Add { timeout } => {
            let mut home = open(cli)?;
            let relay = home.connect().await?;
            let code = casebook::pairing::new_code();
            out.pair_code(&code)?;
            tell!(
                "On the new device, run: casebook device join {code} --relay ... --relay-fingerprint ..."
            );
            tell!("Waiting for it (up to {timeout} s)...");
            let id = home
                .pair_add(&relay, &code, Duration::from_secs(*timeout))
                .await?;
            // The new device's first sync finds what this one wrote only
            // once it is on the relay: send it now, not at this device's
            // next sync (found by following the README's step 4, where
            // the tablet's first sync found nothing).
            let synced = home.sync(&relay, &mut |_| {}).await;
            relay.close().await;
            match synced {
                Ok(r) if r.pushed > 0 => {
                    tell!(
                        "Sent {} change(s) this device held, for the new device to fetch.",
                        r.pushed
                    )
                }
                Ok(_) => {}
                Err(e) => tell!(
                    "warning: paired, but what this device holds was not sent ({e}); run `casebook sync` here before syncing the new device"
                ),
            }
            out.changed("device.paired", id.to_hex())
                .done(&format!("Paired device {}.", id.short()))
        }
        DeviceCmd::Join { code, relay } => {
            let dir = home_dir(cli.home.as_deref())?;
            if Home::exists(&dir) {
                bail!(
                    "{} already holds a casebook home; choose another --home",
                    dir.display()
                );
            }
            let fp = parse_fp(&relay.relay_fingerprint)?;
            let device = device_name(relay)?;
            let pass = secrets::new_passphrase(cli.passphrase_file.as_deref())?;
            let mut home =
                casebook::pairing::join(&dir, pass.as_bytes(), code, &relay.relay, fp).await?;
            name_new_device(&mut home, device)?;
            tell!(
                "This device has joined {}'s account. Run `casebook sync` to fetch the cases.",
                home.name()
            );
            out.init(&home, "device.joined")
        }
        DeviceCmd::List => {
            let home = open(cli)?;
            out.devices(&home.devices()?)
        }
        DeviceCmd::Rename { device, name } => {
            let mut home = open(cli)?;
            let id = home.resolve_device(device)?;
            home.name_device(&id, name)?;
            out.changed("device.renamed", id.to_hex())
                .with("name", name.trim())
                .done("device renamed; other devices show it after their next sync")
        }
        DeviceCmd::NewRecoveryWords => {
            let mut home = open(cli)?;
            new_recovery_words(&mut home, out).await
        }
        DeviceCmd::Revoke {
            device,
            recovery_key,
        } => {
            let mut home = open(cli)?;
            let id = home.resolve_device(device)?;
            let is_paper = home
                .devices()?
                .iter()
                .any(|d| d.id == id && d.kind == "recovery");
            if is_paper && !recovery_key {
                bail!(
                    "{} is the recovery key: without it a lost device means a lost account. To revoke it, run `casebook device revoke {device} --recovery-key`, which issues new recovery words in the same step",
                    id.short()
                );
            }
            if is_paper {
                return new_recovery_words(&mut home, out).await;
            }
            if *recovery_key {
                bail!("{} is not the recovery key", id.short());
            }
            let relay = home.connect().await?;
            let rotated = home.revoke(&relay, &id).await?;
            let mut progress = progress::Reporter::new();
            let report = home.sync(&relay, &mut |p| progress.step(p)).await;
            progress.finish();
            relay.close().await;
            report.context("the device is revoked, but the new document keys are not sent yet; run `casebook sync`")?;
            out.changed("device.revoked", id.to_hex())
                .with("rotated_docs", rotated)
                .done(&format!(
                    "Revoked {}; {rotated} documents moved to new keys.",
                    id.short()
                ))
        }
    }
}

/// Replaces the recovery words and shows the new ones once.
async fn new_recovery_words(home: &mut Home, out: &Out) -> Result<()> {
    let relay = home.connect().await?;
    let (words, rotated) = home.replace_recovery_words(&relay).await.context(
        "no new recovery words were shown; the old ones may already be revoked: run `casebook device new-recovery-words` again",
    )?;
    let mut progress = progress::Reporter::new();
    let report = home.sync(&relay, &mut |p| progress.step(p)).await;
    progress.finish();
    relay.close().await;
    tell!(
        "The old recovery words no longer work. Your new recovery words (shown once; write them on paper and keep them safe):"
    );
    tell!();
    tell!("    {}", words.as_str());
    tell!();
    report.context(format!("the new words are in effect, but {rotated} documents' new keys are not sent yet; run `casebook sync`"))?;
    let paper = home
        .devices()?
        .into_iter()
        .find(|d| d.kind == "recovery" && !d.revoked)
        .map(|d| d.id.to_hex())
        .unwrap_or_default();
    out.changed("recovery_words.replaced", paper)
        .with("rotated_docs", rotated)
        .done("recovery words replaced")
}

pub(super) async fn recover(
    cli: &Cli,
    out: &Out,
    relay: &RelayArgs,
    words_file: Option<&Path>,
    name: Option<&str>,
) -> Result<()> {
    let dir = home_dir(cli.home.as_deref())?;
    if Home::exists(&dir) {
        bail!(
            "{} already holds a casebook home; recover into a new --home",
            dir.display()
        );
    }
    let fp = parse_fp(&relay.relay_fingerprint)?;
    let device = device_name(relay)?;
    let name = match name {
        Some(n) => n.to_string(),
        None => secrets::practitioner_name()?,
    };
    if name.trim().is_empty() {
        bail!("your name must not be empty: notes are written and signed under it");
    }
    let words = secrets::recovery_words(words_file)?;
    let pass = secrets::new_passphrase(cli.passphrase_file.as_deref())?;
    let mut home =
        casebook::devices::recover(&dir, pass.as_bytes(), &words, name.trim(), &relay.relay, fp)
            .await?;
    name_new_device(&mut home, device)?;
    tell!("Account restored onto this device; fetching its cases...");
    let conn = home.connect().await?;
    let mut progress = progress::Reporter::new();
    let report = home.sync(&conn, &mut |p| progress.step(p)).await;
    progress.finish();
    conn.close().await;
    out.recovered(&home, &report?)
}
