//! Plain values read out of a case document, and the readers that build them.
//!
//! Readers never fail: a field that is missing or of the wrong type reads as
//! empty, so a damaged document or one from another client version still
//! shows whatever it holds. Whole notes are read from a hydrated copy; the
//! few checks before an edit read the live document.

use super::format::{NoteFormat, SCALAR_FIELDS};
use super::replica::{hydrated_string, string};
use super::scores::SCORE_PREFIX;
use automerge::{ObjId, ReadDoc, hydrate};
use casebook_shared::ids::DocId;
use serde::{Deserialize, Serialize, Serializer};

/// What a new note starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteInput {
    /// The session date, `YYYY-MM-DD`.
    pub date: String,
    /// The session start, `HH:MM`.
    pub start_time: Option<String>,
    /// The session length in minutes.
    pub duration: Option<u32>,
    pub format: NoteFormat,
    /// `(field, value)` pairs: the format's sections, [`COMMON_FIELDS`], or
    /// [`SCALAR_FIELDS`] (which override the fields above, so an editor
    /// template can carry them).
    ///
    /// [`COMMON_FIELDS`]: super::COMMON_FIELDS
    pub fields: Vec<(String, String)>,
}

impl NoteInput {
    /// An input with no times and no text yet.
    pub fn new(date: impl Into<String>, format: NoteFormat) -> Self {
        Self {
            date: date.into(),
            start_time: None,
            duration: None,
            format,
            fields: Vec::new(),
        }
    }
}

/// A session note as it reads now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: String,
    pub date: String,
    pub start_time: Option<String>,
    pub duration: Option<u32>,
    pub format: NoteFormat,
    pub created_by: String,
    /// The device that made the note (and wrote its author's name), read
    /// off its operations, in hex; the caller that knows accounts names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by_device: Option<String>,
    /// Who made the note cannot be vouched for (see `Remark::unverified`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub creator_unverified: bool,
    pub signed_by: Option<String>,
    /// The name the signature itself carries, where it is not the one
    /// `signed_by` now shows: the signer was renamed since (on this device
    /// or its own), or typed another name. Set by the caller that vouches
    /// for the signer; the record keeps the name it was signed under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_as: Option<String>,
    pub signed_at: Option<String>,
    /// The device that wrote the signature, read off its operations (a
    /// change can only be written as the device that sealed it), in hex.
    /// The name in `signed_by` is what that device typed; the caller that
    /// knows accounts checks the two agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by_device: Option<String>,
    /// The devices (hex) whose writing the content shows now, read off its
    /// operations; the caller that knows accounts turns them into
    /// `edited_by`.
    #[serde(skip)]
    pub content_devices: Vec<String>,
    /// Everyone besides the note's maker whose writing its content shows
    /// now: a colleague with the write role who edited it, by the name this
    /// device knows them by; a device this one cannot vouch for is named as
    /// such.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub edited_by: Vec<String>,
    /// Every text field: the format's sections, then the common fields, then
    /// any other text field a newer client wrote. Printed as a JSON object in
    /// this order.
    #[serde(serialize_with = "ordered_map")]
    pub fields: Vec<(String, String)>,
    /// Outcome measures' scores as `(measure, value)`, by measure name; the
    /// values are the canonical text of each number.
    #[serde(serialize_with = "ordered_map", skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<(String, String)>,
    /// Additions after signing, oldest first.
    pub addenda: Vec<Remark>,
    /// Colleagues' comments, in the order they merged.
    pub comments: Vec<Remark>,
    /// Edits written on another device before it saw the signature, which
    /// merged in afterwards: never part of the signed note, shown apart
    /// until the author keeps them as an addendum or discards them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub late_edits: Vec<LateEdit>,
    /// The content at the recorded heads does not hash to what the signer
    /// recorded: the signature cannot be relied on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signature_broken: bool,
}

/// A field of a signed note whose value changed after signing, by an edit
/// made concurrently with the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateEdit {
    pub field: String,
    /// The value that was signed (shown as the note).
    pub signed: String,
    /// The value with the late edit merged in.
    pub merged: String,
}

impl Note {
    /// A text field's value; empty if the note has no such field.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v)
    }

    pub fn is_signed(&self) -> bool {
        self.signed_by.is_some()
    }

    /// The [`SCALAR_FIELDS`], text fields and scores (as `score:NAME`) as
    /// `(name, value)` pairs, the shape
    /// [`CaseDoc::edit_note`](super::CaseDoc::edit_note) and the editor
    /// template take.
    pub fn editable_fields(&self) -> Vec<(String, String)> {
        let scalars = [
            self.date.clone(),
            self.start_time.clone().unwrap_or_default(),
            self.duration.map(|d| d.to_string()).unwrap_or_default(),
        ];
        SCALAR_FIELDS
            .iter()
            .map(|f| f.to_string())
            .zip(scalars)
            .chain(self.fields.iter().cloned())
            .chain(
                self.scores
                    .iter()
                    .map(|(m, v)| (format!("{SCORE_PREFIX}{m}"), v.clone())),
            )
            .collect()
    }
}

