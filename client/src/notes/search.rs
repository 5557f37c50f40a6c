//! Search: the words of a query, in any order, each somewhere in one note
//! (or in the case's name and profile); case-insensitive, with a short
//! snippet around the best match and a score to rank by.

use serde::{Deserialize, Serialize};

use super::case::CaseDoc;

/// Characters of context shown on each side of a match.
const CONTEXT: usize = 30;

/// Where a search matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    /// The note, or `None` for the case's name and profile.
    pub note_id: Option<String>,
    /// The field: a note field, `name`, `profile.<field>`, `addendum <n>` or
    /// `comment <n>` (counting from 1).
    pub field: String,
    /// The match with some context, on one line.
    pub snippet: String,
    /// Higher is better: the whole query as typed in one field, then every
    /// word in one field, then how many fields hold a word.
    pub score: u32,
}

/// A field made ready to be searched many times: its text, and that text
/// lowercased once.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    text: String,
    lower: String,
    /// Lowercasing kept every character's byte length, so a match's bytes
    /// in `lower` are its bytes in `text` (true of almost all text).
    aligned: bool,
}

impl Field {
    pub fn new(name: String, text: String) -> Self {
        let lower: String = text.chars().flat_map(char::to_lowercase).collect();
        let aligned = lower.len() == text.len()
            && text.chars().all(|c| {
                let mut l = c.to_lowercase();
                matches!((l.next(), l.next()), (Some(x), None) if x.len_utf8() == c.len_utf8())
            });
        Field {
            name,
            text,
            lower,
            aligned,
        }
    }
}

/// What one hit can be: a case's name and profile (`note_id` none) or one
/// note with its addenda and comments, made ready to search. A document's
/// units are kept between searches while it is unchanged.
#[derive(Debug, Clone)]
pub struct SearchUnit {
    pub note_id: Option<String>,
    pub fields: Vec<Field>,
}

/// A case made ready to search: its units, and all their text lowercased
/// in one string, so that a case without every word of a query is passed
/// over with one look per word rather than one per field.
#[derive(Debug, Clone)]
pub struct CaseIndex {
    units: Vec<SearchUnit>,
    lower: String,
}

/// A case's search text as kept in the store: each unit's note id and
/// fields. Lowercasing is done again on reading, so the store holds each
/// text once.
#[derive(Serialize, Deserialize)]
struct StoredUnits(Vec<StoredUnit>);

/// One unit as kept: its note id (none for the name and profile) and its
/// fields, named.
type StoredUnit = (Option<String>, Vec<(String, String)>);

impl CaseIndex {
    /// The case's text, for the store to keep.
    pub fn to_bytes(&self) -> Vec<u8> {
        let units = self
            .units
            .iter()
            .map(|u| {
                let fields = u
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), f.text.clone()))
                    .collect();
                (u.note_id.clone(), fields)
            })
            .collect();
        casebook_shared::codec::encode(&StoredUnits(units))
    }

    /// A case's text as [`Self::to_bytes`] wrote it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, casebook_shared::codec::CodecError> {
        let StoredUnits(units) = casebook_shared::codec::decode(bytes)?;
        Ok(Self::new(
            units
                .into_iter()
                .map(|(note_id, fields)| SearchUnit {
                    note_id,
                    fields: fields.into_iter().map(|(k, v)| Field::new(k, v)).collect(),
                })
                .collect(),
        ))
    }

    pub fn new(units: Vec<SearchUnit>) -> Self {
        let mut lower = String::new();
        for f in units.iter().flat_map(|u| &u.fields) {
            lower.push_str(&f.lower);
            // A separator no needle holds: no match spans two fields.
            lower.push('\0');
        }
        CaseIndex { units, lower }
    }
}

