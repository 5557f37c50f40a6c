//! The commands behind `casebook`'s subcommands.

#[cfg(feature = "demo")]
mod backup;
mod cases;
mod demo;
mod devices;
mod editor;
mod errors;
mod export;
mod notes;
mod print;
mod progress;
mod secrets;
pub(crate) mod term;

use casebook::clock as time;
use term::tell;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use casebook::Home;
use casebook_shared::ids::DocId;

use crate::{
    AuditCmd, Cli, Command, ContactCmd, HeldCmd, PassphraseCmd, PrivateCmd, RelayArgs, RelayCmd,
};
use print::Out;

pub use errors::{
    INCOMPLETE_EXIT, IncompleteFromRelay, REFUSED_EXIT, RefusedFromRelay, causes, error_code, hint,
    usage_error,
};

fn home_dir(cli_home: Option<&Path>) -> Result<PathBuf> {
    if let Some(h) = cli_home {
        return Ok(h.to_path_buf());
    }
    let base = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("no home folder: pass --home DIR or set CASEBOOK_HOME"))?;
    Ok(PathBuf::from(base).join(".casebook"))
}

fn parse_fp(s: &str) -> Result<[u8; 32]> {
    casebook_shared::fingerprint::parse(s).ok_or_else(|| {
        anyhow!("--relay-fingerprint {s:?} is not a fingerprint; copy the sha256:... line `casebook-relay serve` printed")
    })
}

/// `FIELD=VALUE` pairs.
fn parse_fields(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    anyhow!(
                        "--field {f:?}: write it as FIELD=VALUE, e.g. plan=\"Review in two weeks\""
                    )
                })
        })
        .collect()
}

/// `--field` and `--score` pairs together, a score as the field
/// `score:MEASURE` the core takes.
fn note_fields(fields: &crate::NoteFields) -> Result<Vec<(String, String)>> {
    let mut all = parse_fields(&fields.fields)?;
    for s in &fields.scores {
        let (m, v) = s
            .split_once('=')
            .filter(|(m, _)| !m.trim().is_empty())
            .ok_or_else(|| anyhow!("--score {s:?}: write it as MEASURE=SCORE, e.g. PHQ-9=12"))?;
        all.push((
            format!("{}{}", casebook::notes::SCORE_PREFIX, m.trim()),
            v.to_string(),
        ));
    }
    Ok(all)
}

/// The audit entries `--case`, `--since` and `--until` ask for.
fn selection(
    home: &Home,
    case: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
    disclosures_only: bool,
) -> Result<casebook::audit_view::Selection> {
    let day = |flag: &str, s: &Option<String>, parse: fn(&str) -> Option<u64>| {
        s.as_deref()
            .map(|s| parse(s).ok_or_else(|| anyhow!("--{flag} {s:?}: write YYYY-MM-DD")))
            .transpose()
    };
    Ok(casebook::audit_view::Selection {
        case: case.as_deref().map(|c| case_id(home, c)).transpose()?,
        since: day("since", since, time::parse_instant)?,
        until: day("until", until, time::parse_until)?,
        disclosures_only,
    })
}

fn open(cli: &Cli) -> Result<Home> {
    let dir = home_dir(cli.home.as_deref())?;
    if !Home::exists(&dir) {
        // The core's error, so --json names it and the hint says what to run.
        return Err(anyhow::Error::new(casebook::Error::Store(
            casebook::store::StoreError::NotInitialised,
        ))
        .context(format!("no casebook home at {}", dir.display())));
    }
    let pass = secrets::passphrase(cli.passphrase_file.as_deref())?;
    Ok(Home::open(&dir, pass.as_bytes())?)
}