/// An addendum or a comment: appended, never edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remark {
    /// When, as the caller wrote it (RFC 3339).
    pub at: String,
    /// Who, as the writing device typed it; a caller that knows accounts
    /// replaces it with the name of `device`'s account.
    pub by: String,
    pub text: String,
    /// The device that wrote it, read off its operations, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Who wrote it cannot be vouched for: another device altered it, or
    /// its device is not one this device knows to have the right.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
}

/// A case's profile: the few things that hold across sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub presenting_concerns: String,
    pub treatment_plan: String,
    pub goals: String,
}

impl Profile {
    /// `(field, value)` pairs in [`PROFILE_FIELDS`](super::PROFILE_FIELDS) order.
    pub fn fields(&self) -> Vec<(String, String)> {
        [
            ("presenting_concerns", &self.presenting_concerns),
            ("treatment_plan", &self.treatment_plan),
            ("goals", &self.goals),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// What a case listing shows, stored beside the saved document so that
/// listing cases never loads Automerge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub name: String,
    pub created: String,
    /// Closed (archived): kept and synced, left out of lists by default.
    #[serde(default)]
    pub closed: bool,
    /// Years kept after the last session, when not the account's period.
    #[serde(default)]
    pub retention_years: Option<u32>,
    /// Why the case is under a legal hold, if it is.
    #[serde(default)]
    pub legal_hold: Option<String>,
    pub private_doc: Option<DocId>,
    /// Sorted by date, then id.
    pub notes: Vec<NoteSummary>,
}

/// One line of a case listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteSummary {
    pub id: String,
    pub date: String,
    pub start_time: Option<String>,
    pub format: NoteFormat,
    pub signed: bool,
}

/// Prints `(key, value)` pairs as a map, keeping their order.
fn ordered_map<S: Serializer>(fields: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

/// A note's format; a missing or unknown one reads as free text, whose
/// reader still shows every text field the note holds.
pub(crate) fn read_format(doc: &impl ReadDoc, obj: &ObjId) -> NoteFormat {
    string(doc, obj, "format")
        .and_then(|f| NoteFormat::parse(&f).ok())
        .unwrap_or(NoteFormat::Free)
}

/// A string value, treating absent and empty alike.
fn optional(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    string(doc, obj, key).filter(|s| !s.is_empty())
}

pub(crate) fn is_signed(doc: &impl ReadDoc, obj: &ObjId) -> bool {
    optional(doc, obj, "signed_by").is_some()
}

pub(crate) fn read_summary(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> NoteSummary {
    NoteSummary {
        id: id.to_owned(),
        date: string(doc, obj, "date").unwrap_or_default(),
        start_time: optional(doc, obj, "start_time"),
        format: read_format(doc, obj),
        signed: is_signed(doc, obj),
    }
}

pub(crate) fn read_note(id: &str, note: &hydrate::Map) -> Note {
    let get = |key| hydrated_string(note, key);
    let optional = |key| get(key).filter(|s| !s.is_empty());
    let format = get("format")
        .and_then(|f| NoteFormat::parse(&f).ok())
        .unwrap_or(NoteFormat::Free);
    let mut fields: Vec<(String, String)> = format
        .text_fields()
        .map(|f| (f.to_owned(), get(f).unwrap_or_default()))
        .collect();
    let mut extra: Vec<(String, String)> = note
        .iter()
        .filter(|(key, _)| !format.has_text_field(key))
        .filter_map(|(key, v)| match &v.value {
            hydrate::Value::Text(t) => Some((key.clone(), String::from(t))),
            _ => None,
        })
        .collect();
    extra.sort();
    fields.extend(extra);
    let mut scores: Vec<(String, String)> = note
        .iter()
        .filter_map(|(key, v)| match &v.value {
            hydrate::Value::Scalar(automerge::ScalarValue::Str(s)) => key
                .strip_prefix(SCORE_PREFIX)
                .map(|m| (m.to_owned(), s.to_string())),
            _ => None,
        })
        .collect();
    scores.sort();
    Note {
        id: id.to_owned(),
        date: get("date").unwrap_or_default(),
        start_time: optional("start_time"),
        duration: get("duration").and_then(|d| d.trim().parse().ok()),
        format,
        created_by: get("created_by").unwrap_or_default(),
        created_by_device: None,
        creator_unverified: false,
        signed_by: optional("signed_by"),
        signed_as: None,
        signed_at: optional("signed_at"),
        fields,
        scores,
        addenda: read_remarks(note, "addenda"),
        comments: read_remarks(note, "comments"),
        late_edits: Vec::new(),
        signed_by_device: None,
        content_devices: Vec::new(),
        edited_by: Vec::new(),
        signature_broken: false,
    }
}

/// The `{at, by, text}` maps in a list.
fn read_remarks(note: &hydrate::Map, key: &str) -> Vec<Remark> {
    let Some(hydrate::Value::List(list)) = note.get(key) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|item| match &item.value {
            hydrate::Value::Map(m) => Some(Remark {
                at: hydrated_string(m, "at").unwrap_or_default(),
                by: hydrated_string(m, "by").unwrap_or_default(),
                text: hydrated_string(m, "text").unwrap_or_default(),
                device: None,
                unverified: false,
            }),
            _ => None,
        })
        .collect()
}