impl CaseIndex {
    /// Every unit holding the query, with how it matched. No snippet is
    /// made: a search keeps the best few and asks [`Self::hit`] for those.
    pub(crate) fn matches(&self, query: &Query) -> Vec<(usize, Judged)> {
        // Lowercasing character by character makes `lower` hold a needle
        // exactly where some field's text matches it, aligned or not.
        if !query.words.iter().all(|w| w.in_lower(&self.lower)) {
            return Vec::new();
        }
        let mut held = Vec::new();
        self.units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((i, query.judge_in(&u.fields, &mut held)?)))
            .collect()
    }

    /// The hit of one match that [`Self::matches`] found.
    pub(crate) fn hit(&self, query: &Query, unit: usize, judged: Judged) -> Option<SearchHit> {
        let u = self.units.get(unit)?;
        let (field, snippet) = query.snippet(&u.fields, judged)?;
        Some(SearchHit {
            note_id: u.note_id.clone(),
            field,
            snippet,
            score: judged.score,
        })
    }
}

/// Every hit of `query` in a case.
pub fn search_units(query: &str, index: &CaseIndex) -> Vec<SearchHit> {
    let Some(query) = Query::new(query) else {
        return Vec::new();
    };
    index
        .matches(&query)
        .into_iter()
        .filter_map(|(unit, judged)| index.hit(&query, unit, judged))
        .collect()
}

impl CaseDoc {
    /// Search by words in any order: one hit for the case's name and
    /// profile, and one per note (its fields, addenda and comments), where
    /// every word is found.
    pub fn search(&self, query: &str) -> Vec<SearchHit> {
        search_units(query, &CaseIndex::new(self.search_units()))
    }

    /// The case made ready to search: its name and profile, then each note
    /// as signed (the text a reader is shown) with its addenda and comments.
    pub fn search_units(&self) -> Vec<SearchUnit> {
        let mut header = vec![Field::new("name".into(), self.name())];
        header.extend(
            self.profile()
                .fields()
                .into_iter()
                .map(|(f, t)| Field::new(format!("profile.{f}"), t)),
        );
        let mut units = vec![SearchUnit {
            note_id: None,
            fields: header,
        }];
        for note in self.notes_as_signed() {
            let mut fields: Vec<Field> = note
                .fields
                .into_iter()
                .map(|(k, v)| Field::new(k, v))
                .collect();
            for (i, a) in note.addenda.into_iter().enumerate() {
                fields.push(Field::new(format!("addendum {}", i + 1), a.text));
            }
            for (i, c) in note.comments.into_iter().enumerate() {
                fields.push(Field::new(format!("comment {}", i + 1), c.text));
            }
            units.push(SearchUnit {
                note_id: Some(note.id),
                fields,
            });
        }
        units
    }
}

/// A query: its words, each to be found, and the whole as typed.
pub(crate) struct Query {
    words: Vec<Needle>,
    phrase: Option<Needle>,
}

impl Query {
    /// `None` for a query with no words, which would match everything.
    pub(crate) fn new(query: &str) -> Option<Self> {
        let words: Vec<Needle> = query.split_whitespace().filter_map(Needle::new).collect();
        if words.is_empty() {
            return None;
        }
        let phrase = (words.len() > 1)
            .then(|| Needle::new(&query.split_whitespace().collect::<Vec<_>>().join(" ")))
            .flatten();
        Some(Self { words, phrase })
    }

    /// Judges one unit given as `(field, text)` pairs: `None` unless every
    /// word is in one of the fields; else the field to show, its snippet
    /// and the score.
    pub(crate) fn judge(&self, fields: &[(String, String)]) -> Option<(String, String, u32)> {
        let fields: Vec<Field> = fields
            .iter()
            .map(|(k, v)| Field::new(k.clone(), v.clone()))
            .collect();
        let judged = self.judge_in(&fields, &mut Vec::new())?;
        let (field, snippet) = self.snippet(&fields, judged)?;
        Some((field, snippet, judged.score))
    }

