//! Retention: how long each case is kept after its last session (the
//! account's period, or the case's own), which cases are due for disposal,
//! and legal holds that keep a case whatever its period says.
//!
//! The account's period is a setting of the account, not of one device:
//! like a device's name it travels in the audit trail the account's
//! devices share, and the newest setting wins.

use casebook_shared::ids::DocId;
use jiff::ToSpan;
use jiff::civil::Date;

use crate::error::Inconsistent;
use crate::{Error, Home, Result};

/// The period when none was set: seven years after the last session, a
/// common floor for adult records.
pub const DEFAULT_YEARS: u32 = 7;

const SET: &str = "retention period set to ";

/// A case, as retention sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RetentionRow {
    pub case: DocId,
    pub name: String,
    /// The last session's date (or the case's opening, without notes).
    pub last_session: String,
    /// The case has no session notes: `last_session` is its opening.
    pub no_sessions: bool,
    pub years: u32,
    /// The case has a period of its own.
    pub own_period: bool,
    /// The first day it may be disposed of.
    pub due: String,
    pub is_due: bool,
    pub legal_hold: Option<String>,
}

/// Why a retention period, legal hold or disposal was refused: how long a
/// record is kept, and when it goes, is its owner's decision within the
/// rules a record keeper is held to.
#[derive(Debug, thiserror::Error)]
pub enum RecordLifeError {
    #[error("not allowed: a retention period is between 1 and 100 years")]
    RetentionOutOfRange,
    #[error("not allowed: only the case's owner decides how long it is kept")]
    NotOwnerRetention,
    /// A hold is recorded with why, so whoever lifts it knows what it waits for.
    #[error("not allowed: a legal hold needs its reason")]
    HoldNeedsReason,
    #[error("not allowed: only the case's owner can dispose of it")]
    NotOwnerDispose,
    #[error("not allowed: the case is under a legal hold ({reason}); release it first")]
    LegalHold { reason: String },
    /// Its retention has not run out: `due` is the first day it may go,
    /// `years` the period after the last session.
    #[error(
        "not allowed: the case is kept until {due} ({years} years after its last session); dispose of it earlier only deliberately"
    )]
    NotDue { due: String, years: u32 },
    /// Every device deletes what the disposal names, so the device signing
    /// it must hold each document of the case.
    #[error(
        "not allowed: document {} of the case is not on this device yet; sync, then dispose of it",
        .0.short()
    )]
    DocumentMissing(DocId),
}

fn check_years(years: u32) -> Result<()> {
    if !(1..=100).contains(&years) {
        return Err(RecordLifeError::RetentionOutOfRange.into());
    }
    Ok(())
}

impl Home {
    /// The account's retention period in years.
    pub fn retention_default(&self) -> Result<u32> {
        Ok(self
            .trail()
            .entries()?
            .iter()
            .find_map(|r| {
                r.what
                    .strip_prefix(SET)?
                    .strip_suffix(" years")?
                    .parse()
                    .ok()
                    .filter(|y: &u32| check_years(*y).is_ok())
            })
            .unwrap_or(DEFAULT_YEARS))
    }

    /// Sets the account's retention period; every device of the account
    /// follows once the trail reaches it.
    pub fn set_retention_default(&mut self, years: u32) -> Result<()> {
        check_years(years)?;
        self.trail().record(&format!("{SET}{years} years"), None)
    }

    /// The owner alone decides how long a case of theirs is kept.
    fn owner_only(&self, case: &DocId) -> Result<()> {
        let meta = self
            .access()
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        if meta.owner != self.account_id() {
            return Err(RecordLifeError::NotOwnerRetention.into());
        }
        Ok(())
    }

    /// Gives a case a period of its own, or (`None`) the account's again.
    pub fn set_case_retention(&mut self, case: &DocId, years: Option<u32>) -> Result<()> {
        self.owner_only(case)?;
        if let Some(y) = years {
            check_years(y)?;
        }
        let what = match years {
            Some(y) => format!("case retention period set to {y} years"),
            None => "case retention period set to the account's".to_string(),
        };
        self.edit_case(case, &what, |c| Ok(c.set_retention_years(years)?))
    }

    /// Places a case under a legal hold, with its reason, or (`None`) lifts
    /// it. A case under a hold is never disposed of.
    pub fn set_legal_hold(&mut self, case: &DocId, reason: Option<&str>) -> Result<()> {
        self.owner_only(case)?;
        let reason = reason.map(crate::names::check).transpose()?;
        if reason.is_some_and(str::is_empty) {
            return Err(RecordLifeError::HoldNeedsReason.into());
        }
        let what = match &reason {
            Some(r) => format!("legal hold placed: {r}"),
            None => "legal hold lifted".to_string(),
        };
        self.edit_case(case, &what, |c| Ok(c.set_legal_hold(reason)?))
    }

    /// Whether this device's newest backup still holds cases disposed of
    /// since it was made: (when it was made, how many cases). Older backups
    /// cannot be reached to delete from, so they are to be replaced.
    pub fn backups_to_replace(&self) -> Result<Option<(u64, usize)>> {
        let trail = self.trail().own()?;
        let Some(last) = trail
            .iter()
            .rev()
            .find(|a| a.what.starts_with("backup made"))
        else {
            return Ok(None);
        };
        let since: std::collections::BTreeSet<Option<DocId>> = trail
            .iter()
            .filter(|a| a.at >= last.at && a.what.contains(" disposed of by "))
            .map(|a| a.case)
            .collect();
        Ok((!since.is_empty()).then_some((last.at, since.len())))
    }

    /// Every case this account owns, with when it falls due, soonest first.
    pub fn retention(&self) -> Result<Vec<RetentionRow>> {
        let default = self.retention_default()?;
        let me = self.account_id();
        let today: Date = crate::clock::date(self.now())
            .parse()
            .map_err(Inconsistent::Today)?;
        let mut rows = Vec::new();
        for (id, s) in self.docs().cases()? {
            if self.access().doc_meta(&id)?.is_none_or(|m| m.owner != me) {
                continue;
            }
            let last = s
                .notes
                .iter()
                .map(|n| n.date.clone())
                .max()
                .unwrap_or_else(|| s.created.clone());
            let years = s.retention_years.unwrap_or(default);
            // A date that does not parse (written by hand, long ago) is
            // kept: never due rather than due by accident.
            let due = last
                .parse::<Date>()
                .ok()
                .and_then(|d| d.checked_add(i64::from(years).years()).ok());
            rows.push(RetentionRow {
                case: id,
                name: s.name.clone(),
                last_session: last,
                no_sessions: s.notes.is_empty(),
                years,
                own_period: s.retention_years.is_some(),
                due: due.map_or_else(|| "never (no readable date)".into(), |d| d.to_string()),
                is_due: due.is_some_and(|d| d <= today),
                legal_hold: s.legal_hold.clone(),
            });
        }
        rows.sort_by(|a, b| (&a.due, &a.name).cmp(&(&b.due, &b.name)));
        Ok(rows)
    }
}
