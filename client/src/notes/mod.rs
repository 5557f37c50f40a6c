//! Case files and session notes as Automerge documents.
//!
//! Each case is two documents: a [`CaseDoc`] with the case's name, profile and
//! session notes, and a [`PrivateDoc`] for psychotherapy (process) notes. The
//! private notes live apart because the law treats them apart: they are shared
//! with no colleague and left out of an ordinary records export, so a separate
//! document (with its own key) is simpler than filtering one.
//!
//! Devices merge edits with Automerge. Every device writes as its own actor,
//! text fields are Automerge `Text` edited with minimal splices, and every
//! object a later edit touches is created when its parent is, so two devices
//! never race to create the same field and lose one side's words.
//!
//! Sync moves opaque byte batches: [`CaseDoc::changes_since`] on one side,
//! [`CaseDoc::apply`] on the other. A batch is validated before any of it is
//! applied, and a batch that fails leaves the document as it was.

#[cfg(test)]
mod attribution_tests;
mod authors;
#[cfg(test)]
mod bytes_tests;
mod case;
mod format;
pub(crate) mod lineage;
mod live_edit;
mod note;
mod private;
#[cfg(test)]
mod proptests;
mod remarks;
mod replica;
mod retention;
mod scores;
mod search;
mod served;
mod signing;
mod template;
#[cfg(test)]
mod tests;

pub use automerge::ChangeHash;
pub use case::CaseDoc;
pub use format::{
    COMMON_FIELDS, NoteFormat, PROFILE_FIELDS, SCALAR_FIELDS, new_note_id, parse_date,
    parse_duration, parse_start_time,
};
pub(crate) use lineage::HeldChange;
pub use note::{CaseSummary, LateEdit, Note, NoteInput, NoteSummary, Profile, Remark};
pub use private::{PrivateDoc, PrivateEntry};
pub(crate) use replica::Replica;
pub use replica::written_by;
pub(crate) use served::Unserved;

/// The changes a batch builds on from outside itself (see
/// `Replica::base_of`); `None` when the bytes are not change chunks.
pub(crate) fn base_of(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    replica::Replica::base_of(bytes)
}

/// See `Replica::tips_of`.
pub(crate) fn tips_of(bytes: &[u8], device: &[u8]) -> Option<Vec<(ChangeHash, u64)>> {
    replica::Replica::tips_of(bytes, device)
}
pub use scores::{
    SCORE_PREFIX, STANDARD, ScorePoint, Series, Standard, band, measure_name, score_field,
    score_value, series, standard,
};
pub use search::{CaseIndex, Field, SearchHit, SearchUnit, search_units};
pub(crate) use search::{Judged, Query};
pub use signing::LateEditChoice;
pub use template::{
    markdown_to_fields, markdown_to_profile, note_to_markdown, profile_to_markdown,
};

/// What can go wrong reading or changing a case or private-notes document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Changes that build on changes not here, with nothing here to wait
    /// in: the document's first changes are missing.
    #[error("the changes this builds on, the document's first among them, have not arrived")]
    MissingDeps,
    #[error("{0} holds control characters; type it as plain text")]
    ControlCharacters(&'static str),
    #[error("unknown note format {0:?}; valid formats: soap, dap, birp, free")]
    UnknownFormat(String),
    #[error("invalid date {0:?}: expected a calendar date written YYYY-MM-DD")]
    InvalidDate(String),
    #[error("invalid start time {0:?}: expected a 24-hour time written HH:MM")]
    InvalidTime(String),
    #[error("invalid duration {0:?}: expected whole minutes from 1 to 1440")]
    InvalidDuration(String),
    #[error("unknown field {field:?} for {context}; valid fields: {valid}")]
    UnknownField {
        field: String,
        context: String,
        valid: String,
    },
    #[error("field {0:?} is given more than once")]
    DuplicateField(String),
    #[error("invalid note id {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidNoteId(String),
    #[error("a note with id {0} already exists in this case")]
    NoteExists(String),
    #[error("no note {0} in this case")]
    NoSuchNote(String),
    #[error("note id prefix {0:?} matches more than one note: {1}")]
    AmbiguousNoteId(String, String),
    #[error("note {0} is signed and can no longer be edited; add an addendum instead")]
    Signed(String),
    #[error("note {0} is already signed; later corrections go in an addendum")]
    AlreadySigned(String),
    #[error("the session length is given twice and the two disagree ({0} and {1} minutes)")]
    DurationTwice(u32, u32),
    #[error("note {0} is not signed yet; edit the note itself (addenda are for signed notes)")]
    NotSigned(String),
    #[error("note {0} has no late edit to {1:?}")]
    NoLateEdit(String, String),
    #[error(
        "{0:?} is not a measure's name: use up to 40 letters, digits, spaces and - _ ( ) . / % # +"
    )]
    InvalidMeasure(String),
    #[error("{measure} score {value:?}: {why}")]
    InvalidScore {
        measure: String,
        value: String,
        why: String,
    },
    #[error(
        "this form was drawn from a version of the case this device does not hold; open the note again"
    )]
    StaleForm,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("no private entry {0}")]
    NoSuchEntry(String),
    #[error("text before the first \"## field\" heading: {0:?}")]
    TextBeforeHeading(String),
    #[error("not a {expected} document (its kind is {found:?})")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error(
        "these changes belong to a different {0} document (they would give it a second {1:?}); nothing was applied"
    )]
    ForeignChanges(&'static str, &'static str),
    #[error("a commenter's change does more than comment: {0}")]
    NotOnlyComments(String),
    #[error("malformed document data: {0}")]
    Malformed(String),
    #[error("Automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// Results in this module.
pub type Result<T, E = NoteError> = std::result::Result<T, E>;