    /// Judges one unit (a note, or a case's name and profile): `None`
    /// unless every word is in one of the fields. Each word is looked for
    /// once in each field (`held`, reused from unit to unit, records
    /// where), and the phrase only in fields that hold every word.
    fn judge_in(&self, fields: &[Field], held: &mut Vec<bool>) -> Option<Judged> {
        let n = self.words.len();
        held.clear();
        held.extend(
            fields
                .iter()
                .flat_map(|f| self.words.iter().map(move |w| w.holds(f))),
        );
        let row = |f: usize| &held[f * n..(f + 1) * n];
        if !(0..n).all(|w| (0..fields.len()).any(|f| row(f)[w])) {
            return None;
        }
        let whole = |f: &usize| row(*f).iter().all(|&h| h);
        let together = (0..fields.len()).find(whole);
        let touched = (0..fields.len())
            .filter(|&f| row(f).iter().any(|&h| h))
            .count() as u32;
        let phrase = self.phrase.as_ref().and_then(|p| {
            (0..fields.len())
                .filter(whole)
                .find(|&f| p.holds(&fields[f]))
        });
        let score =
            100 * u32::from(phrase.is_some()) + 10 * u32::from(together.is_some()) + touched.min(9);
        let (field, phrase) = match (phrase, together) {
            (Some(f), _) => (f, true),
            (None, Some(f)) => (f, false),
            (None, None) => ((0..fields.len()).find(|&f| row(f)[0])?, false),
        };
        Some(Judged {
            score,
            field,
            phrase,
        })
    }

    /// The field's name and the snippet of a unit judged by
    /// [`Self::judge_in`].
    fn snippet(&self, fields: &[Field], judged: Judged) -> Option<(String, String)> {
        let needle = match judged.phrase {
            true => self.phrase.as_ref()?,
            false => self.words.first()?,
        };
        let field = fields.get(judged.field)?;
        Some((field.name.clone(), needle.snippet_in(field)?))
    }
}

/// How a unit matched a query: its score, and where its snippet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judged {
    pub score: u32,
    /// The field the snippet comes from.
    field: usize,
    /// Whether the snippet shows the whole phrase (else the first word).
    phrase: bool,
}

/// A lowercased search string, with its searcher built once for every
/// field of every case a search looks in.
pub(crate) struct Needle {
    chars: Vec<char>,
    lower: String,
    finder: memchr::memmem::Finder<'static>,
}

impl Needle {
    /// `None` for an empty needle, which would match everything.
    pub(crate) fn new(needle: &str) -> Option<Self> {
        let chars: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
        (!chars.is_empty()).then(|| {
            let lower: String = chars.iter().collect();
            Self {
                finder: memchr::memmem::Finder::new(lower.as_bytes()).into_owned(),
                lower,
                chars,
            }
        })
    }

    /// Whether lowercased text holds this needle.
    fn in_lower(&self, lower: &str) -> bool {
        self.finder.find(lower.as_bytes()).is_some()
    }

    /// Whether the field holds this needle.
    fn holds(&self, f: &Field) -> bool {
        match f.aligned {
            true => self.in_lower(&f.lower),
            false => self.find(&f.text).is_some(),
        }
    }

    /// The first match in a field with context, or `None`.
    fn snippet_in(&self, f: &Field) -> Option<String> {
        let at = match f.aligned {
            true => self
                .finder
                .find(f.lower.as_bytes())
                .map(|s| (s, s + self.lower.len())),
            false => self.find(&f.text),
        };
        at.map(|(start, end)| snippet(&f.text, start, end))
    }

    /// The first match in `hay` with context, or `None`.
    #[cfg(test)]
    pub(crate) fn snippet(&self, hay: &str) -> Option<String> {
        let (start, end) = self.find(hay)?;
        Some(snippet(hay, start, end))
    }