/// The name a new device takes: `--device-name`, else the host name.
/// Checked before anything is set up.
fn device_name(relay: &RelayArgs) -> Result<Option<String>> {
    if let Some(n) = &relay.device_name {
        let n = casebook::names::check(n)?;
        if n.is_empty() {
            bail!("--device-name must not be empty");
        }
        return Ok(Some(n.to_string()));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    Ok(casebook::names::check(&host)
        .ok()
        .filter(|h| !h.is_empty())
        .map(str::to_string))
}

/// Names a device just set up, for the account's other devices to show.
fn name_new_device(home: &mut Home, name: Option<String>) -> Result<()> {
    if let Some(n) = name {
        let me = home.device_id();
        home.name_device(&me, &n)?;
    }
    Ok(())
}

fn case_id(home: &Home, case: &str) -> Result<DocId> {
    Ok(home.docs().resolve_case(case)?)
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let out = Out::new(cli.json);
    match &cli.command {
        Command::Init {
            name,
            relay,
            offline,
        } => init(&cli, &out, name, relay, *offline).await,
        Command::Ui(args) => crate::ui::serve(home_dir(cli.home.as_deref())?, args).await,
        Command::Case(c) => cases::case(&cli, &out, c).await,
        Command::Note(n) => notes::note(&cli, &out, n),
        Command::Private(p) => private(&cli, &out, p),
        Command::Search {
            text,
            private,
            limit,
            all,
        } => {
            let mut home = open(&cli)?;
            let limit = if *all { usize::MAX } else { *limit as usize };
            let (hits, total) = home.search_first(text, *private, limit)?;
            out.search(&hits)?;
            if hits.len() < total {
                tell!(
                    "{} of {total} hits shown, the best first: --limit N shows more, --all every one",
                    hits.len()
                );
            }
            Ok(())
        }
        Command::Device(d) => devices::device(&cli, &out, d).await,
        Command::Sync { watch } => sync(&cli, &out, *watch).await,
        Command::Recover {
            relay,
            words_file,
            name,
        } => devices::recover(&cli, &out, relay, words_file.as_deref(), name.as_deref()).await,
        Command::Audit {
            action: Some(AuditCmd::Verify),
            ..
        } => {
            let home = open(&cli)?;
            let n = home.trail().verify()?;
            out.changed("audit.verified", home.device_id().to_hex())
                .with("entries", n)
                .done(&format!(
                    "audit trail intact: {n} entries, each chained to the one before"
                ))
        }
        Command::Audit {
            action: None,
            case,
            since,
            until,
            limit,
        } => {
            let home = open(&cli)?;
            let pick = selection(&home, case, since, until, false)?;
            let mut trail = home.trail().select(&pick)?;
            trail.truncate(*limit);
            out.audit(&trail)
        }
        Command::Export(args) => export::export(&cli, &out, args),
        Command::Retention { all, set_default } => {
            let mut home = open(&cli)?;
            if let Some(y) = set_default {
                home.set_retention_default(*y)?;
            }
            let mut rows = home.retention()?;
            rows.retain(|r| *all || r.is_due);
            if let Some((at, n)) = home.backups_to_replace()? {
                tell!(
                    "{n} case(s) were disposed of since this device's last backup ({}): backups made before hold them still. Make a new backup and destroy the older ones.",
                    time::local(at)
                );
            }
            out.retention(home.retention_default()?, &rows)
        }
        Command::Backup(cmd) => backup::backup(&cli, &out, cmd),
        Command::Disclosures { since, until, case } => {
            let home = open(&cli)?;
            let pick = selection(&home, case, since, until, true)?;
            out.disclosures(&home.trail().select(&pick)?)
        }
        #[cfg(feature = "demo")]
        Command::Demo => demo::run(&out).await,
        Command::Whoami { set_name } => {
            let mut home = open(&cli)?;
            if let Some(name) = set_name {
                home.set_name(name)?;
            }
            let (name, account, safety, card) = home.whoami();
            out.whoami(&name, &account, &safety, &card)
        }
        Command::Passphrase(PassphraseCmd::Change {
            new_passphrase_file,
        }) => {
            let mut home = open(&cli)?;
            let new = secrets::changed_passphrase(new_passphrase_file.as_deref())?;
            home.change_passphrase(new.as_bytes())?;
            out.changed("passphrase.changed", home.device_id().to_hex())
                .done("passphrase changed; the old one no longer unlocks this device")
        }
        Command::Held(cmd) => {
            let mut home = open(&cli)?;
            let (case, file) = match cmd {
                HeldCmd::Save { case, file } => (case, Some(file.as_path())),
                HeldCmd::Discard { case } => (case, None),
            };
            let id = case_id(&home, case)?;
            let n = home.settle_held(&id, file)?;
            let action = if file.is_some() {
                "held.saved"
            } else {
                "held.discarded"
            };
            let changed = out.changed(action, id.to_hex()).with("edits", n);
            match file {
                Some(f) => changed.with("file", f.display().to_string()).done(&format!(
                    "{n} held edit(s) saved to {} and no longer held",
                    f.display()
                )),
                None => changed.done(&format!("{n} held edit(s) discarded")),
            }
        }
        Command::Status => {
            let mut home = open(&cli)?;
            let status = home.status()?;
            let reach = match tokio::time::timeout(Duration::from_secs(10), home.connect()).await {
                Ok(Ok(conn)) => {
                    conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 10 s".to_string()),
            };
            out.status(&status, &reach)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "casebook", &mut buf);
            term::raw_out(&buf);
            Ok(())
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut buf)?;
            term::raw_out(&buf);
            Ok(())
        }
        Command::Relay(RelayCmd::Show) => {
            let home = open(&cli)?;
            let (addr, fp) = home.relay();
            out.relay(addr, &fp)
        }
        Command::Relay(RelayCmd::Set { addr, fingerprint }) => {
            let fp = parse_fp(fingerprint)?;
            let mut home = open(&cli)?;
            home.set_relay(addr, fp).await?;
            let (addr, fp) = home.relay();
            out.relay(addr, &fp)
        }
        Command::Contact(c) => contact(&cli, &out, c),
        Command::Share {
            case,
            with,
            role,
            purpose,
            consent,
            expires,
            include_private,
        } => {
            let mut home = open(&cli)?;
            let id = case_id(&home, case)?;
            let role = casebook::sharing::parse_role(role)?;
            let expires = expires
                .as_deref()
                .map(|e| {
                    time::parse_until(e).ok_or_else(|| {
                        anyhow!(
                            "--expires {e:?}: write YYYY-MM-DD (the end of that day, your time) \
                             or an instant such as 2026-12-31T17:00:00Z"
                        )
                    })
                })
                .transpose()?;
            if *include_private {
                tell!("Sharing the case AND its psychotherapy (private) notes.");
            } else {
                tell!("Sharing the case without its psychotherapy (private) notes.");
            }
            let relay = home.connect().await?;
            let colleague = home
                .share(
                    &relay,
                    &id,
                    with,
                    role,
                    purpose,
                    consent,
                    expires,
                    *include_private,
                )
                .await?;
            let mut progress = progress::Reporter::new();
            let report = home.sync(&relay, &mut |p| progress.step(p)).await;
            progress.finish();
            relay.close().await;
            report.context("the share is recorded here but not sent yet; run `casebook sync`")?;
            out.changed(
                "share.granted",
                format!("{}:{}", id.to_hex(), colleague.to_hex()),
            )
            .with("case", id.to_hex())
            .with("account", colleague.to_hex())
            .done("shared")
        }
        Command::Unshare { case, with } => {
            let mut home = open(&cli)?;
            let id = case_id(&home, case)?;
            let colleague = home.unshare(&id, with)?;
            let relay = home.connect().await?;
            let mut progress = progress::Reporter::new();
            let report = home.sync(&relay, &mut |p| progress.step(p)).await;
            progress.finish();
            relay.close().await;
            report.context("the share is revoked here but not sent yet; run `casebook sync`")?;
            out.changed(
                "share.ended",
                format!("{}:{}", id.to_hex(), colleague.to_hex()),
            )
            .with("case", id.to_hex())
            .with("account", colleague.to_hex())
            .done("unshared; the case moved to a new key")
        }
        Command::Shared { case, all } => {
            use casebook::sharing::ShareState;
            let home = open(&cli)?;
            match case {
                Some(c) => {
                    let id = case_id(&home, c)?;
                    let mut rows = home.shares_ever(&id)?;
                    rows.retain(|r| *all || r.state == ShareState::Active);
                    out.shares(&id, &rows)
                }
                None => {
                    let mut rows = home.shared_with_me_ever()?;
                    rows.retain(|r| *all || r.state == ShareState::Active);
                    out.shared_with_me(&home.account_id(), &rows)
                }
            }
        }
    }
}

