//! Cases and session notes: writing, signing, settling late edits, and
//! every read of clinical content, each recorded in the audit trail with
//! its case and note.

use casebook_shared::ids::DocId;

use crate::clock;
use crate::docs::Hit;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::notes::{
    CaseSummary, ChangeHash, LateEditChoice, Note, NoteInput, NoteSummary, PrivateEntry, Profile,
    new_note_id,
};
use crate::sharing::SharedWithMe;

/// A case as its page shows it.
#[derive(Clone, Debug)]
pub struct CaseView {
    pub id: DocId,
    pub summary: CaseSummary,
    pub profile: Profile,
    /// Every note, by date; signed ones as signed.
    pub notes: Vec<Note>,
    /// See [`CaseListed::shared`].
    pub shared: Option<SharedWithMe>,
}

impl CaseView {
    /// Each outcome measure's scores over the case's session notes, as
    /// signed where a note is signed.
    pub fn scores(&self) -> Vec<crate::notes::Series> {
        crate::notes::series(self.notes.iter().map(|n| {
            (
                n.date.as_str(),
                n.id.as_str(),
                n.is_signed(),
                n.scores.as_slice(),
            )
        }))
    }
}

/// A case as a listing shows it.
#[derive(Clone, Debug)]
pub struct CaseListed {
    pub id: DocId,
    pub summary: CaseSummary,
    /// How this account holds a colleague's case: the share, active,
    /// expired or ended (what arrived while it lasted stays readable, and
    /// a person must be able to tell it is no longer theirs to work on).
    /// `None` for a case of this account's own.
    pub shared: Option<SharedWithMe>,
}

impl Home {
    /// The name notes are written and signed under; a device without one
    /// cannot sign (a recovered device before names were asked for).
    fn author(&self) -> Result<String> {
        let name = self.name().trim();
        if name.is_empty() {
            return Err(Error::NoName);
        }
        Ok(name.to_string())
    }

    /// Every open case's summary (closed ones too if `closed`), sorted by
    /// name. Recorded: client names are clinical content.
    pub fn list_cases(&self, closed: bool) -> Result<Vec<CaseListed>> {
        let all = self.docs().cases()?;
        let mut shared = self.shared_with_me_among(&self.store.doc_ids()?, &all)?;
        let cases = all
            .into_iter()
            .filter(|(_, s)| closed || !s.closed)
            .map(|(id, summary)| CaseListed {
                id,
                summary,
                shared: shared
                    .iter()
                    .position(|r| r.case == id)
                    .map(|i| shared.swap_remove(i)),
            })
            .collect();
        self.trail().record("case list viewed", None)?;
        Ok(cases)
    }

    /// Closes a case (it is kept and synced, and left out of lists), or
    /// opens it again.
    pub fn close_case(&mut self, case: &DocId, closed: bool) -> Result<()> {
        let what = if closed {
            "case closed"
        } else {
            "case reopened"
        };
        self.edit_case(case, what, |c| Ok(c.set_closed(closed)?))
    }

    /// Opens a case to read: profile and every note. Recorded as a view.
    pub fn open_case(&mut self, case: &DocId) -> Result<CaseView> {
        let (summary, profile, notes) = self
            .docs()
            .read_case(case, |c| (c.summary(), c.profile(), c.notes()))?;
        let (authors, meta) = (self.authors()?, self.access().doc_meta(case)?);
        let notes = notes
            .into_iter()
            .map(|n| self.vouch(&authors, meta.as_ref(), n))
            .collect();
        let shared = self
            .shared_with_me_among(&[*case], &[(*case, summary.clone())])?
            .pop();
        self.trail().record_view(case)?;
        Ok(CaseView {
            id: *case,
            summary,
            profile,
            notes,
            shared,
        })
    }

    /// A case's notes, one line each. Recorded: dates and states of a
    /// client's sessions are clinical content too.
    pub fn list_notes(&mut self, case: &DocId) -> Result<Vec<NoteSummary>> {
        let notes = self.docs().read_case(case, |c| c.summary().notes)?;
        self.trail().record("note list viewed", Some(*case))?;
        Ok(notes)
    }

    /// One note in full (any unique prefix of its id), recorded with its id.
    pub fn show_note(&mut self, case: &DocId, note: &str) -> Result<Note> {
        Ok(self.show_note_at(case, note)?.0)
    }

    /// [`Self::show_note`], with the case's heads the note was read at: what
    /// a form showing it is drawn from.
    pub fn show_note_at(&mut self, case: &DocId, note: &str) -> Result<(Note, Vec<ChangeHash>)> {
        let (n, heads) = self.note_now(case, note)?;
        let n = self.vouch(&self.authors()?, self.access().doc_meta(case)?.as_ref(), n);
        self.trail()
            .record(&format!("note {} viewed", n.id), Some(*case))?;
        Ok((n, heads))
    }

