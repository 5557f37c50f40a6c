//! Case-insensitive matching with a short snippet around each hit.

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
