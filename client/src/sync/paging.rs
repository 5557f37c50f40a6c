//! What to fetch next, and what a page of envelopes may be, decided
//! without I/O: [`Paging`] is handed each page the relay sends and says
//! which envelopes go on to be checked ([`check::admit`](super::check)),
//! which are refused for their place in the page, and what to ask for
//! next, so the rules are tested without a relay.
//!
//! The relay answers a fetch with envelopes in order of document and
//! sequence number, up to a byte budget, and says whether more follow. A
//! page is taken only if it keeps that order: an envelope of a document
//! not asked for is a protocol fault (the round fails), one at or below
//! what was already taken of its document is a replay (refused, the rest
//! go on), and a page that says more follow but holds nothing, or moves
//! nothing on, would never end. After a page, the documents before its last one are complete; the
//! next request starts at the last one, from where the page left it.

use casebook_shared::frames::{Request, Stored};
use casebook_shared::ids::DocId;

use super::PAGE_BYTES;

/// What a page broke that fails the round.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PageFault {
    #[error("sent document {} that was not asked for", .0.short())]
    NotAskedFor(DocId),
    #[error("said more envelopes follow but sent none")]
    EmptyWithMore,
    /// A page that says more follow yet moves nothing on (replays only)
    /// would have the same request asked again for ever.
    #[error("said more envelopes follow but sent only ones already taken")]
    NoProgress,
}

/// One envelope of a page, judged by its place alone.
#[derive(Debug)]
pub(crate) enum Placed {
    /// In order: check it and take it.
    Take(Stored),
    /// At or below what was already taken of its document.
    Replayed { doc: DocId, seq: u64 },
}

/// The fetches of one pull.
#[derive(Debug)]
pub(crate) struct Paging {
    /// Documents still to fetch, each after the sequence number taken.
    after: Vec<(DocId, u64)>,
    /// Documents asked for at the start.
    of: usize,
}

impl Paging {
    /// Fetches each of `after` (a document, and the sequence number after
    /// which its envelopes are new).
    pub(crate) fn new(after: Vec<(DocId, u64)>) -> Self {
        Paging {
            of: after.len(),
            after,
        }
    }

    /// The next request, or `None` when every document is complete.
    pub(crate) fn request(&self) -> Option<Request> {
        (!self.after.is_empty()).then(|| Request::Fetch {
            docs: self.after.clone(),
            max_bytes: PAGE_BYTES,
        })
    }

    /// Documents complete so far, of those asked for.
    pub(crate) fn progress(&self) -> (usize, usize) {
        (self.of - self.after.len(), self.of)
    }

    /// Judges the relay's answer to [`Self::request`]: each envelope in
    /// order, or the fault that fails the round.
    pub(crate) fn page(
        &mut self,
        items: Vec<Stored>,
        more: bool,
    ) -> Result<Vec<Placed>, PageFault> {
        if more && items.is_empty() {
            return Err(PageFault::EmptyWithMore);
        }
        let last_doc = items.last().map(|i| i.doc);
        let asked = self.after.clone();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(pos) = self.after.iter().position(|(d, _)| *d == item.doc) else {
                return Err(PageFault::NotAskedFor(item.doc));
            };
            // Sequence numbers only rise: anything else is a replay.
            if item.seq <= self.after[pos].1 {
                out.push(Placed::Replayed {
                    doc: item.doc,
                    seq: item.seq,
                });
                continue;
            }
            self.after[pos].1 = item.seq;
            out.push(Placed::Take(item));
        }
        // Documents before the last one in this page are complete.
        self.after = match (more, last_doc) {
            (true, Some(d)) => {
                let pos = self.after.iter().position(|(x, _)| *x == d).unwrap_or(0);
                self.after.split_off(pos)
            }
            _ => Vec::new(),
        };
        if more && self.after == asked {
            return Err(PageFault::NoProgress);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> DocId {
        DocId([n; 16])
    }

    fn item(d: u8, seq: u64) -> Stored {
        Stored {
            doc: doc(d),
            seq,
            envelope: vec![d],
        }
    }

    fn taken(placed: &[Placed]) -> Vec<(u8, u64)> {
        placed
            .iter()
            .filter_map(|p| match p {
                Placed::Take(s) => Some((s.doc.0[0], s.seq)),
                Placed::Replayed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn pages_go_on_from_the_last_document_where_the_page_left_it() {
        let mut p = Paging::new(vec![(doc(1), 0), (doc(2), 5), (doc(3), 0)]);
        let Some(Request::Fetch { docs, .. }) = p.request() else {
            panic!("a fetch")
        };
        assert_eq!(docs, vec![(doc(1), 0), (doc(2), 5), (doc(3), 0)]);
        let placed = p
            .page(vec![item(1, 3), item(1, 4), item(2, 7)], true)
            .unwrap();
        assert_eq!(taken(&placed), vec![(1, 3), (1, 4), (2, 7)]);
        assert_eq!(p.progress(), (1, 3), "document 1 is complete");
        let Some(Request::Fetch { docs, .. }) = p.request() else {
            panic!("a fetch")
        };
        assert_eq!(docs, vec![(doc(2), 7), (doc(3), 0)]);
        let placed = p.page(vec![item(2, 9), item(3, 1)], false).unwrap();
        assert_eq!(taken(&placed), vec![(2, 9), (3, 1)]);
        assert!(p.request().is_none());
        assert_eq!(p.progress(), (3, 3));
    }

    #[test]
    fn a_replay_is_refused_and_the_rest_of_the_page_goes_on() {
        let mut p = Paging::new(vec![(doc(1), 4)]);
        let placed = p
            .page(vec![item(1, 4), item(1, 6), item(1, 5), item(1, 8)], false)
            .unwrap();
        assert_eq!(taken(&placed), vec![(1, 6), (1, 8)]);
        let replayed: Vec<u64> = placed
            .iter()
            .filter_map(|p| match p {
                Placed::Replayed { seq, .. } => Some(*seq),
                Placed::Take(_) => None,
            })
            .collect();
        assert_eq!(replayed, vec![4, 5]);
    }

    #[test]
    fn what_was_not_asked_for_or_never_ends_fails_the_round() {
        let mut p = Paging::new(vec![(doc(1), 0)]);
        assert_eq!(
            p.page(vec![item(2, 1)], false).unwrap_err(),
            PageFault::NotAskedFor(doc(2))
        );
        let mut p = Paging::new(vec![(doc(1), 0)]);
        assert_eq!(p.page(vec![], true).unwrap_err(), PageFault::EmptyWithMore);
        // Replays only, with more to follow, would be asked for again.
        let mut p = Paging::new(vec![(doc(1), 5), (doc(2), 0)]);
        assert_eq!(
            p.page(vec![item(1, 4), item(1, 5)], true).unwrap_err(),
            PageFault::NoProgress
        );
        // A complete document is not asked for again.
        let mut p = Paging::new(vec![(doc(1), 0), (doc(2), 0)]);
        p.page(vec![item(1, 1), item(2, 2)], true).unwrap();
        assert_eq!(
            p.page(vec![item(1, 3)], false).unwrap_err(),
            PageFault::NotAskedFor(doc(1))
        );
    }
}