    /// A note open on a page, as it reads now, with the case's heads it was
    /// read at: for keeping that page current while the person writes.
    /// Not recorded again; opening the note was.
    pub fn note_now(&self, case: &DocId, note: &str) -> Result<(Note, Vec<ChangeHash>)> {
        let (n, heads) = self.docs().read_case_at(case, |c| {
            let id = c.resolve_note_id(note)?;
            c.note(&id).ok_or(crate::notes::NoteError::NoSuchNote(id))
        })?;
        Ok((n?, heads))
    }

    /// Writes a new session note; returns its id.
    pub fn add_note(&mut self, case: &DocId, input: NoteInput) -> Result<String> {
        let by = self.author()?;
        // A person writing a note means to write something; an empty one
        // is a slip (an editor closed without saving, a missing --field).
        if input
            .fields
            .iter()
            .all(|(k, v)| crate::notes::SCALAR_FIELDS.contains(&k.as_str()) || v.trim().is_empty())
        {
            return Err(crate::notes::NoteError::Empty(
                "a note's text (write at least one section)",
            )
            .into());
        }
        let id = new_note_id();
        let nid = id.clone();
        self.edit_case(case, &format!("note {id} added"), move |c| {
            Ok(c.add_note(input, &nid, &by)?)
        })?;
        Ok(id)
    }

    /// Changes fields of an unsigned note; returns the note's whole id (the
    /// caller may have named it by a prefix), as the other note operations do.
    pub fn edit_note(
        &mut self,
        case: &DocId,
        note: &str,
        fields: &[(String, String)],
    ) -> Result<String> {
        let id = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        self.edit_case(case, &format!("note {id} edited"), |c| {
            Ok(c.edit_note(&id, fields)?)
        })?;
        Ok(id)
    }

    /// Changes an unsigned note from a form drawn when the case's heads
    /// were `base` (as [`Home::note_now`] reads them):
    /// only what the person changed since is written, where those
    /// characters are now, so another device's edit made meanwhile stays.
    /// This is how the page saves a draft, as the person types and when
    /// they choose Save: a run of such saves is one line of the audit
    /// trail.
    pub fn edit_note_from(
        &mut self,
        case: &DocId,
        note: &str,
        fields: &[(String, String)],
        base: &[ChangeHash],
    ) -> Result<String> {
        let id = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        self.edit_case_typed(case, &format!("note {id} edited"), |c| {
            Ok(c.edit_note_from(&id, fields, base)?)
        })?;
        Ok(id)
    }

    /// Signs a note under this device's name, now. The signature covers the
    /// note as this device holds it; anything that merges in later shows
    /// apart as a late edit.
    pub fn sign_note(&mut self, case: &DocId, note: &str) -> Result<String> {
        let by = self.author()?;
        let at = clock::rfc3339(self.now());
        let id = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        self.edit_case(case, &format!("note {id} signed"), |c| {
            Ok(c.sign_note(&id, &by, &at)?)
        })?;
        Ok(id)
    }

    /// Adds a dated addendum to a signed note.
    pub fn add_addendum(&mut self, case: &DocId, note: &str, text: &str) -> Result<String> {
        let by = self.author()?;
        let at = clock::rfc3339(self.now());
        let id = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        self.edit_case(case, &format!("note {id}: addendum added"), |c| {
            Ok(c.add_addendum(&id, &by, &at, text)?)
        })?;
        Ok(id)
    }

    /// Settles an edit that another device made to a signed note before it
    /// saw the signature: kept as an addendum, or discarded. The audit
    /// records which, with the field.
    pub fn settle_late_edit(
        &mut self,
        case: &DocId,
        note: &str,
        field: &str,
        choice: LateEditChoice,
    ) -> Result<String> {
        let by = self.author()?;
        let at = clock::rfc3339(self.now());
        let id = self.docs().read_case(case, |c| c.resolve_note_id(note))??;
        let what = match choice {
            LateEditChoice::Addendum => {
                format!("note {id}: late edit to {field} kept as an addendum")
            }
            LateEditChoice::Discard => format!("note {id}: late edit to {field} discarded"),
        };
        self.edit_case(case, &what, |c| {
            Ok(c.settle_late_edit(&id, field, choice, &by, &at)?)
        })?;
        Ok(id)
    }

    /// Adds a psychotherapy (process) note to the case's private document;
    /// returns its id.
    pub fn add_private_note(&mut self, case: &DocId, text: &str) -> Result<String> {
        let by = self.author()?;
        let at = clock::rfc3339(self.now());
        self.edit_private(case, |p| Ok(p.add(text, &by, &at)?))
    }

    /// A case's psychotherapy notes, recorded as a view of them.
    pub fn private_notes(&mut self, case: &DocId) -> Result<Vec<PrivateEntry>> {
        let entries = self.read_private_vouched(case)?;
        self.trail()
            .record("psychotherapy notes viewed", Some(*case))?;
        Ok(entries)
    }

