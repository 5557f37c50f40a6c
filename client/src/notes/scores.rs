//! Outcome measures: scores a session note carries (PHQ-9, GAD-7, or any
//! named number the therapist tracks), and each measure's course over a case.
//!
//! A score is a plain string value under the key `score:NAME` of the note's
//! own map, not an entry of a nested object: two devices that each add a
//! measure to one note then write different keys and both survive, where a
//! nested map created on each side would keep only one. Two devices setting
//! the same measure keep one value, as with the session's date.
//!
//! Values are kept as the canonical decimal text of the number, so every
//! device, the signature's hash and the export all read the same characters.

use super::{NoteError, Result};

/// The key prefix of a score in a note's map.
pub const SCORE_PREFIX: &str = "score:";

/// A standard measure whose range and severity bands are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standard {
    pub name: &'static str,
    /// The highest possible total.
    pub max: u32,
    /// `(lowest score of the band, band)`, from the lowest band up.
    pub bands: &'static [(u32, &'static str)],
}

/// PHQ-9 (depression; Kroenke, Spitzer & Williams 2001) and GAD-7 (anxiety;
/// Spitzer et al. 2006), with the cut-offs their authors published.
pub const STANDARD: &[Standard] = &[
    Standard {
        name: "PHQ-9",
        max: 27,
        bands: &[
            (0, "minimal"),
            (5, "mild"),
            (10, "moderate"),
            (15, "moderately severe"),
            (20, "severe"),
        ],
    },
    Standard {
        name: "GAD-7",
        max: 21,
        bands: &[
            (0, "minimal"),
            (5, "mild"),
            (10, "moderate"),
            (15, "severe"),
        ],
    },
];

/// The longest measure name accepted.
const MAX_NAME: usize = 40;
/// The largest magnitude a score of a measure of the therapist's own may
/// have: room for any scale in use, and no float that prints oddly.
const MAX_VALUE: f64 = 1_000_000.0;

/// The measure a form's `score:NAME` field names, if it names one.
pub fn score_field(field: &str) -> Option<&str> {
    field.strip_prefix(SCORE_PREFIX)
}

/// The standard measure `name` is, written any usual way ("phq9",
/// "PHQ 9", "Phq-9").
pub fn standard(name: &str) -> Option<&'static Standard> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let given = squash(name);
    STANDARD.iter().find(|m| squash(m.name) == given)
}

/// A measure's name as stored: a standard one in its usual spelling, any
/// other as typed, trimmed.
pub fn measure_name(raw: &str) -> Result<String> {
    if let Some(m) = standard(raw) {
        return Ok(m.name.to_owned());
    }
    let name = raw.trim();
    let fits = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "-_()./%#+".contains(c));
    match fits {
        true => Ok(name.to_owned()),
        false => Err(NoteError::InvalidMeasure(raw.to_owned())),
    }
}

/// A score as stored: the canonical text of the number, checked against
/// the measure's range when it is a standard one.
pub fn score_value(measure: &str, raw: &str) -> Result<String> {
    let bad = |why: String| NoteError::InvalidScore {
        measure: measure.to_owned(),
        value: raw.to_owned(),
        why,
    };
    let value: f64 = raw
        .trim()
        .parse()
        .map_err(|_| bad("it is not a number".into()))?;
    if !value.is_finite() || value.abs() > MAX_VALUE {
        return Err(bad(format!("scores run from -{MAX_VALUE} to {MAX_VALUE}")));
    }
    if let Some(m) = standard(measure)
        && (value.fract() != 0.0 || !(0.0..=f64::from(m.max)).contains(&value))
    {
        return Err(bad(format!(
            "a {} total is a whole number from 0 to {}",
            m.name, m.max
        )));
    }
    // `0.0 + x` turns -0 into 0, so "-0" and "0" store alike.
    Ok(format!("{}", 0.0 + value))
}

/// A `score:NAME` field of a form as it is stored: its key with the
/// measure's name made canonical, and its value (`None`, to remove it, when
/// empty). `None` for any other field.
pub(super) fn score_edit(field: &str, value: &str) -> Result<Option<(String, Option<String>)>> {
    let Some(raw) = score_field(field) else {
        return Ok(None);
    };
    let name = measure_name(raw)?;
    let value = match value.trim() {
        "" => None,
        v => Some(score_value(&name, v)?),
    };
    Ok(Some((format!("{SCORE_PREFIX}{name}"), value)))
}

