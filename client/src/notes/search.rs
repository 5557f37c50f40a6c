//! Search: the words of a query, in any order, each somewhere in one note
//! (or in the case's name and profile); case-insensitive, with a short
//! snippet around the best match and a score to rank by.

use serde::Serialize;

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

    /// Judges one unit (a note, or a case's name and profile) given as
    /// `(field, text)` pairs: `None` unless every word is in one of the
    /// fields; else the field to show, its snippet and the score.
    pub(crate) fn judge(&self, fields: &[(String, String)]) -> Option<(String, String, u32)> {
        let holds = |n: &Needle, t: &str| n.find(t).is_some();
        if !self
            .words
            .iter()
            .all(|w| fields.iter().any(|(_, t)| holds(w, t)))
        {
            return None;
        }
        let phrase = self
            .phrase
            .as_ref()
            .and_then(|p| fields.iter().find(|(_, t)| holds(p, t)).map(|f| (f, p)));
        let together = fields
            .iter()
            .find(|(_, t)| self.words.iter().all(|w| holds(w, t)));
        let touched = fields
            .iter()
            .filter(|(_, t)| self.words.iter().any(|w| holds(w, t)))
            .count() as u32;
        let score =
            100 * u32::from(phrase.is_some()) + 10 * u32::from(together.is_some()) + touched.min(9);
        let (field, needle) = match (phrase, together) {
            (Some((f, p)), _) => (f, p),
            (None, Some(f)) => (f, &self.words[0]),
            (None, None) => {
                let w = &self.words[0];
                (fields.iter().find(|(_, t)| holds(w, t))?, w)
            }
        };
        Some((field.0.clone(), needle.snippet(&field.1)?, score))
    }
}

/// A lowercased search string.
pub(crate) struct Needle(Vec<char>);

impl Needle {
    /// `None` for an empty needle, which would match everything.
    pub(crate) fn new(needle: &str) -> Option<Self> {
        let chars: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
        (!chars.is_empty()).then_some(Self(chars))
    }

    /// The first match in `hay` with context, or `None`.
    pub(crate) fn snippet(&self, hay: &str) -> Option<String> {
        let (start, end) = self.find(hay)?;
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
        Some(out.split_whitespace().collect::<Vec<_>>().join(" "))
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
        let n = self.0.len();
        let last = lowered.len().checked_sub(n)?;
        (0..=last)
            .find(|&w| {
                lowered[w..w + n]
                    .iter()
                    .zip(&self.0)
                    .all(|(&(_, _, l), c)| l == *c)
            })
            .map(|w| (lowered[w].0, lowered[w + n - 1].1))
    }
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
}
