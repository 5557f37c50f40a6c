//! What a request needs of the verified logs, from memory when held and
//! otherwise read from the store and verified again ([`crate::state`]).

use std::sync::Arc;

use casebook_shared::access::{AccessError, DocState};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::Relay;
use crate::state::{Account, Doc, Fetched};
use crate::storage::{DocRecord, Storage, StoreError};

/// Rounds of reading the accounts a log names before it is called damaged
/// (each round reads every account the last one found missing).
const ROUNDS: usize = 8;

impl<S: Storage> Relay<S> {
    /// An account, verified; `None` if the store has no log of it.
    pub(super) async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
        let seen = {
            let st = self.read();
            if let Some(a) = st.account_entry(id) {
                return Ok(Some(a));
            }
            st.generation()
        };
        let log = self.store.account_log(*id).await?;
        if log.is_empty() {
            return Ok(None);
        }
        self.write().hold_account(*id, log, Some(seen)).map(Some)
    }

    /// A document, verified; `None` if the store has none.
    pub(super) async fn doc(&self, id: &DocId) -> Result<Option<Arc<Doc>>, StoreError> {
        let seen = {
            let st = self.read();
            if let Some(d) = st.doc(id) {
                return Ok(Some(d));
            }
            st.generation()
        };
        match self.store.doc_record(*id).await? {
            Some(record) => self.hold_record(*id, &record, Some(seen)).await.map(Some),
            None => Ok(None),
        }
    }

    /// Each of `ids` the store has, verified.
    pub(super) async fn docs(&self, ids: &[DocId]) -> Result<Vec<(DocId, Arc<Doc>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.doc(id).await? {
                out.push((*id, d));
            }
        }
        Ok(out)
    }

    /// Verifies and holds a document as stored (read after `seen`, see
    /// [`crate::state::State::hold_account`]), reading the accounts its log
    /// names first.
    pub(super) async fn hold_record(
        &self,
        id: DocId,
        record: &DocRecord,
        seen: Option<u64>,
    ) -> Result<Arc<Doc>, StoreError> {
        let mut fetched = Fetched::new();
        for _ in 0..ROUNDS {
            let missing = match self.write().hold_doc(id, record, &fetched, seen)? {
                Ok(d) => return Ok(d),
                Err(missing) => missing,
            };
            self.fetch_accounts(missing, &mut fetched).await?;
        }
        Err(StoreError::Damaged(format!(
            "document {} names accounts that have no log",
            id.short()
        )))
    }

    /// Checks new access entries for `doc` (held as `held`, or new),
    /// reading the accounts they name first.
    pub(super) async fn check_access(
        &self,
        doc: &DocId,
        held: Option<&Doc>,
        entries: &[Signed],
    ) -> Result<Result<DocState, AccessError>, StoreError> {
        let mut fetched = Fetched::new();
        for _ in 0..ROUNDS {
            let (checked, missing) = self.read().check_access(doc, held, entries, &fetched);
            if checked.is_ok() || missing.is_empty() {
                return Ok(checked);
            }
            let before = fetched.len();
            self.fetch_accounts(missing, &mut fetched).await?;
            if fetched.len() == before {
                // Named, but the store has no log of it: the check says so.
                return Ok(checked);
            }
        }
        Ok(self.read().check_access(doc, held, entries, &fetched).0)
    }

    /// Reads accounts into `fetched` (and holds them).
    async fn fetch_accounts(
        &self,
        ids: Vec<AccountId>,
        fetched: &mut Fetched,
    ) -> Result<(), StoreError> {
        // From the store whatever is held: a log held may be older than
        // an entry that names it (another node appended to it).
        for a in ids {
            let seen = self.read().generation();
            let log = self.store.account_log(a).await?;
            if !log.is_empty() {
                let acct = self.write().hold_account(a, log, Some(seen))?;
                fetched.insert(a, acct);
            }
        }
        Ok(())
    }

    /// Stored bytes of what `owner` owns, and what uploads bring now.
    pub(super) async fn usage(&self, owner: &AccountId) -> Result<u64, StoreError> {
        if let Some(n) = self.read().usage(owner) {
            return Ok(n);
        }
        let at = std::time::Instant::now();
        let stored = self.store.owner_usage(*owner).await?;
        let mut st = self.write();
        st.hold_usage(*owner, stored, at);
        Ok(st.usage(owner).unwrap_or(stored))
    }
}