/// The key a field is stored under, so that "score:phq9" and
/// "score:PHQ-9" count as the same field given twice.
pub(super) fn unique_key(field: &str) -> String {
    match score_field(field).map(measure_name) {
        Some(Ok(name)) => format!("{SCORE_PREFIX}{name}"),
        _ => field.to_owned(),
    }
}

/// The severity band a standard measure's score falls in.
pub fn band(measure: &str, value: f64) -> Option<&'static str> {
    let m = standard(measure)?;
    m.bands
        .iter()
        .rev()
        .find(|(from, _)| value >= f64::from(*from))
        .map(|(_, b)| *b)
}

/// One measure's scores over a case, oldest session first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    pub measure: String,
    pub points: Vec<ScorePoint>,
}

/// A score and the session it was taken in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScorePoint {
    pub date: String,
    pub note_id: String,
    pub value: f64,
    pub signed: bool,
}

/// Gathers `(date, note id, signed, scores)` per note into one series per
/// measure, standard measures first, then by name; points by date then note.
pub fn series<'a>(
    notes: impl IntoIterator<Item = (&'a str, &'a str, bool, &'a [(String, String)])>,
) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for (date, note_id, signed, scores) in notes {
        for (measure, value) in scores {
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let point = ScorePoint {
                date: date.to_owned(),
                note_id: note_id.to_owned(),
                value,
                signed,
            };
            match all.iter_mut().find(|s| &s.measure == measure) {
                Some(s) => s.points.push(point),
                None => all.push(Series {
                    measure: measure.clone(),
                    points: vec![point],
                }),
            }
        }
    }
    for s in &mut all {
        s.points
            .sort_by(|a, b| (&a.date, &a.note_id).cmp(&(&b.date, &b.note_id)));
    }
    // Standard measures first, in the order of [`STANDARD`].
    let rank = |m: &str| {
        STANDARD
            .iter()
            .position(|s| s.name == m)
            .unwrap_or(STANDARD.len())
    };
    all.sort_by_key(|s| (rank(&s.measure), s.measure.to_lowercase()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(measure_name(" phq9 ").unwrap(), "PHQ-9");
        assert_eq!(measure_name("Gad 7").unwrap(), "GAD-7");
        assert_eq!(measure_name(" Sleep (hours) ").unwrap(), "Sleep (hours)");
        assert!(measure_name("").is_err());
        assert!(measure_name("a\nb").is_err());
        assert!(measure_name("<script>").is_err());
        assert!(measure_name(&"x".repeat(41)).is_err());

        assert_eq!(score_value("PHQ-9", " 12 ").unwrap(), "12");
        assert_eq!(score_value("Sleep", "6.50").unwrap(), "6.5");
        assert_eq!(score_value("Sleep", "-0").unwrap(), "0");
        for bad in ["28", "-1", "3.5", "x", "NaN", "inf"] {
            assert!(score_value("PHQ-9", bad).is_err(), "{bad}");
        }
        assert!(score_value("GAD-7", "22").is_err());
        assert!(score_value("Sleep", "1e7").is_err());
    }

    #[test]
    fn bands_follow_the_published_cut_offs() {
        assert_eq!(band("PHQ-9", 4.0), Some("minimal"));
        assert_eq!(band("PHQ-9", 10.0), Some("moderate"));
        assert_eq!(band("PHQ-9", 27.0), Some("severe"));
        assert_eq!(band("GAD-7", 15.0), Some("severe"));
        assert_eq!(band("Sleep", 3.0), None);
    }

    #[test]
    fn series_are_by_measure_then_date() {
        let a = vec![("PHQ-9".to_string(), "14".to_string())];
        let b = vec![
            ("Sleep".to_string(), "6".to_string()),
            ("PHQ-9".to_string(), "9".to_string()),
        ];
        let s = series([
            ("2026-03-02", "b", true, b.as_slice()),
            ("2026-02-01", "a", false, a.as_slice()),
        ]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].measure, "PHQ-9");
        let values: Vec<f64> = s[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [14.0, 9.0]);
        assert_eq!(s[1].points[0].date, "2026-03-02");
    }
}

#[cfg(test)]
mod doc_tests {
    use super::super::tests::{AT, DEV_B, case_with_note, pairs};
    use super::super::{CaseDoc, LateEditChoice, NoteError};

