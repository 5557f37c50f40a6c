//! Several relay nodes over one store: what the others wrote reaches this
//! node's memory and its watching devices.
//!
//! Memory is a cache of the store's verified logs. The store's fences keep
//! writes ordered whatever memory holds ([`crate::storage::Fence`], log
//! positions). Reads are kept current by the store's log version: every
//! log append raises it in the same transaction, so before a node answers
//! from memory (a listing, a log, an authentication) it reads what changed
//! since the version it holds ([`Relay::catch_up`], one indexed query when
//! nothing did). No node then serves logs older than what another node
//! acknowledged, which a device would take for a relay rolled back.
//! Notices from the other nodes ([`crate::storage::StoreEvent`]) move
//! heads and wake watching devices; after one was missed, a node catches
//! up and reads every head again.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use casebook_shared::ids::{AccountId, DocId};
use tokio::sync::broadcast::error::RecvError;

use super::{Change, Relay};
use crate::storage::{LogChange, Storage, StoreError, StoreEvent};

/// Documents whose heads one query reads.
const HEADS_PER_QUERY: usize = 10_000;

impl<S: Storage> Relay<S> {
    /// Reads again every log another node changed since memory's version.
    /// Does nothing where no other node writes the store.
    pub(super) async fn catch_up(&self) -> Result<(), StoreError> {
        if !self.shared {
            return Ok(());
        }
        // Nothing changed (the usual case): one indexed read, no waiting
        // behind another request's catch-up or a log append.
        let version = self.store.log_version().await?;
        if version <= self.log_seen.load(Ordering::Acquire) {
            return Ok(());
        }
        // No local log append lands between the read and the swap (it
        // would be held twice).
        let mut applied = self.log_lock.lock().await;
        // A document read now may hold an entry newer than the changes just
        // listed, signed at an account-log length that is newer too; that
        // account change was committed first, so a second listing has it.
        for attempt in 0..2 {
            let (changes, upto) = self.store.log_changes(*applied).await?;
            let mut accounts: Vec<AccountId> = Vec::new();
            let mut docs: Vec<DocId> = Vec::new();
            let mut lost = false;
            for c in changes {
                match c {
                    LogChange::Account(a) if !accounts.contains(&a) => accounts.push(a),
                    LogChange::Access(d) if !docs.contains(&d) => docs.push(d),
                    LogChange::Lost => lost = true,
                    _ => {}
                }
            }
            if lost {
                // Too far behind to know what changed: hold nothing, and
                // have every watching device list everything.
                {
                    let _order = self.order.write().await;
                    self.write().forget_all();
                }
                self.hub.tell_everyone(Change::told(DocId([0; 16]), 0));
                tracing::warn!(
                    "this node fell behind the pruned log changes; it reads every log again"
                );
            }
            match self.reread(&accounts, &docs).await {
                Ok(()) => {
                    *applied = upto;
                    self.log_seen.store(upto, Ordering::Release);
                    return Ok(());
                }
                Err(StoreError::Damaged(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Holds these accounts' and documents' logs as stored (accounts first:
    /// a document's log is verified against them), and tells the devices
    /// watching each document. An account not held is left to be read
    /// when it is needed; every changed document is read, to tell its
    /// readers.
    async fn reread(&self, accounts: &[AccountId], docs: &[DocId]) -> Result<(), StoreError> {
        // Read first (the caller holds the log lock, so no local append
        // lands meanwhile); uploads wait only for the swap.
        let mut logs = Vec::with_capacity(accounts.len());
        for a in accounts {
            if self.read().account_entry(a).is_some() {
                logs.push((*a, self.store.account_log(*a).await?));
            }
        }
        let mut records = Vec::with_capacity(docs.len());
        for doc in docs {
            if let Some(record) = self.store.doc_record(*doc).await? {
                records.push((*doc, record));
            }
        }
        // No upload is checked against half of it.
        let _order = self.order.write().await;
        let seen = {
            let mut st = self.write();
            // What a request read before this (of an account not held,
            // above all) may be older than what was just read: not held.
            st.bump();
            for (a, log) in logs {
                if !log.is_empty() {
                    st.hold_account(a, log, None)?;
                }
            }
            st.generation()
        };
        let mut moved = Vec::with_capacity(records.len());
        for (doc, record) in records {
            let d = self.hold_record(doc, &record, Some(seen)).await?;
            moved.push((Change::told(doc, d.head()), d));
        }
        self.announce(&moved);
        Ok(())
    }

    /// Before refusing on memory's word: the logs and these documents'
    /// heads as stored.
    pub(super) async fn refresh(&self, docs: Vec<DocId>) -> Result<(), StoreError> {
        if !self.shared {
            return Ok(());
        }
        self.catch_up().await?;
        self.refresh_heads(docs).await
    }

    /// Moves these documents' heads up to the store's (those held; one not
    /// held is read with its head when needed).
    pub(super) async fn refresh_heads(&self, docs: Vec<DocId>) -> Result<(), StoreError> {
        let docs: Vec<DocId> = {
            let st = self.read();
            docs.into_iter().filter(|d| st.doc(d).is_some()).collect()
        };
        for chunk in docs.chunks(HEADS_PER_QUERY) {
            let heads = self.store.heads(chunk.to_vec()).await?;
            let mut moved = Vec::new();
            {
                let mut st = self.write();
                for (doc, seq) in heads {
                    if let Some(d) = st.doc(&doc).filter(|d| d.head() < seq) {
                        st.advance(Some(&d), seq);
                        moved.push((Change::told(doc, seq), d));
                    }
                }
            }
            self.announce(&moved);
        }
        Ok(())
    }

    /// Follows what other nodes write until the store stops announcing it;
    /// returns at once for a store no other node writes.
    pub async fn follow(self: Arc<Self>) {
        let Some(mut events) = self.store.events() else {
            return;
        };
        loop {
            let done = match events.recv().await {
                Ok(StoreEvent::Logs) => self.catch_up().await,
                Ok(StoreEvent::Stored { doc, seq, added }) => {
                    self.stored_elsewhere(doc, seq, added).await
                }
                Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    let docs = self.read().held_docs();
                    match self.catch_up().await {
                        Ok(()) => self.refresh_heads(docs).await,
                        Err(e) => Err(e),
                    }
                }
                Ok(StoreEvent::Mailbox) => Ok(()),
                Err(RecvError::Closed) => return,
            };
            if let Err(e) = done {
                crate::metrics::storage_error();
                tracing::error!(error = %e, "reading what another relay node wrote");
            }
        }
    }

    /// Another node stored changes of `doc`: its head and bytes move, and
    /// its readers watching here are told. A document not held is read
    /// (with the head and bytes the store has, this change included).
    async fn stored_elsewhere(&self, doc: DocId, seq: u64, added: i64) -> Result<(), StoreError> {
        let held = self.read().doc(&doc);
        let d = match held {
            Some(d) => {
                let mut st = self.write();
                st.advance(Some(&d), seq);
                st.add_bytes(&d, added);
                crate::metrics::stored_bytes(st.stored);
                d
            }
            None => match self.doc(&doc).await? {
                Some(d) => d,
                None => return Ok(()),
            },
        };
        self.announce(&[(Change::told(doc, seq), d)]);
        Ok(())
    }
}
