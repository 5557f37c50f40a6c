//! Text a person typed that could not be saved yet: kept, sealed in the
//! home like everything else, until they open it again. Typed text is
//! never thrown away on an error, and one draft never replaces another.

use casebook_shared::ids::DocId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Inconsistent;
use crate::store::Store;
use crate::{Home, Result};

/// The kept drafts.
const DRAFTS: &str = "note_drafts";

/// A draft: which case (and, for an edit, which note), its format, and the
/// text as typed in the editor.
#[derive(Clone, Debug, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Draft {
    /// The case's id, in hex.
    pub case: String,
    /// The note being edited; `None` for a new note.
    pub note: Option<String>,
    pub format: String,
    pub text: String,
}

impl Home {
    /// The drafts kept in this home.
    pub fn drafts(&self) -> Drafts<'_> {
        Drafts { store: &self.store }
    }
}

/// The part of a [`Home`] that keeps drafts.
pub struct Drafts<'h> {
    store: &'h Store,
}

impl Drafts<'_> {
    /// Forgets every draft of a case (it was disposed of).
    pub(crate) fn drop_case(&self, case: &DocId) -> Result<()> {
        let mut all = self.list()?;
        all.retain(|d| d.case != case.to_hex());
        self.save(&all)
    }

    fn save(&self, all: &[Draft]) -> Result<()> {
        let bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(all).expect("plain strings always serialize"),
        );
        Ok(self.store.put_secret(DRAFTS, &bytes)?)
    }

    /// Every kept draft, oldest first.
    pub fn list(&self) -> Result<Vec<Draft>> {
        match self.store.get_secret(DRAFTS)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| Inconsistent::Drafts(e).into()),
            None => Ok(Vec::new()),
        }
    }

    /// Keeps a draft beside any others.
    pub fn keep(&self, draft: Draft) -> Result<()> {
        let mut all = self.list()?;
        all.push(draft);
        self.save(&all)
    }

    /// Takes out the newest draft of a new note (`note` `None`) or of an
    /// edit to `note`, for `case`. The caller keeps it again if it still
    /// cannot be saved.
    pub fn take(&self, case: &DocId, note: Option<&str>) -> Result<Option<Draft>> {
        let mut all = self.list()?;
        let hex = case.to_hex();
        let Some(i) = all
            .iter()
            .rposition(|d| d.case == hex && d.note.as_deref() == note)
        else {
            return Ok(None);
        };
        let d = all.remove(i);
        self.save(&all)?;
        Ok(Some(d))
    }
}