    /// Searches every case and its private notes. Each case with a hit is
    /// recorded (with the notes it showed), since the snippets are content.
    pub fn search(&mut self, needle: &str, include_private: bool) -> Result<Vec<Hit>> {
        Ok(self.search_first(needle, include_private, usize::MAX)?.0)
    }

    /// The best `limit` hits of a search, and how many there were in all.
    /// Only the hits returned are shown, so only their cases are recorded.
    pub fn search_first(
        &mut self,
        needle: &str,
        include_private: bool,
        limit: usize,
    ) -> Result<(Vec<Hit>, usize)> {
        let (hits, total) = self.find(needle, include_private, limit)?;
        let mut cases: Vec<DocId> = hits.iter().map(|h| h.case).collect();
        cases.sort();
        cases.dedup();
        self.atomically(|home| {
            for case in &cases {
                let mut notes: Vec<&str> = hits
                    .iter()
                    .filter(|h| h.case == *case)
                    .filter_map(|h| h.note.as_deref())
                    .collect();
                notes.sort();
                notes.dedup();
                let private = hits.iter().any(|h| h.case == *case && h.private);
                let mut what = String::from("search results shown");
                if !notes.is_empty() {
                    what.push_str(&format!(": notes {}", notes.join(", ")));
                }
                if private {
                    what.push_str(" (psychotherapy notes included)");
                }
                home.trail().record(&what, Some(*case))?;
            }
            Ok(())
        })?;
        Ok((hits, total))
    }
}

#[cfg(test)]
mod tests {
    use crate::home::{Home, Setup};
    use crate::notes::{NoteFormat, NoteInput};

    /// A draft saved as it is typed is one line of the trail for a stretch
    /// of editing; a pause, another note, or anything in between begins
    /// another.
    /// A home set up offline, with a clock the test moves.
    fn home(dir: &std::path::Path) -> (Home, Setup) {
        let setup = Setup {
            kdf: crate::store::KdfParams::FOR_SIMULATION,
            clock: casebook_shared::clock::Clock::adjustable(),
            ..Setup::default()
        };
        let (home, _) = Home::init_with(
            &dir.join("home"),
            b"pass",
            "Dr. Rivera",
            "127.0.0.1:1",
            [0; 32],
            &setup,
        )
        .unwrap();
        (home, setup)
    }

    /// A second handle opened with the first one's key (the page's
    /// background sync) reads and writes the same home.
    #[test]
    fn a_second_handle_shares_the_home_without_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = home(dir.path());
        let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
        let entries = |h: &Home| h.trail().entries().unwrap().len();
        let before = entries(&home);
        let mut again = home.open_again().unwrap();
        assert_eq!(entries(&home), before, "its unlock was recorded already");
        assert_eq!(again.device_id(), home.device_id());
        let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
        input.fields.push(("plan".into(), "Sleep diary".into()));
        let note = again.add_note(&case, input).unwrap();
        assert_eq!(
            home.note_now(&case, &note).unwrap().0.field("plan"),
            "Sleep diary"
        );
        assert!(home.trail().verify().is_ok());
    }

    #[test]
    fn a_run_of_typed_saves_is_one_line_of_the_audit_trail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, setup) = home(dir.path());
        let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
        let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
        input.fields.push(("plan".into(), "Keep".into()));
        let note = home.add_note(&case, input).unwrap();
        let edited = |home: &Home| {
            let trail = home.trail().entries().unwrap();
            trail
                .iter()
                .filter(|e| e.what == format!("note {note} edited"))
                .count()
        };
        let mut plan = String::from("Keep");
        let mut type_some = |home: &mut Home, n: usize| {
            for _ in 0..n {
                plan.push('a');
                let (_, heads) = home.note_now(&case, &note).unwrap();
                home.edit_note_from(&case, &note, &[("plan".into(), plan.clone())], &heads)
                    .unwrap();
            }
        };
        type_some(&mut home, 20);
        assert_eq!(edited(&home), 1);
        // Nine minutes on, still the same stretch.
        setup.clock.advance(9 * 60);
        type_some(&mut home, 3);
        assert_eq!(edited(&home), 1);
        // Eleven minutes after the line: a new one.
        setup.clock.advance(2 * 60);
        type_some(&mut home, 1);
        assert_eq!(edited(&home), 2);
        // Something else recorded in between begins another.
        home.show_note_at(&case, &note).unwrap();
        type_some(&mut home, 2);
        assert_eq!(edited(&home), 3);
        // An edit from the CLI is always its own line.
        home.edit_note(&case, &note, &[("plan".into(), "Diary".into())])
            .unwrap();
        assert_eq!(edited(&home), 4);
        assert!(home.trail().verify().unwrap() > 0);
    }
}