    #[test]
    fn two_devices_adding_different_measures_keep_both() {
        let mut a = case_with_note();
        let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
        let base = a.heads();
        a.edit_note("n1", &pairs(&[("score:phq9", "14")])).unwrap();
        b.edit_note(
            "n1",
            &pairs(&[("score:GAD 7", "9"), ("score:Sleep", "5.5")]),
        )
        .unwrap();
        a.apply(&b.changes_since(&base)).unwrap();
        let n = a.note("n1").unwrap();
        assert_eq!(
            n.scores,
            pairs(&[("GAD-7", "9"), ("PHQ-9", "14"), ("Sleep", "5.5")])
        );
        // An empty value removes a score; the others stay.
        a.edit_note("n1", &pairs(&[("score:Sleep", " ")])).unwrap();
        assert_eq!(a.note("n1").unwrap().scores.len(), 2);
    }

    #[test]
    fn scores_are_checked_and_named_once() {
        let mut a = case_with_note();
        assert!(matches!(
            a.edit_note("n1", &pairs(&[("score:PHQ-9", "30")])),
            Err(NoteError::InvalidScore { .. })
        ));
        assert!(matches!(
            a.edit_note("n1", &pairs(&[("score:", "3")])),
            Err(NoteError::InvalidMeasure(_))
        ));
        assert!(matches!(
            a.edit_note("n1", &pairs(&[("score:phq9", "3"), ("score:PHQ-9", "4")])),
            Err(NoteError::DuplicateField(_))
        ));
        assert!(a.note("n1").unwrap().scores.is_empty());
    }

    #[test]
    fn a_signature_covers_the_scores_and_a_late_score_is_shown_apart() {
        let mut a = case_with_note();
        a.edit_note("n1", &pairs(&[("score:PHQ-9", "12")])).unwrap();
        let mut b = CaseDoc::load(&a.save(), DEV_B).unwrap();
        let base = a.heads();
        a.sign_note("n1", "Dr A", AT).unwrap();
        b.edit_note("n1", &pairs(&[("score:PHQ-9", "20")])).unwrap();
        a.apply(&b.changes_since(&base)).unwrap();
        let n = a.note("n1").unwrap();
        assert!(!n.signature_broken);
        assert_eq!(n.scores, pairs(&[("PHQ-9", "12")]), "shown as signed");
        assert_eq!(n.late_edits.len(), 1);
        assert_eq!(n.late_edits[0].field, "score:PHQ-9");
        assert_eq!(n.late_edits[0].merged, "20");
        a.settle_late_edit("n1", "score:PHQ-9", LateEditChoice::Discard, "aa", AT)
            .unwrap();
        let n = a.note("n1").unwrap();
        assert!(n.late_edits.is_empty() && !n.signature_broken);
        assert_eq!(n.scores, pairs(&[("PHQ-9", "12")]));
    }

    /// The recorded hash, and a copy of the document with it replaced.
    fn with_hash(a: &mut CaseDoc, change: impl Fn(&str) -> String) -> (String, CaseDoc) {
        use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
        let mut raw = AutoCommit::load(&a.save()).unwrap();
        let notes = raw.get(ROOT, "notes").unwrap().unwrap().1;
        let note = raw.get(&notes, "n1").unwrap().unwrap().1;
        let recorded = match raw.get(&note, "signed_hash").unwrap().unwrap().0 {
            automerge::Value::Scalar(s) => s.as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        raw.put(&note, "signed_hash", change(&recorded)).unwrap();
        (recorded, CaseDoc::load(&raw.save(), DEV_B).unwrap())
    }

    #[test]
    fn a_signature_says_whether_it_covers_scores() {
        // Without scores: recorded as before scores existed.
        let mut plain = case_with_note();
        plain.sign_note("n1", "aa", AT).unwrap();
        let (recorded, _) = with_hash(&mut plain, str::to_string);
        assert!(!recorded.contains(':'), "{recorded}");

        // With scores: says so, and covers them.
        let mut a = case_with_note();
        a.edit_note("n1", &pairs(&[("score:PHQ-9", "12")])).unwrap();
        a.sign_note("n1", "aa", AT).unwrap();
        let (recorded, same) = with_hash(&mut a, str::to_string);
        assert!(recorded.starts_with("v2:"), "{recorded}");
        assert!(!same.note("n1").unwrap().signature_broken);
        // The same hash claimed for the note without its scores: broken.
        let (_, stripped) = with_hash(&mut a, |r| r.trim_start_matches("v2:").to_string());
        assert!(stripped.note("n1").unwrap().signature_broken);
    }
}