    /// The byte range of the first match. Lowercasing can turn one character
    /// into several, so the comparison runs over lowercased characters that
    /// each remember the span of the original character they came from.
    fn find(&self, hay: &str) -> Option<(usize, usize)> {
        let lowered: Vec<(usize, usize, char)> = hay
            .char_indices()
            .flat_map(|(i, c)| {
                let end = i + c.len_utf8();
                c.to_lowercase().map(move |l| (i, end, l))
            })
            .collect();
        let n = self.chars.len();
        let last = lowered.len().checked_sub(n)?;
        (0..=last)
            .find(|&w| {
                lowered[w..w + n]
                    .iter()
                    .zip(&self.chars)
                    .all(|(&(_, _, l), c)| l == *c)
            })
            .map(|w| (lowered[w].0, lowered[w + n - 1].1))
    }
}

/// The match at `hay[start..end]` with some context, on one line.
fn snippet(hay: &str, start: usize, end: usize) -> String {
    let before: Vec<char> = hay[..start].chars().rev().take(CONTEXT).collect();
    let after: String = hay[end..].chars().take(CONTEXT).collect();
    let mut out = String::new();
    if before.len() < hay[..start].chars().count() {
        out.push('…');
    }
    out.extend(before.iter().rev());
    out.push_str(&hay[start..end]);
    out.push_str(&after);
    if after.len() < hay[end..].len() {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets() {
        let n = Needle::new("SLEEP").unwrap();
        assert_eq!(n.snippet("Poor Sleep.").unwrap(), "Poor Sleep.");
        let long = format!("{} sleep\n\n{}", "a".repeat(50), "b".repeat(50));
        let s = n.snippet(&long).unwrap();
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("a sleep b"), "{s}");
        assert!(Needle::new("").is_none());
        assert!(n.snippet("sle").is_none());
        // A character whose lowercase is longer than itself.
        let n = Needle::new("i̇stanbul").unwrap();
        assert_eq!(n.snippet("İstanbul").unwrap(), "İstanbul");
        assert_eq!(
            Needle::new("ß").unwrap().snippet("Straße").unwrap(),
            "Straße"
        );
    }

    #[test]
    fn prepared_fields_match_as_the_slow_path_does() {
        let q = Query::new("SLEEP diary").unwrap();
        let plain = [Field::new("plan".into(), "Keep a Sleep diary.".into())];
        assert!(plain[0].aligned);
        assert_eq!(
            q.judge(&[("plan".into(), "Keep a Sleep diary.".into())]),
            Some(("plan".into(), "Keep a Sleep diary.".into(), 111))
        );
        // "İ" lowercases to two characters: the slow path, same answer.
        let turkish = [Field::new("name".into(), "Ayşe İstanbul".into())];
        assert!(!turkish[0].aligned);
        let q = Query::new("i̇stanbul").unwrap();
        let held = &mut Vec::new();
        let judged = q.judge_in(&turkish, held).unwrap();
        assert_eq!(
            q.snippet(&turkish, judged).map(|j| j.1),
            Some("Ayşe İstanbul".to_string())
        );
        assert_eq!(Query::new("diary").unwrap().judge_in(&turkish, held), None);
    }

    #[test]
    fn a_case_index_is_kept_and_read_back_whole() {
        let index = CaseIndex::new(vec![
            SearchUnit {
                note_id: None,
                fields: vec![Field::new("name".into(), "Ayşe İstanbul".into())],
            },
            SearchUnit {
                note_id: Some("n1".into()),
                fields: vec![Field::new("plan".into(), "Keep a Sleep diary.".into())],
            },
        ]);
        let again = CaseIndex::from_bytes(&index.to_bytes()).unwrap();
        for q in ["sleep diary", "i̇stanbul", "ayşe"] {
            assert_eq!(search_units(q, &again), search_units(q, &index), "{q}");
            assert!(!search_units(q, &again).is_empty(), "{q}");
        }
        let bytes = index.to_bytes();
        assert!(CaseIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(CaseIndex::from_bytes(&[bytes.clone(), vec![0]].concat()).is_err());
    }
}
