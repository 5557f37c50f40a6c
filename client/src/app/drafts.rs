//! Text a person typed that could not be saved yet: kept, sealed in the
//! home like everything else, until they open it again. Typed text is
//! never thrown away on an error.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Home, Result};

/// The one kept draft of a note.
const DRAFT: &str = "note_draft";

/// A note's draft: its format, and the text as typed in the editor.
#[derive(Clone, Debug, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Draft {
    pub format: String,
    pub text: String,
}

impl Home {
    /// Keeps a note's draft (replacing an older one).
    pub fn keep_draft(&self, draft: &Draft) -> Result<()> {
        let bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(draft).expect("two strings always serialize"),
        );
        Ok(self.store.put_secret(DRAFT, &bytes)?)
    }

    /// The kept draft, if any.
    pub fn draft(&self) -> Result<Option<Draft>> {
        match self.store.get_secret(DRAFT)? {
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|_| Error::Inconsistent("the kept draft does not read".into())),
            None => Ok(None),
        }
    }

    /// Forgets the kept draft, once it was saved as a note.
    pub fn drop_draft(&self) -> Result<()> {
        Ok(self.store.delete_secret(DRAFT)?)
    }
}
