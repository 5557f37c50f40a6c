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
/// in one string, so that a query word is looked for in one pass over the
/// case rather than once in each of its many short fields.
#[derive(Debug, Clone)]
pub struct CaseIndex {
    units: Vec<SearchUnit>,
    lower: String,
    /// Where each field's text begins and ends in `lower`: the fields of
    /// every unit, in order.
    spans: Vec<(usize, usize)>,
    /// Each unit's first field in `spans`, and then their count.
    firsts: Vec<usize>,
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
        let mut spans = Vec::new();
        let mut firsts = vec![0];
        for u in &units {
            for f in &u.fields {
                spans.push((lower.len(), lower.len() + f.lower.len()));
                lower.push_str(&f.lower);
                // Between fields; a match that spans it is no match.
                lower.push('\0');
            }
            firsts.push(spans.len());
        }
        CaseIndex {
            units,
            lower,
            spans,
            firsts,
        }
    }

    /// Marks each field holding `needle` (`held[field * stride + at]`), in
    /// one pass over the case's text that goes on to the next field after
    /// each hit; says whether any field holds it. Lowercasing character by
    /// character makes a field's part of `lower` hold a needle exactly
    /// where its text matches it, aligned or not.
    fn mark(&self, needle: &Needle, held: &mut [bool], stride: usize, at: usize) -> bool {
        let hay = self.lower.as_bytes();
        let mut from = 0;
        let mut any = false;
        while from < hay.len() {
            let Some(i) = needle.finder.find(&hay[from..]) else {
                break;
            };
            let start = from + i;
            let field = self.spans.partition_point(|&(s, _)| s <= start) - 1;
            let end = self.spans[field].1;
            if start + needle.lower.len() <= end {
                held[field * stride + at] = true;
                any = true;
                from = end + 1;
            } else {
                from = start + 1;
            }
        }
        any
    }
}

impl CaseIndex {
    /// Every unit holding the query, with how it matched. No snippet is
    /// made: a search keeps the best few and asks [`Self::hit`] for those.
    pub(crate) fn matches(&self, query: &Query) -> Vec<(usize, Judged)> {
        // Most cases lack some word of most queries: one look for each,
        // which stops at a word's first place, passes over them.
        if !query.words.iter().all(|w| w.in_lower(&self.lower)) {
            return Vec::new();
        }
        let n = query.words.len();
        let mut held = vec![false; self.spans.len() * n];
        for (at, word) in query.words.iter().enumerate() {
            if !self.mark(word, &mut held, n, at) {
                return Vec::new();
            }
        }
        let mut phrase = vec![false; self.spans.len()];
        if let Some(p) = &query.phrase {
            self.mark(p, &mut phrase, 1, 0);
        }
        (0..self.units.len())
            .filter_map(|u| {
                let (a, b) = (self.firsts[u], self.firsts[u + 1]);
                let judged = query.judge_held(&held[a * n..b * n], |f| phrase[a + f])?;
                Some((u, judged))
            })
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
    /// where).
    fn judge_in(&self, fields: &[Field], held: &mut Vec<bool>) -> Option<Judged> {
        held.clear();
        held.extend(
            fields
                .iter()
                .flat_map(|f| self.words.iter().map(move |w| w.holds(f))),
        );
        self.judge_held(held, |f| {
            self.phrase.as_ref().is_some_and(|p| p.holds(&fields[f]))
        })
    }

    /// Judges a unit from which of its fields hold which word
    /// (`held[field * words + word]`); `phrase_in` says whether a field
    /// holds the whole phrase, and is asked only of fields that hold every
    /// word.
    fn judge_held(&self, held: &[bool], phrase_in: impl Fn(usize) -> bool) -> Option<Judged> {
        let n = self.words.len();
        let fields = held.len() / n;
        let row = |f: usize| &held[f * n..(f + 1) * n];
        if !(0..n).all(|w| (0..fields).any(|f| row(f)[w])) {
            return None;
        }
        let whole = |f: &usize| row(*f).iter().all(|&h| h);
        let together = (0..fields).find(whole);
        let touched = (0..fields).filter(|&f| row(f).iter().any(|&h| h)).count() as u32;
        let phrase = match self.phrase {
            Some(_) => (0..fields).filter(whole).find(|&f| phrase_in(f)),
            None => None,
        };
        let score =
            100 * u32::from(phrase.is_some()) + 10 * u32::from(together.is_some()) + touched.min(9);
        let (field, phrase) = match (phrase, together) {
            (Some(f), _) => (f, true),
            (None, Some(f)) => (f, false),
            (None, None) => ((0..fields).find(|&f| row(f)[0])?, false),
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
#[path = "search_tests.rs"]
mod tests;
