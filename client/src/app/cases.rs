//! Cases and their notes as a person makes, edits, reads and searches them:
//! each checks the role it needs, saves through [`crate::docs::Docs`],
//! queues its changes for the relay, and records itself.

use std::sync::Arc;

use casebook_shared::access::Role;
use casebook_shared::ids::{DocId, EnvelopeId};

use crate::docs::{Hit, Loaded, RoleError};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::notes::{CaseDoc, CaseIndex, Judged, PrivateDoc, SearchHit};
use crate::store::OutKind;

impl Home {
    /// Saves a loaded document, and queues its new changes, in one
    /// transaction.
    pub(crate) fn store_loaded(
        &self,
        doc: &DocId,
        loaded: Loaded,
        changes: &[u8],
        kind: OutKind,
    ) -> Result<()> {
        // Sealed now, under the epoch known now, so the envelope is written
        // with the edit and sending it needs no write of its own. One that
        // cannot be sealed yet (no key here, too large) is sealed, or
        // refused, when it is sent; one whose epoch has passed by then is
        // sealed again under the same id.
        let env_id = EnvelopeId::fresh().0;
        let envelope = match changes.is_empty() {
            true => None,
            false => self.access().seal_change(doc, env_id, changes).ok(),
        };
        self.docs()
            .save(doc, loaded, changes, kind, (env_id, envelope))
    }

    /// Renames a case and sets its profile fields, in one change. With
    /// `base` (the case's heads when the form was drawn), each profile
    /// field is changed only where it differs from what it read then, so
    /// another device's edit made meanwhile stays.
    pub fn edit_profile(
        &mut self,
        case: &DocId,
        name: Option<&str>,
        fields: &[(String, String)],
        base: Option<&[crate::notes::ChangeHash]>,
    ) -> Result<()> {
        self.edit_case(case, "case edited", |c| {
            if let Some(n) = name {
                c.set_name(n.trim())?;
            }
            match (fields.is_empty(), base) {
                (true, _) => {}
                (false, Some(base)) => c.set_profile_from(fields, base)?,
                (false, None) => c.set_profile(fields)?,
            }
            Ok(())
        })
    }

    /// Makes a new case (and its private-notes document); returns its id.
    pub fn create_case(&mut self, name: &str, created: &str) -> Result<DocId> {
        self.atomically(|home| home.create_case_inner(name, created))
    }

    fn create_case_inner(&mut self, name: &str, created: &str) -> Result<DocId> {
        let name = crate::names::check(name)?;
        let case_id = DocId::random();
        let private_id = DocId::random();
        let actor = self.docs().actor();
        let mut case = CaseDoc::new(name, created, private_id, actor)?;
        let mut private = PrivateDoc::new(case_id, actor)?;
        let case_changes = case.changes_since(&[]);
        let private_changes = private.changes_since(&[]);
        // The private document first: a case never lists a private document
        // that its devices cannot find.
        self.access().new_doc(&private_id)?;
        self.store_loaded(
            &private_id,
            Loaded::Private(private),
            &private_changes,
            OutKind::Change,
        )?;
        self.access().new_doc(&case_id)?;
        self.store_loaded(&case_id, Loaded::Case(case), &case_changes, OutKind::Change)?;
        self.trail().record("case created", Some(case_id))?;
        Ok(case_id)
    }

    fn check_write(&self, doc: &DocId) -> Result<()> {
        let meta = self
            .access()
            .doc_meta(doc)?
            .ok_or(Inconsistent::NoAccessLog(*doc))?;
        match meta.role_of(&self.account_id(), self.now()) {
            Some(r) if r >= Role::Write => Ok(()),
            Some(r) => Err(RoleError::CannotWrite(r).into()),
            None => Err(RoleError::NoLongerShared.into()),
        }
    }

    /// Edits a case: runs `f`, stores the result and queues the new changes.
    /// A failed edit leaves nothing behind (the copy it touched is dropped).
    pub fn edit_case<T>(
        &mut self,
        id: &DocId,
        what: &str,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        self.check_write(id)?;
        self.change_case(id, what, OutKind::Change, f)
    }

    /// [`Self::edit_case`] for a draft saved from the page (as it is typed,
    /// or with Save): a run of such saves is one line of the audit trail
    /// ([`crate::audit::Trail::record_folded`]).
    pub(crate) fn edit_case_typed<T>(
        &mut self,
        id: &DocId,
        what: &str,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        self.check_write(id)?;
        self.change_case_recorded(id, (what, true), OutKind::Change, f)
    }

    /// Changes a case after the caller has checked the role allows it;
    /// `kind` says whether it was an edit or a comment.
    pub(crate) fn change_case<T>(
        &mut self,
        id: &DocId,
        what: &str,
        kind: OutKind,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        self.change_case_recorded(id, (what, false), kind, f)
    }

