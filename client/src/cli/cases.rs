//! `casebook case ...`: opening, listing, closing, editing, retention,
//! legal holds and disposal of case files.

use anyhow::{Context, Result, bail};

use super::print::Out;
use super::term::tell;
use super::{case_id, open, parse_fields, progress, time};
use crate::{CaseCmd, Cli};

pub(super) async fn case(cli: &Cli, out: &Out, cmd: &CaseCmd) -> Result<()> {
    let mut home = open(cli)?;
    match cmd {
        CaseCmd::New { name } => {
            if name.trim().is_empty() {
                bail!("the case name must not be empty");
            }
            let same = home.docs().cases_named(name)?;
            let id = home.create_case(name.trim(), &time::today())?;
            if !same.is_empty() {
                let ids: Vec<String> = same.iter().map(|d| d.short()).collect();
                tell!(
                    "note: another case is named {:?} ({}); both are kept, told apart by their ids",
                    name.trim(),
                    ids.join(", ")
                );
            }
            out.changed("case.created", id.to_hex()).created()
        }
        CaseCmd::List { all } => out.cases(&home.list_cases(*all)?),
        CaseCmd::Close { case } => {
            let id = case_id(&home, case)?;
            home.close_case(&id, true)?;
            out.changed("case.closed", id.to_hex())
                .done("case closed: kept and synced, left out of `case list` (see --all)")
        }
        CaseCmd::Retention {
            case,
            years,
            account_default: _,
        } => {
            let id = case_id(&home, case)?;
            home.set_case_retention(&id, *years)?;
            out.changed("case.retention_set", id.to_hex())
                .with("years", *years)
                .done(&match years {
                    Some(y) => format!("kept {y} years after its last session"),
                    None => "kept for the account's period".to_string(),
                })
        }
        CaseCmd::Dispose { case, now, yes } => {
            let id = case_id(&home, case)?;
            let name = home
                .list_cases(true)?
                .into_iter()
                .find(|c| c.id == id)
                .map(|c| c.summary.name)
                .unwrap_or_default();
            if !*yes {
                confirm_disposal(&name)?;
            }
            // The relay first: a disposal signed but not sent would wait.
            let relay = home.connect().await?;
            home.dispose_case(&id, *now)?;
            let mut progress = progress::Reporter::new();
            // Sent, then carried out here as on every device.
            let first = home.sync(&relay, &mut |p| progress.step(p)).await;
            let second = home.sync(&relay, &mut |p| progress.step(p)).await;
            progress.finish();
            relay.close().await;
            first.and(second).context(
                "the disposal is signed here but not carried out yet; run `casebook sync`",
            )?;
            out.changed("case.disposed", id.to_hex()).done(
                "disposed of: deleted here and on the relay; the account's other devices and colleagues delete it at their next sync. Older backups of this device still hold it: make a new backup and destroy the older ones.",
            )
        }
        CaseCmd::Hold { case, reason } => {
            let id = case_id(&home, case)?;
            home.set_legal_hold(&id, Some(reason))?;
            out.changed("case.held", id.to_hex())
                .done("under a legal hold: it is not disposed of until released")
        }
        CaseCmd::Release { case } => {
            let id = case_id(&home, case)?;
            home.set_legal_hold(&id, None)?;
            out.changed("case.released", id.to_hex())
                .done("legal hold lifted; its retention period applies again")
        }
        CaseCmd::Reopen { case } => {
            let id = case_id(&home, case)?;
            home.close_case(&id, false)?;
            out.changed("case.reopened", id.to_hex())
                .done("case reopened")
        }
        CaseCmd::Show { case } => {
            let id = case_id(&home, case)?;
            out.case(&home.open_case(&id)?)
        }
        CaseCmd::Scores { case } => {
            let id = case_id(&home, case)?;
            out.scores(&id, &home.open_case(&id)?.scores())
        }
        CaseCmd::Edit { case, fields, name } => {
            let id = case_id(&home, case)?;
            let fields = parse_fields(fields)?;
            if fields.is_empty() && name.is_none() {
                bail!("nothing to change: give --field FIELD=VALUE or --name");
            }
            home.edit_profile(&id, name.as_deref(), &fields, None)?;
            out.changed("case.edited", id.to_hex()).done("case updated")
        }
    }
}

/// Asks the person to type the client's name before a disposal: it cannot
/// be undone, so a slip of the case id must not do it.
fn confirm_disposal(name: &str) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!("a disposal cannot be undone: type the client's name at the prompt, or give --yes");
    }
    eprint!(
        "This destroys {name:?} on every device and the relay, for good. Type the client's name to go on: "
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != name.trim() {
        bail!("the name typed is not {name:?}; nothing was disposed of");
    }
    Ok(())
}
