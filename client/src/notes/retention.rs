//! How long a case is kept: an override of the account's retention
//! period, and a legal hold that keeps it whatever the period says. Both
//! live in the case document, so every device of the owner (and every
//! colleague it is shared with) sees them.

use automerge::{ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable};

use super::Result;
use super::case::CaseDoc;
use super::replica::string;

impl CaseDoc {
    /// Years to keep this case after its last session, if it differs from
    /// the account's period.
    pub fn retention_years(&self) -> Option<u32> {
        match self.doc().get(&ROOT, "retention_years") {
            Ok(Some((Value::Scalar(v), _))) => match v.as_ref() {
                ScalarValue::Int(n) => u32::try_from(*n).ok(),
                ScalarValue::Uint(n) => u32::try_from(*n).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Sets the case's own period, or goes back to the account's.
    pub fn set_retention_years(&mut self, years: Option<u32>) -> Result<()> {
        self.replica.write(|d| {
            match years {
                Some(y) => d.put(&ROOT, "retention_years", i64::from(y))?,
                None => {
                    if d.get(&ROOT, "retention_years")?.is_some() {
                        d.delete(&ROOT, "retention_years")?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Why the case is under a legal hold, if it is.
    pub fn legal_hold(&self) -> Option<String> {
        string(self.doc(), &ROOT, "legal_hold").filter(|s| !s.is_empty())
    }

    /// Places the case under a legal hold (with its reason), or lifts it.
    pub fn set_legal_hold(&mut self, reason: Option<&str>) -> Result<()> {
        self.replica.write(|d| {
            match reason {
                Some(r) => d.put(&ROOT, "legal_hold", r)?,
                None => {
                    if d.get(&ROOT, "legal_hold")?.is_some() {
                        d.delete(&ROOT, "legal_hold")?;
                    }
                }
            }
            Ok(())
        })
    }
}
