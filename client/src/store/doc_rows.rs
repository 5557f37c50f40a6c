//! Reading a document's row whole: its body with the revision it is, and
//! every listed document's revision, for the copies kept in memory.

use casebook_shared::ids::DocId;
use rusqlite::OptionalExtension;

use super::{Sealed, Store, StoreError};

impl Store {
    /// A document's saved body and the revision it is, read together.
    pub fn doc_body_rev(&self, doc: &DocId) -> Result<Option<(Sealed, i64)>, StoreError> {
        let row: Option<(Option<Vec<u8>>, i64)> = self
            .query_row(
                "SELECT body, rev FROM docs WHERE doc = ?1",
                [&doc.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((Some(sealed), rev)) => {
                Ok(Some((self.unseal("docs.body", &doc.0, &sealed)?, rev)))
            }
            _ => Ok(None),
        }
    }

    /// Every document that has a summary, with its revision: what a
    /// listing kept in memory checks itself against.
    pub fn summary_revs(&self) -> Result<Vec<(DocId, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc, rev FROM docs WHERE summary IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, rev) = r?;
            let id =
                DocId(id.try_into().map_err(|_| {
                    StoreError::Damaged("a document id has the wrong length".into())
                })?);
            out.push((id, rev));
        }
        Ok(out)
    }
}
