//! Held edits: written here to a case this account may no longer write (a
//! share ended or became read-only while the device was offline). They
//! cannot be sent; instead of a warning at every sync, the person saves
//! them to a file or discards them, and the trail records which.

use std::path::Path;

use casebook_shared::access::Role;
use casebook_shared::ids::DocId;

use crate::{Error, Home, Result};

/// Why held edits were not settled: there are none to settle.
#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    /// Edits waiting for a case this account may still write are not held:
    /// they go out at the next sync, and settling them would lose them.
    #[error(
        "not allowed: this account may still write the case: its edits are sent at the next sync"
    )]
    StillWritable,
    #[error("not allowed: no edits are held for this case")]
    NothingHeld,
}

impl Home {
    /// Settles the edits held for `case` and its psychotherapy notes: if
    /// `save_to` is given, first writes the case as this device holds it
    /// (held edits included) there as Markdown, in a new file only this user
    /// can read; then removes them from what waits to be sent, with this
    /// device's copy of each document that holds them (fetched again at the
    /// next sync while it is still shared). Returns how many were held.
    pub fn settle_held(&mut self, case: &DocId, save_to: Option<&Path>) -> Result<usize> {
        let private = self
            .docs()
            .cases()?
            .into_iter()
            .find(|(d, _)| d == case)
            .and_then(|(_, s)| s.private_doc);
        let me = self.account_id();
        let outbox = self.store.outbox()?;
        let mut held: Vec<(DocId, usize)> = Vec::new();
        let mut writable = false;
        for doc in std::iter::once(*case).chain(private) {
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            let n = outbox
                .iter()
                .filter(|r| r.doc == doc && r.kind != crate::store::OutKind::Access)
                .count();
            if meta
                .role_of(&me, self.now())
                .is_some_and(|r| r >= Role::Write)
            {
                writable |= n > 0;
            } else if n > 0 {
                held.push((doc, n));
            }
        }
        if held.is_empty() && self.access().doc_meta(case)?.is_none() {
            return Err(Error::UnknownCase(case.to_hex()));
        }
        if held.is_empty() {
            return Err(if writable {
                HeldError::StillWritable
            } else {
                HeldError::NothingHeld
            }
            .into());
        }
        if let Some(path) = save_to {
            let mut text = self.docs().read_case(case, case_markdown)?;
            if held.iter().any(|(d, _)| Some(*d) == private) {
                text.push_str("# psychotherapy notes\n\n");
                for e in self.read_private(case, |p| p.entries())? {
                    text.push_str(&format!("## {} ({}, {})\n{}\n\n", e.id, e.by, e.at, e.text));
                }
            }
            write_new_private(path, text.as_bytes())?;
        }
        let total = held.iter().map(|(_, n)| n).sum();
        self.atomically(|home| {
            for (doc, _) in &held {
                home.store.remove_outbox_changes(doc)?;
                // The held changes are in this device's copy too, and
                // anything written later would build on them, which no
                // other device ever receives. The copy goes; the next sync
                // fetches it again from the relay if this account may
                // still read it.
                home.store.forget_doc_content(doc)?;
                home.cache.forget(doc);
                home.forget_held(doc)?;
            }
            let what = match save_to {
                Some(p) => format!("{total} held edit(s) saved to {} and removed", p.display()),
                None => format!("{total} held edit(s) discarded"),
            };
            home.trail().record(&what, Some(*case))
        })?;
        Ok(total)
    }
}

/// The case as Markdown: profile, then each note as it reads here, with
/// what was written here after a signature kept apart.
fn case_markdown(c: &crate::notes::CaseDoc) -> String {
    let mut out = format!(
        "# {}\n\n{}\n",
        c.name(),
        crate::notes::profile_to_markdown(&c.profile())
    );
    for n in c.notes() {
        out.push_str(&format!(
            "# note {} ({})\n\n{}\n",
            n.id,
            n.date,
            n.to_markdown()
        ));
        // A signed note reads as signed; what was written here after it
        // is kept apart, and is part of what was held.
        for l in &n.late_edits {
            out.push_str(&format!(
                "## {} (written on this device, not part of the signed note)\n{}\n\n",
                l.field, l.merged
            ));
        }
        let addenda = n.addenda.iter().map(|r| ("addendum", r));
        for (kind, r) in addenda.chain(n.comments.iter().map(|r| ("comment", r))) {
            out.push_str(&format!("## {kind} ({}, {})\n{}\n\n", r.by, r.at, r.text));
        }
    }
    out
}

/// [`crate::files::write_new_private`], its failure in the core's terms.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_new_private(path, bytes).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{CaseDoc, NoteFormat, NoteInput};

    #[test]
    fn a_saved_case_says_which_remarks_are_addenda_and_which_comments() {
        let mut c = CaseDoc::new("Jordan Avery", "2026-11-20", DocId::random(), b"dev").unwrap();
        c.add_note(
            NoteInput::new("2026-11-20", NoteFormat::Free),
            "n1",
            "Dr. Rivera",
        )
        .unwrap();
        c.add_comment("n1", "Dr. Chen", "2026-11-21T10:00:00Z", "Agree.")
            .unwrap();
        c.sign_note("n1", "Dr. Rivera", "2026-11-21T11:00:00Z")
            .unwrap();
        c.add_addendum("n1", "Dr. Rivera", "2026-11-22T09:00:00Z", "Called back.")
            .unwrap();
        let md = case_markdown(&c);
        assert!(md.contains("## comment (Dr. Chen, "), "{md}");
        assert!(md.contains("## addendum (Dr. Rivera, "), "{md}");
        assert!(!md.contains("remark"), "{md}");
    }
}
