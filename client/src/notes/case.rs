//! [`CaseDoc`]: one case's name, profile and session notes.

use super::format::{
    NoteFormat, PROFILE_FIELDS, check_note_id, parse_date, parse_duration, parse_start_time,
};
use super::live_edit::set_text_from;
use super::note::{
    CaseSummary, Note, NoteInput, Profile, is_signed, read_format, read_note, read_summary,
};
use super::replica::{Replica, child, hydrate_map, push_map, set_text, string};
use super::scores::{score_edit, unique_key};
use super::{ChangeHash, NoteError, Result};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, hydrate};
use casebook_shared::ids::DocId;

const KIND: &str = "case";

/// Root keys written once, when the case is created.
const IDENTITY: &[&str] = &["kind", "name", "created", "private_doc", "profile", "notes"];

/// A case document, as one device's replica.
///
/// Root map: `kind: "case"`, `name` (text), `created`, `private_doc` (hex id
/// of the case's [`PrivateDoc`](super::PrivateDoc)), `profile` (map of text
/// fields) and `notes` (map from note id to note map).
pub struct CaseDoc {
    pub(super) replica: Replica,
}

/// One field change in [`CaseDoc::edit_note`], checked before any is made.
enum Edit<'a> {
    Date(String),
    StartTime(Option<String>),
    Duration(Option<u32>),
    Text(&'a str, &'a str),
    /// `score:NAME` and its value; `None` removes it.
    Score(String, Option<String>),
}

impl CaseDoc {
    /// A new case written by `actor`, the device id.
    ///
    /// Every device must write as a distinct actor. Automerge numbers an
    /// actor's changes, so two copies of one document that both write as the
    /// same actor without syncing in between produce clashing changes that
    /// other devices refuse.
    pub fn new(name: &str, created: &str, private_doc: DocId, actor: &[u8]) -> Result<Self> {
        if name.trim().is_empty() {
            return Err(NoteError::Empty("the case name"));
        }
        let mut replica = Replica::new(KIND, IDENTITY, actor)?;
        replica.write(|d| {
            set_text(d, &ROOT, "name", name)?;
            d.put(ROOT, "created", created)?;
            d.put(ROOT, "private_doc", private_doc.to_hex())?;
            let profile = d.put_object(ROOT, "profile", ObjType::Map)?;
            for f in PROFILE_FIELDS {
                d.put_object(&profile, *f, ObjType::Text)?;
            }
            d.put_object(ROOT, "notes", ObjType::Map)?;
            Ok(())
        })?;
        Ok(Self { replica })
    }

    /// Loads a case saved with [`Self::save`], or a whole history from
    /// [`Self::changes_since`] with no heads, to be written by `actor`.
    pub fn load(bytes: &[u8], actor: &[u8]) -> Result<Self> {
        Ok(Self {
            replica: Replica::load(KIND, IDENTITY, bytes, actor)?,
        })
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.replica.save()
    }