async fn init(cli: &Cli, out: &Out, name: &str, relay: &RelayArgs, offline: bool) -> Result<()> {
    let dir = home_dir(cli.home.as_deref())?;
    if Home::exists(&dir) {
        bail!(
            "{} already holds a casebook home; choose another --home",
            dir.display()
        );
    }
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let fp = parse_fp(&relay.relay_fingerprint)?;
    let device = device_name(relay)?;
    let pass = secrets::new_passphrase(cli.passphrase_file.as_deref())?;
    let (mut home, words) = if offline {
        Home::init(&dir, pass.as_bytes(), name.trim(), &relay.relay, fp)?
    } else {
        Home::init_online(
            &dir,
            pass.as_bytes(),
            name.trim(),
            &relay.relay,
            fp,
            &Default::default(),
        )
        .await
        .map_err(|e| match e {
            // Said plainly: the usual hint about kept edits does not apply.
            casebook::Error::Net(n) => anyhow!(
                "{n}\nnothing was set up; check --relay and --relay-fingerprint against what \
                 `casebook-relay serve` printed (or use --offline to set up without the relay)"
            ),
            e => e.into(),
        })?
    };
    name_new_device(&mut home, device)?;
    tell!("Set up {} for {}.", dir.display(), home.name());
    tell!();
    tell!("Your recovery words (shown once; write them on paper and keep them safe):");
    tell!();
    tell!("    {}", words.as_str());
    tell!();
    tell!("With them, `casebook recover` restores this account on a new device.");
    out.init(&home, "account.created")
}

