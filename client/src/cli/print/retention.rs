//! `casebook retention`: which cases are due for disposal, and when the
//! others will be.

use crate::cli::term::{say, tell};
use anyhow::Result;
use casebook::app::retention::RetentionRow;
use serde_json::{Value, json};

use super::{Out, print_json};

impl Out {
    pub fn retention(&self, default: u32, rows: &[RetentionRow]) -> Result<()> {
        if self.json {
            return print_json(&Value::Array(
                rows.iter()
                    .map(|r| {
                        json!({
                            "id": r.case.to_hex(), "name": r.name,
                            "last_session_date": (!r.no_sessions).then_some(&r.last_session),
                            "counted_from_date": r.last_session, "years": r.years,
                            "own_period": r.own_period, "due_date": r.due, "due": r.is_due,
                            "legal_hold": r.legal_hold,
                        })
                    })
                    .collect(),
            ));
        }
        tell!(
            "The account keeps cases {default} years after their last session unless a case says otherwise."
        );
        if rows.is_empty() {
            tell!("no case is due for disposal (--all lists every case)");
        }
        for r in rows {
            let state = match (&r.legal_hold, r.is_due) {
                (Some(why), _) => format!("LEGAL HOLD ({why})"),
                (None, true) => "DUE".to_string(),
                (None, false) => format!("due {}", r.due),
            };
            let from = match r.no_sessions {
                true => format!("opened {} (no sessions)", r.last_session),
                false => format!("last session {}", r.last_session),
            };
            say!(
                "{}  {:<28}  {from}  {} years{}  {state}",
                r.case.short(),
                r.name,
                r.years,
                if r.own_period { " (its own)" } else { "" }
            );
        }
        Ok(())
    }
}