    /// The hashes of the latest changes: the state to sync from next time.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.replica.heads()
    }

    /// The changes made after `heads`, as one batch for [`Self::apply`]. With
    /// no heads, the whole history.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.replica.changes_since(heads)
    }

    /// Merges a batch from [`Self::changes_since`] (or a saved document) in
    /// one step. All or nothing; changes already here are skipped. Returns
    /// the number of changes applied (a change whose dependencies have not
    /// arrived waits, see [`Self::missing_deps`], and counts when applied).
    ///
    /// A call costs time in proportion to the whole document (over 0.1 s
    /// for a case of 500 long notes) however small the batch, so concatenate
    /// everything received in one sync round and apply it once. A batch of
    /// changes all already here is recognised without that cost.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<usize> {
        self.replica.apply(bytes)
    }

    /// Whether every change of `bytes` is here already (a saved document,
    /// or bytes that do not decode, answer no).
    pub fn holds(&mut self, bytes: &[u8]) -> bool {
        self.replica.all_known(bytes)
    }

    /// As [`Self::apply`], for a copy the caller drops if this fails: it
    /// makes no copy of its own, so a small batch costs what the batch
    /// costs rather than a copy of the whole document.
    pub fn apply_or_drop(self, bytes: &[u8]) -> Result<(Self, usize)> {
        let (replica, n) = self.replica.apply_or_drop(bytes)?;
        Ok((CaseDoc { replica }, n))
    }

    /// Changes that arrived changes depend on but that have not arrived
    /// themselves: what to ask a peer for. The waiting changes are kept,
    /// [`Self::save`] included, and applied once these arrive.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.replica.missing_deps()
    }

    /// The replica, for what sync asks of any document's history.
    pub(crate) fn replica_mut(&mut self) -> &mut super::Replica {
        &mut self.replica
    }

    /// This device's changes that the saved document `other` lacks (see
    /// `Replica::own_changes_not_in`).
    pub fn own_changes_not_in(
        &mut self,
        other: Option<&[u8]>,
        device: &[u8],
        pending: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        self.replica.own_changes_not_in(other, device, pending)
    }

    /// The case as it was where a batch of changes begins: at the changes
    /// the batch was written against. `Ok(None)` while one of those is not
    /// applied here yet. Judging a colleague's change against this state,
    /// not against whatever this device happens to hold when the change
    /// arrives, makes every device judge it alike.
    pub fn at_base_of(&mut self, batch: &[u8]) -> Result<Option<CaseDoc>> {
        let base = Replica::base_of(batch)
            .ok_or_else(|| NoteError::Malformed("a batch that is not changes".into()))?;
        if !self.replica.has_applied(&base) {
            return Ok(None);
        }
        Ok(Some(CaseDoc {
            replica: self.replica.fork_at(&base)?,
        }))
    }

    /// A copy of this replica, for a trial that may be thrown away.
    pub fn copy(&self) -> CaseDoc {
        CaseDoc {
            replica: self.replica.copy(),
        }
    }

    pub(super) fn doc(&self) -> &AutoCommit {
        &self.replica.doc
    }

    pub fn name(&self) -> String {
        string(self.doc(), &ROOT, "name").unwrap_or_default()
    }

    pub fn set_name(&mut self, name: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(NoteError::Empty("the case name"));
        }
        if crate::names::has_controls(name) {
            return Err(NoteError::ControlCharacters("the case name"));
        }
        self.replica.write(|d| set_text(d, &ROOT, "name", name))
    }

    /// Whether the case is closed (archived).
    pub fn closed(&self) -> bool {
        matches!(
            self.doc().get(&ROOT, "closed"),
            Ok(Some((automerge::Value::Scalar(v), _))) if matches!(v.as_ref(), automerge::ScalarValue::Boolean(true))
        )
    }

    /// Closes (archives) the case or opens it again; every device follows.
    pub fn set_closed(&mut self, closed: bool) -> Result<()> {
        self.replica.write(|d| Ok(d.put(&ROOT, "closed", closed)?))
    }

    /// When the case was created, as its creator wrote it.
    pub fn created(&self) -> String {
        string(self.doc(), &ROOT, "created").unwrap_or_default()
    }

    /// The id of the case's private-notes document.
    pub fn private_doc(&self) -> Option<DocId> {
        string(self.doc(), &ROOT, "private_doc").and_then(|h| DocId::from_hex(&h).ok())
    }

    pub fn profile(&self) -> Profile {
        let doc = self.doc();
        let profile = child(doc, &ROOT, "profile", ObjType::Map);
        let get = |f| {
            profile
                .as_ref()
                .and_then(|p| string(doc, p, f))
                .unwrap_or_default()
        };
        Profile {
            presenting_concerns: get("presenting_concerns"),
            treatment_plan: get("treatment_plan"),
            goals: get("goals"),
        }
    }

    /// Sets profile fields given as `(field, text)` pairs of
    /// [`PROFILE_FIELDS`](super::PROFILE_FIELDS).
    pub fn set_profile(&mut self, fields: &[(String, String)]) -> Result<()> {
        self.set_profile_at(fields, None)
    }

    /// [`Self::set_profile`]; with `base`, as [`Self::set_profile_from`].
    pub(super) fn set_profile_at(
        &mut self,
        fields: &[(String, String)],
        base: Option<&[ChangeHash]>,
    ) -> Result<()> {
        check_unique(fields)?;
        for (field, _) in fields {
            if !PROFILE_FIELDS.contains(&field.as_str()) {
                return Err(NoteError::UnknownField {
                    field: field.clone(),
                    context: "the case profile".into(),
                    valid: PROFILE_FIELDS.join(", "),
                });
            }
        }
        self.replica.write(|d| {
            let profile = match child(d, &ROOT, "profile", ObjType::Map) {
                Some(p) => p,
                None => d.put_object(ROOT, "profile", ObjType::Map)?,
            };
            for (field, text) in fields {
                match base {
                    Some(base) => set_text_from(d, &profile, field, base, text)?,
                    None => set_text(d, &profile, field, text)?,
                }
            }
            Ok(())
        })
    }

    /// Adds a note under `note_id` (see [`new_note_id`](super::new_note_id)),
    /// recording `created_by` (the device id in hex).
    pub fn add_note(&mut self, input: NoteInput, note_id: &str, created_by: &str) -> Result<()> {
        check_note_id(note_id)?;
        let NoteInput {
            mut date,
            mut start_time,
            mut duration,
            format,
            fields,
        } = input;
        check_unique(&fields)?;
        let mut texts = Vec::new();
        let mut scores = Vec::new();
        for (field, value) in &fields {
            if let Some(score) = score_edit(field, value)? {
                scores.push(score);
                continue;
            }
            format.check_field(field)?;
            match field.as_str() {
                "date" => date.clone_from(value),
                "start_time" => start_time = Some(value.clone()),
                "duration" => {
                    let given = parse_optional(value, parse_duration)?;
                    if let (Some(a), Some(b)) = (duration, given)
                        && a != b
                    {
                        return Err(NoteError::DurationTwice(a, b));
                    }
                    duration = given.or(duration);
                }
                _ => texts.push((field.as_str(), value.as_str())),
            }
        }
        let date = parse_date(&date)?;
        let start_time = match start_time {
            Some(t) => parse_optional(&t, parse_start_time)?,
            None => None,
        };
        if let Some(d) = duration
            && !(1..=1440).contains(&d)
        {
            return Err(NoteError::InvalidDuration(d.to_string()));
        }
        if self.note_obj(note_id).is_some() {
            return Err(NoteError::NoteExists(note_id.to_owned()));
        }
        self.replica.write(|d| {
            let notes = notes_map(d)?;
            let note = d.put_object(&notes, note_id, ObjType::Map)?;
            d.put(&note, "id", note_id)?;
            d.put(&note, "date", date)?;
            if let Some(t) = start_time {
                d.put(&note, "start_time", t)?;
            }
            if let Some(m) = duration {
                d.put(&note, "duration", i64::from(m))?;
            }
            d.put(&note, "format", format.as_str())?;
            d.put(&note, "created_by", created_by)?;
            for (key, value) in scores.iter().filter_map(|(k, v)| Some((k, v.as_ref()?))) {
                d.put(&note, key, value.as_str())?;
            }
            // Every text field and list exists from the start, so later edits
            // on different devices all land in the same objects.
            for field in format.text_fields() {
                let text = d.put_object(&note, field, ObjType::Text)?;
                if let Some((_, value)) = texts.iter().find(|(k, _)| *k == field) {
                    d.update_text(&text, value)?;
                }
            }
            d.put_object(&note, "addenda", ObjType::List)?;
            d.put_object(&note, "comments", ObjType::List)?;
            Ok(())
        })
    }

    /// Changes fields of an unsigned note, given as `(field, value)` pairs
    /// as in [`NoteInput::fields`]. Fields not named are left alone; an empty
    /// `start_time` or `duration` removes it.
    ///
    /// Text changes become minimal splices, so an edit to one sentence merges
    /// with another device's edit to the next one.
    pub fn edit_note(&mut self, note_id: &str, fields: &[(String, String)]) -> Result<()> {
        self.edit_note_at(note_id, fields, None)
    }

    /// [`Self::edit_note`]; with `base`, each text is changed from what it
    /// read at those heads (see [`Self::edit_note_from`]).
    pub(super) fn edit_note_at(
        &mut self,
        note_id: &str,
        fields: &[(String, String)],
        base: Option<&[ChangeHash]>,
    ) -> Result<()> {
        let note = self.unsigned_note(note_id)?;
        let format = self.edit_format(&note)?;
        check_unique(fields)?;
        let edits = fields
            .iter()
            .map(|(field, value)| {
                if let Some((key, value)) = score_edit(field, value)? {
                    return Ok(Edit::Score(key, value));
                }
                format.check_field(field)?;
                Ok(match field.as_str() {
                    "date" => Edit::Date(parse_date(value)?),
                    "start_time" => Edit::StartTime(parse_optional(value, parse_start_time)?),
                    "duration" => Edit::Duration(parse_optional(value, parse_duration)?),
                    _ => Edit::Text(field, value),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.replica.write(|d| {
            for edit in edits {
                match edit {
                    Edit::Date(date) => d.put(&note, "date", date)?,
                    Edit::StartTime(Some(t)) => d.put(&note, "start_time", t)?,
                    Edit::Duration(Some(m)) => d.put(&note, "duration", i64::from(m))?,
                    Edit::StartTime(None) => delete_if_present(d, &note, "start_time")?,
                    Edit::Duration(None) => delete_if_present(d, &note, "duration")?,
                    Edit::Text(field, text) => match base {
                        Some(base) => set_text_from(d, &note, field, base, text)?,
                        None => set_text(d, &note, field, text)?,
                    },
                    Edit::Score(key, Some(value)) => d.put(&note, &key, value)?,
                    Edit::Score(key, None) => delete_if_present(d, &note, &key)?,
                }
            }
            Ok(())
        })
    }

    /// Adds an addendum to a signed note; the note itself stays as signed.
    pub fn add_addendum(&mut self, note_id: &str, by: &str, at: &str, text: &str) -> Result<()> {
        let note = self.find_note(note_id)?;
        if !is_signed(self.doc(), &note) {
            return Err(NoteError::NotSigned(note_id.to_owned()));
        }
        self.append_remark(&note, "addenda", "the addendum", by, at, text)
    }

    /// Adds a colleague's comment to a note, signed or not.
    pub fn add_comment(&mut self, note_id: &str, by: &str, at: &str, text: &str) -> Result<()> {
        let note = self.find_note(note_id)?;
        self.append_remark(&note, "comments", "the comment", by, at, text)
    }

    pub(super) fn append_remark(
        &mut self,
        note: &ObjId,
        list: &str,
        what: &'static str,
        by: &str,
        at: &str,
        text: &str,
    ) -> Result<()> {
        if text.trim().is_empty() {
            return Err(NoteError::Empty(what));
        }
        self.replica.write(|d| {
            let l = match child(d, note, list, ObjType::List) {
                Some(l) => l,
                None => d.put_object(note, list, ObjType::List)?,
            };
            push_map(d, &l, &[("at", at), ("by", by), ("text", text)])?;
            Ok(())
        })
    }

    /// Every note, by date, then id.
    pub fn notes(&self) -> Vec<Note> {
        self.notes_as_signed()
            .into_iter()
            .map(|note| self.with_remark_authors(note))
            .collect()
    }

    /// Every note as [`Self::notes`] reads it, without working out who
    /// wrote what (which reads every operation, and is most of the cost):
    /// what a search needs.
    pub(super) fn notes_as_signed(&self) -> Vec<Note> {
        let doc = self.doc();
        let Some(all) = child(doc, &ROOT, "notes", ObjType::Map).and_then(|n| hydrate_map(doc, &n))
        else {
            return Vec::new();
        };
        let mut notes: Vec<Note> = all
            .iter()
            .filter_map(|(id, v)| match &v.value {
                hydrate::Value::Map(note) => Some(self.as_signed(read_note(id, note))),
                _ => None,
            })
            .collect();
        notes.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
        notes
    }

    pub fn note(&self, note_id: &str) -> Option<Note> {
        let obj = self.note_obj(note_id)?;
        let note = self.as_signed(read_note(note_id, &hydrate_map(self.doc(), &obj)?));
        Some(self.with_remark_authors(note))
    }

    /// The full id of the one note whose id starts with `prefix`, so people
    /// can type the first few characters.
    pub fn resolve_note_id(&self, prefix: &str) -> Result<String> {
        if self.note_obj(prefix).is_some() {
            return Ok(prefix.to_owned());
        }
        let matches: Vec<String> = self
            .note_objs()
            .map(|(id, _)| id)
            .filter(|id| !prefix.is_empty() && id.starts_with(prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(NoteError::NoSuchNote(prefix.to_owned())),
            many => Err(NoteError::AmbiguousNoteId(
                prefix.to_owned(),
                many.join(", "),
            )),
        }
    }

    /// The listing to store beside the saved document.
    pub fn summary(&self) -> CaseSummary {
        let doc = self.doc();
        let mut notes: Vec<_> = self
            .note_objs()
            .map(|(id, obj)| read_summary(doc, &id, &obj))
            .collect();
        notes.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
        CaseSummary {
            name: self.name(),
            created: self.created(),
            closed: self.closed(),
            retention_years: self.retention_years(),
            legal_hold: self.legal_hold(),
            private_doc: self.private_doc(),
            notes,
        }
    }

    fn note_objs(&self) -> impl Iterator<Item = (String, ObjId)> + '_ {
        let doc = self.doc();
        let notes = child(doc, &ROOT, "notes", ObjType::Map);
        notes.into_iter().flat_map(move |notes| {
            doc.keys(&notes)
                .filter_map(|id| {
                    let obj = child(doc, &notes, id.as_str(), ObjType::Map)?;
                    Some((id, obj))
                })
                .collect::<Vec<_>>()
        })
    }

    pub(super) fn note_obj(&self, note_id: &str) -> Option<ObjId> {
        let doc = self.doc();
        let notes = child(doc, &ROOT, "notes", ObjType::Map)?;
        child(doc, &notes, note_id, ObjType::Map)
    }

    pub(super) fn find_note(&self, note_id: &str) -> Result<ObjId> {
        self.note_obj(note_id)
            .ok_or_else(|| NoteError::NoSuchNote(note_id.to_owned()))
    }

    /// A note that may still be edited.
    pub(super) fn unsigned_note(&self, note_id: &str) -> Result<ObjId> {
        let note = self.find_note(note_id)?;
        if is_signed(self.doc(), &note) {
            return Err(NoteError::Signed(note_id.to_owned()));
        }
        Ok(note)
    }

    /// A note's format for editing, checked strictly: a format this build
    /// does not know came from a newer client, and editing by the wrong
    /// field list could drop sections.
    fn edit_format(&self, note: &ObjId) -> Result<NoteFormat> {
        match string(self.doc(), note, "format") {
            Some(f) => NoteFormat::parse(&f),
            None => Ok(read_format(self.doc(), note)),
        }
    }
}

impl std::fmt::Debug for CaseDoc {
    /// Shows only the number of notes: names and notes are clinical data and
    /// stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseDoc")
            .field("notes", &self.note_objs().count())
            .finish_non_exhaustive()
    }
}

/// The root `notes` map, created if a damaged document lacks it.
fn notes_map(d: &mut AutoCommit) -> Result<ObjId> {
    match child(d, &ROOT, "notes", ObjType::Map) {
        Some(n) => Ok(n),
        None => Ok(d.put_object(ROOT, "notes", ObjType::Map)?),
    }
}

fn delete_if_present(d: &mut AutoCommit, obj: &ObjId, key: &str) -> Result<()> {
    if d.get(obj, key)?.is_some() {
        d.delete(obj, key)?;
    }
    Ok(())
}

/// Parses a value where empty means absent.
fn parse_optional<T>(value: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        parse(value).map(Some)
    }
}

/// Refuses a field named twice: which value should win is a guess.
pub(crate) fn check_unique(fields: &[(String, String)]) -> Result<()> {
    let keys: Vec<String> = fields.iter().map(|(f, _)| unique_key(f)).collect();
    for (i, (field, _)) in fields.iter().enumerate() {
        if keys[..i].contains(&keys[i]) {
            return Err(NoteError::DuplicateField(field.clone()));
        }
    }
    Ok(())
}