    /// [`Self::change_case`], recording `what` folded into a run of the
    /// same when `folded` says so.
    fn change_case_recorded<T>(
        &mut self,
        id: &DocId,
        (what, folded): (&str, bool),
        kind: OutKind,
        f: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        // Read, changed and stored in one transaction: a write by another
        // handle on this home (the page's background sync, a CLI beside a
        // watcher) lands before the read or after the store, never in
        // between, where storing would drop it from the saved document.
        self.edit_atomically(|home| {
            let (mut loaded, _) = home.docs().take_loaded(id)?;
            let Loaded::Case(case) = &mut loaded else {
                return Err(Error::UnknownCase(id.to_hex()));
            };
            let heads = case.heads();
            let out = f(case)?;
            let changes = case.changes_since(&heads);
            home.store_loaded(id, loaded, &changes, kind)?;
            match folded {
                true => home.trail().record_folded(what, Some(*id))?,
                false => home.trail().record(what, Some(*id))?,
            }
            Ok(out)
        })
    }

    /// Edits a case's private (psychotherapy notes) document.
    pub fn edit_private<T>(
        &mut self,
        case_id: &DocId,
        f: impl FnOnce(&mut PrivateDoc) -> Result<T>,
    ) -> Result<T> {
        let private_id = self.private_of(case_id)?;
        self.check_write(&private_id)?;
        // In one transaction, as `change_case` does.
        self.edit_atomically(|home| {
            let (mut loaded, _) = home.docs().take_loaded(&private_id)?;
            let Loaded::Private(p) = &mut loaded else {
                return Err(Inconsistent::NotPrivateDoc.into());
            };
            let heads = p.heads();
            let out = f(p)?;
            let changes = p.changes_since(&heads);
            home.store_loaded(&private_id, loaded, &changes, OutKind::Change)?;
            home.trail().record("private note added", Some(*case_id))?;
            Ok(out)
        })
    }

    /// Reads a case's private document, without recording it.
    pub fn read_private<T>(&self, case_id: &DocId, f: impl FnOnce(&PrivateDoc) -> T) -> Result<T> {
        let private_id = self.private_of(case_id)?;
        self.docs().read_private(&private_id, f)
    }

    /// The psychotherapy-notes document of a case, if this account holds
    /// it (a colleague holds it only if it was shared with the case).
    pub(crate) fn private_of(&self, case_id: &DocId) -> Result<DocId> {
        let (_, _, summary) = self
            .docs()
            .listing()?
            .into_iter()
            .find(|(d, ..)| d == case_id)
            .ok_or_else(|| Error::UnknownCase(case_id.to_hex()))?;
        match summary.private_doc {
            Some(private) if self.access().doc_meta(&private)?.is_some() => Ok(private),
            _ => Err(Error::PrivateNotShared),
        }
    }

    /// The best `limit` hits of a search of every case (and its private
    /// notes, if asked), and how many there were in all; not recorded:
    /// [`Home::search_first`] is the operation a person runs. Stable:
    /// within a score, cases by name and notes by date. Every match is
    /// scored, but snippets are made only for the hits returned.
    pub(crate) fn find(
        &self,
        needle: &str,
        include_private: bool,
        limit: usize,
    ) -> Result<(Vec<Hit>, usize)> {
        let Some(query) = crate::notes::Query::new(needle) else {
            return Ok((Vec::new(), 0));
        };
        /// A match: a unit of a case's index, or a private note's hit.
        enum Found {
            Unit(Arc<CaseIndex>, usize, Judged),
            Private(SearchHit),
        }
        let docs = self.docs();
        let cases = docs.listing()?;
        let mut found: Vec<(u32, usize, Found)> = Vec::new();
        for (at, (id, rev, summary)) in cases.iter().enumerate() {
            let index = docs.case_units_at(id, *rev)?;
            for (unit, judged) in index.matches(&query) {
                found.push((judged.score, at, Found::Unit(index.clone(), unit, judged)));
            }
            // As [`Home::private_of`] has it: only while this account holds
            // the case's psychotherapy notes. One that cannot be read is
            // left out, as before, rather than failing the whole search.
            let held = |p: &DocId| matches!(self.access().doc_meta(p), Ok(Some(_)));
            let private_id = summary.private_doc.filter(|p| include_private && held(p));
            if let Some(private_id) = private_id {
                let private = docs.read_private(&private_id, |p| p.search(needle));
                for hit in private.unwrap_or_default() {
                    found.push((hit.score, at, Found::Private(hit)));
                }
            }
        }
        found.sort_by_key(|(score, ..)| std::cmp::Reverse(*score));
        let total = found.len();
        let hits = found
            .into_iter()
            .take(limit)
            .filter_map(|(_, at, f)| {
                let (private, hit) = match f {
                    Found::Unit(index, unit, judged) => (false, index.hit(&query, unit, judged)?),
                    Found::Private(hit) => (true, hit),
                };
                let (case, _, summary) = &cases[at];
                Some(Hit {
                    case: *case,
                    case_name: summary.name.clone(),
                    private,
                    note: hit.note_id,
                    field: hit.field,
                    snippet: hit.snippet,
                    score: hit.score,
                })
            })
            .collect();
        Ok((hits, total))
    }
}