fn contact(cli: &Cli, out: &Out, cmd: &ContactCmd) -> Result<()> {
    let home = open(cli)?;
    match cmd {
        ContactCmd::Add { name, card } => {
            let c = home.contacts().add(name, card)?;
            tell!(
                "Added {}. Compare safety numbers with them (in person or by phone), then run:\n  casebook contact verify \"{}\" NUMBER",
                c.name,
                c.name
            );
            out.contact_added(&c)
        }
        ContactCmd::List => out.contacts(&home.contacts().list()?),
        ContactCmd::Verify {
            name,
            safety_number,
        } => {
            let account = home.contacts().verify(name, safety_number)?;
            out.changed("contact.verified", account.to_hex())
                .done("verified")
        }
    }
}

fn private(cli: &Cli, out: &Out, cmd: &PrivateCmd) -> Result<()> {
    let mut home = open(cli)?;
    match cmd {
        PrivateCmd::Add { case, text } => {
            let id = case_id(&home, case)?;
            let entry = home.add_private_note(&id, text)?;
            out.changed("private.added", entry)
                .with("case", id.to_hex())
                .created()
        }
        PrivateCmd::List { case } => {
            let id = case_id(&home, case)?;
            out.private(&id, &home.private_notes(&id)?)
        }
    }
}

async fn sync(cli: &Cli, out: &Out, watch: bool) -> Result<()> {
    let mut home = open(cli)?;
    if !watch {
        let relay = home.connect().await?;
        let mut progress = progress::Reporter::new();
        let report = home.sync(&relay, &mut |p| progress.step(p)).await;
        progress.finish();
        relay.close().await;
        let report = report?;
        out.sync_report(&report)?;
        let refused = report.refused.len() + report.logs_refused.len();
        if refused > 0 {
            return Err(RefusedFromRelay(refused).into());
        }
        if !report.incomplete.is_empty() {
            return Err(IncompleteFromRelay(report.incomplete.len()).into());
        }
        return Ok(());
    }
    tell!("Watching for changes; Ctrl-C to stop.");
    let mut backoff = Duration::from_millis(500);
    loop {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let result = match home.connect().await {
            Ok(relay) => {
                backoff = Duration::from_millis(500);
                let r = home
                    .watch(&relay, stop, &mut |event| {
                        if let casebook::sync::WatchEvent::Synced(report) = event
                            && let Err(e) = out.watch_report(&report)
                        {
                            tell!("error: {e}");
                        }
                    })
                    .await;
                relay.close().await;
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        match result {
            casebook::Error::Revoked | casebook::Error::Rollback(_) | casebook::Error::Store(_) => {
                return Err(result.into());
            }
            e => tell!(
                "connection lost ({e}); retrying in {:.1} s",
                backoff.as_secs_f32()
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
