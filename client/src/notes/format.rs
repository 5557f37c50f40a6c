//! Note formats, their fields, and the checks on the few fields with a syntax.

use super::{NoteError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Text fields every note has, whatever its format.
pub const COMMON_FIELDS: &[&str] = &[
    "interventions",
    "client_response",
    "goals",
    "homework",
    "significant_events",
    "risk",
];

/// Fields stored as plain values rather than text; they accept the same
/// `(name, value)` pairs as text fields so one editor template covers a note.
pub const SCALAR_FIELDS: &[&str] = &["date", "start_time", "duration"];

/// Text fields of a case's profile.
pub const PROFILE_FIELDS: &[&str] = &["presenting_concerns", "treatment_plan", "goals"];

/// How a session note is structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteFormat {
    /// Subjective, objective, assessment, plan.
    Soap,
    /// Data, assessment, plan.
    Dap,
    /// Behavior, intervention, response, plan.
    Birp,
    /// One free-text section.
    Free,
}

impl NoteFormat {
    /// Every format, in the order help text lists them.
    pub const ALL: [NoteFormat; 4] = [Self::Soap, Self::Dap, Self::Birp, Self::Free];

    /// Parses a format name, ignoring case and surrounding space.
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| NoteError::UnknownFormat(s.to_owned()))
    }

    /// The name stored in documents and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soap => "soap",
            Self::Dap => "dap",
            Self::Birp => "birp",
            Self::Free => "free",
        }
    }

    /// This format's own text sections, in writing order.
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            Self::Soap => &["subjective", "objective", "assessment", "plan"],
            Self::Dap => &["data", "assessment", "plan"],
            Self::Birp => &["behavior", "intervention", "response", "plan"],
            Self::Free => &["text"],
        }
    }

    /// Every text field of a note in this format: its sections, then
    /// [`COMMON_FIELDS`].
    pub fn text_fields(self) -> impl Iterator<Item = &'static str> {
        self.sections().iter().chain(COMMON_FIELDS).copied()
    }

    /// Every field name a note in this format accepts: [`SCALAR_FIELDS`], then
    /// the text fields.
    pub fn fields(self) -> Vec<&'static str> {
        SCALAR_FIELDS
            .iter()
            .copied()
            .chain(self.text_fields())
            .collect()
    }

    /// Whether `field` is a text field of this format.
    pub fn has_text_field(self, field: &str) -> bool {
        self.text_fields().any(|f| f == field)
    }

    /// Checks a field name, with an error that lists the valid ones.
    pub(crate) fn check_field(self, field: &str) -> Result<()> {
        if SCALAR_FIELDS.contains(&field) || self.has_text_field(field) {
            Ok(())
        } else {
            Err(NoteError::UnknownField {
                field: field.to_owned(),
                context: format!("a {self} note"),
                valid: self.fields().join(", "),
            })
        }
    }
}

impl fmt::Display for NoteFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NoteFormat {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Checks a `YYYY-MM-DD` date names a real day (so no 2023-02-29).
pub fn parse_date(s: &str) -> Result<String> {
    let err = || NoteError::InvalidDate(s.to_owned());
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &t[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (
        num(0..4).ok_or_else(err)?,
        num(5..7).ok_or_else(err)?,
        num(8..10).ok_or_else(err)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(err()),
    };
    if year == 0 || day == 0 || day > days {
        return Err(err());
    }
    Ok(t.to_owned())
}

/// Checks a 24-hour `HH:MM` time; `9:05` is accepted and written `09:05`.
pub fn parse_start_time(s: &str) -> Result<String> {
    let err = || NoteError::InvalidTime(s.to_owned());
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    let digits = |p: &str, max_len| {
        !p.is_empty() && p.len() <= max_len && p.bytes().all(|c| c.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(err());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    if h > 23 || m > 59 {
        return Err(err());
    }
    Ok(format!("{h:02}:{m:02}"))
}

/// Checks a session length in whole minutes.
pub fn parse_duration(s: &str) -> Result<u32> {
    let t = s.trim();
    match t.parse::<u32>() {
        Ok(n @ 1..=1440) if t.bytes().all(|c| c.is_ascii_digit()) => Ok(n),
        _ => Err(NoteError::InvalidDuration(s.to_owned())),
    }
}

/// Checks an id used as a key in the case's `notes` map.
pub(crate) fn check_note_id(id: &str) -> Result<()> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(NoteError::InvalidNoteId(id.to_owned()))
    }
}

/// A fresh random note id: 16 hex characters.
///
/// Random, not a counter, because two offline devices adding notes must never
/// pick the same key: the second note would hide the first as a conflict.
pub fn new_note_id() -> String {
    hex::encode(casebook_shared::crypto::random_bytes::<8>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["2024-02-29", "2023-12-31", "2000-02-29", "0001-01-01"] {
            assert_eq!(parse_date(ok).unwrap(), ok);
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-4-01",
            "24-04-01",
            "2024/04/01",
            "2024-04-+1",
            "０２０２-01-01",
            "€a-01-01",
            "",
            "0000-01-01",
        ] {
            assert!(
                matches!(parse_date(bad), Err(NoteError::InvalidDate(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_start_time("9:05").unwrap(), "09:05");
        assert_eq!(parse_start_time("23:59").unwrap(), "23:59");
        for bad in ["24:00", "12:60", "12:5", "1205", ":30", "+1:30", "12:30:00"] {
            assert!(parse_start_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration(" 50 ").unwrap(), 50);
        for bad in ["0", "1441", "-5", "+5", "50min", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(NoteFormat::parse(" SOAP ").unwrap(), NoteFormat::Soap);
        let err = NoteFormat::parse("narrative").unwrap_err().to_string();
        assert!(err.contains("soap, dap, birp, free"), "{err}");
        let err = NoteFormat::Dap
            .check_field("subjective")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data, assessment, plan, interventions"),
            "{err}"
        );
        NoteFormat::Birp.check_field("risk").unwrap();
        NoteFormat::Free.check_field("duration").unwrap();
        assert!(check_note_id(&new_note_id()).is_ok());
        assert!(check_note_id("a/b").is_err());
    }
}
