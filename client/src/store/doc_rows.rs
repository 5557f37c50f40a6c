//! Reading a document's row whole: its body with the revision it is, and
//! every listed document's revision, for the copies kept in memory; and
//! each case's search text, kept beside its row.

use casebook_shared::ids::DocId;
use rusqlite::OptionalExtension;
use std::sync::atomic::Ordering;
use zeroize::Zeroizing;

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

    /// Every document with its revision: what a listing kept in memory
    /// checks itself against. Read from the index `docs_rev` alone: a
    /// row's `rev` lies after its body, so reading it from the row walks
    /// the body's overflow pages, a whole document read per row.
    pub fn doc_revs(&self) -> Result<Vec<(DocId, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc, rev FROM docs INDEXED BY docs_rev")?;
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

    /// Keeps a case's search text, made from the document at revision
    /// `rev`, sealed to both; only while the document still has its body
    /// at that revision, checked in the same statement, so a document
    /// disposed of or forgotten meanwhile gets no text back. It is a copy
    /// that can be made again: it does not wait for another connection's
    /// write (skipped if one is under way), nor, outside a transaction,
    /// for the disk. Says whether it was kept.
    pub fn put_search_text(&self, doc: &DocId, rev: i64, text: &[u8]) -> Result<bool, StoreError> {
        let sealed = self.seal("search_text", &search_key(doc, rev), text);
        let put = || {
            super::schema::without_waiting(|| {
                self.execute(
                    "INSERT INTO search_text(doc, rev, sealed)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM docs
                         WHERE doc = ?1 AND rev = ?2 AND body IS NOT NULL)
                     ON CONFLICT(doc) DO UPDATE SET rev = excluded.rev, sealed = excluded.sealed
                     WHERE excluded.rev >= search_text.rev",
                    rusqlite::params![&doc.0[..], rev, sealed],
                )
            })
        };
        let written = match self.conn.is_autocommit() && self.waits.load(Ordering::SeqCst) {
            true => self.without_disk_wait(|| Ok::<_, StoreError>(put()))?,
            false => put(),
        };
        match written {
            Ok(n) => Ok(n > 0),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A case's search text, if it was kept at revision `rev`.
    pub fn search_text(
        &self,
        doc: &DocId,
        rev: i64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .query_row(
                "SELECT sealed FROM search_text WHERE doc = ?1 AND rev = ?2",
                rusqlite::params![&doc.0[..], rev],
                |r| r.get(0),
            )
            .optional()?;
        sealed
            .map(|s| self.unseal("search_text", &search_key(doc, rev), &s))
            .transpose()
    }

    /// Forgets a case's search text, with its content.
    pub fn forget_search_text(&self, doc: &DocId) -> Result<(), StoreError> {
        self.execute("DELETE FROM search_text WHERE doc = ?1", [&doc.0[..]])?;
        Ok(())
    }

    /// Forgets every search text whose document no longer has a body: run
    /// before the file is rebuilt, in case one outlived its document.
    pub fn sweep_search_text(&self) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM search_text WHERE NOT EXISTS (SELECT 1 FROM docs
                 WHERE docs.doc = search_text.doc AND docs.body IS NOT NULL)",
            [],
        )?;
        Ok(())
    }
}

/// What a search text is sealed to: its document and the revision it was
/// made from, so it is never read as another's, nor as a later one.
fn search_key(doc: &DocId, rev: i64) -> Vec<u8> {
    let mut key = doc.0.to_vec();
    key.extend_from_slice(&rev.to_le_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_read_only_as_its_own_document_at_its_own_revision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casebook.db");
        let s = Store::create(&path, b"pass").unwrap();
        let (a, b) = (DocId([1; 16]), DocId([2; 16]));
        let rev = s.put_doc(&a, b"body", b"summary").unwrap();
        assert!(s.put_search_text(&a, rev, b"sleep diary").unwrap());
        assert_eq!(
            &s.search_text(&a, rev).unwrap().unwrap()[..],
            b"sleep diary"
        );
        assert!(
            s.search_text(&a, rev + 1).unwrap().is_none(),
            "a later revision"
        );
        // Kept only for a document that has its body at that revision.
        assert!(
            !s.put_search_text(&b, rev, b"x").unwrap(),
            "no such document"
        );
        assert!(
            !s.put_search_text(&a, rev + 1, b"x").unwrap(),
            "not its revision"
        );
        assert!(s.search_text(&b, rev).unwrap().is_none());
        // A row moved to another document, or to another revision, does
        // not open.
        let rev_b = s.put_doc(&b, b"body", b"summary").unwrap();
        s.conn
            .execute(
                "INSERT INTO search_text(doc, rev, sealed) SELECT ?1, rev, sealed FROM search_text WHERE doc = ?2",
                rusqlite::params![&b.0[..], &a.0[..]],
            )
            .unwrap();
        assert!(matches!(
            s.search_text(&b, rev_b),
            Err(StoreError::Damaged(_))
        ));
        s.conn
            .execute(
                "UPDATE search_text SET rev = rev + 1 WHERE doc = ?1",
                [&a.0[..]],
            )
            .unwrap();
        assert!(matches!(
            s.search_text(&a, rev + 1),
            Err(StoreError::Damaged(_))
        ));
        // Commits wait for the disk again after the copy was written.
        assert!(s.waits.load(Ordering::SeqCst));
        // A forgotten document's text goes with it, and none comes back.
        s.forget_doc_content(&a).unwrap();
        let forgotten = s.doc_rev(&a).unwrap();
        assert!(s.search_text(&a, forgotten).unwrap().is_none());
        assert!(!s.put_search_text(&a, forgotten, b"x").unwrap());
        // Behind another connection's write, it is skipped, not waited for.
        let other = Store::open(&path, b"pass").unwrap();
        assert!(other.begin().unwrap());
        other.put_secret("x", b"1").unwrap();
        assert!(!s.put_search_text(&b, rev_b, b"sleep").unwrap());
        other.end(true, true).unwrap();
        assert!(s.put_search_text(&b, rev_b, b"sleep").unwrap());
        // A text that outlived its document is swept before a rebuild.
        s.conn
            .execute("UPDATE docs SET body = NULL WHERE doc = ?1", [&b.0[..]])
            .unwrap();
        s.rewrite().unwrap();
        let left: i64 = s
            .conn
            .query_row("SELECT count(*) FROM search_text", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
