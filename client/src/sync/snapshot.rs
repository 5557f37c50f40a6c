//! Snapshots: a document that has gathered many changes is uploaded whole,
//! so a new device loads one envelope instead of replaying its history,
//! and the relay drops the changes it covers.
//!
//! What it covers is dropped. In a document shared with another account
//! that includes the signals that told of its changes (`sync::signals`),
//! so a device not served the snapshot would be left short without a
//! word. So once the relay has taken a snapshot of such a document, its
//! device sends a change that builds on everything the snapshot holds
//! (`notes::lineage`), in the same round; and, of any document, tells its
//! own newest change again: both lie past what the snapshot covers. (The
//! claims of a document shared with nobody travel in the audit document,
//! which no snapshot of it covers; and that change costs a device that
//! first syncs a load of the document, so it is not sent where it is not
//! needed.)

use std::collections::BTreeSet;

use casebook_shared::codec;
use casebook_shared::envelope::{Envelope, Header, Kind, MAX_ENVELOPE};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, EnvelopeId};

use super::{SNAPSHOT_EVERY, unexpected};
use crate::docs::DocMeta;
use crate::error::Result;
use crate::home::Home;
use crate::net::Relay;
use crate::store::{DocSync, OutKind};

/// Whether this account's device should snapshot a document now: it has
/// gathered changes of weight [`SNAPSHOT_EVERY`] since the last snapshot
/// and has fetched something (a snapshot's `covers` is the highest
/// sequence number fetched, so it never claims a change it lacks); only
/// the owner's devices write snapshots (see `sync::check`), and none of a
/// document disposed of, nor of one that lacks changes its changes build
/// on: the relay drops every change a snapshot covers, and one put back
/// later would be dropped with them.
pub(crate) fn due(sync: &DocSync, meta: &DocMeta, me: &AccountId) -> bool {
    gathered(sync) && meta.owner == *me && !meta.disposed
}

/// The part of [`due`] that needs only the sync record, to skip reading
/// the access state of every document that has not gathered enough.
fn gathered(sync: &DocSync) -> bool {
    sync.since_snapshot >= SNAPSHOT_EVERY && sync.seen > 0 && sync.missing == 0
}

/// Whether a snapshot's sealed body fits in one envelope; one that does
/// not is never sent (its changes stay on the relay, which is only slower
/// for a new device).
fn fits(plain_len: usize) -> bool {
    plain_len <= MAX_ENVELOPE - 1024
}

/// The document's sync record after the relay answered its snapshot:
/// taken at `seq`, the weight toward the next starts again; refused, it is
/// left as it was (a snapshot is an optimisation) and the next round tries
/// again.
fn answered(mut sync: DocSync, answer: &std::result::Result<u64, ErrorCode>) -> Option<DocSync> {
    let seq = answer.as_ref().ok()?;
    sync.since_snapshot = 0;
    sync.acked = sync.acked.max(*seq);
    Some(sync)
}

impl Home {
    /// Uploads a snapshot of each document that has gathered many changes
    /// and that this account may snapshot. Its `covers` is the highest
    /// sequence number fetched, so it never claims a change it lacks.
    /// Nothing is sent of `held_back` (its access log did not verify this
    /// round).
    pub(super) async fn push_snapshots(
        &mut self,
        relay: &Relay,
        held_back: &BTreeSet<DocId>,
    ) -> Result<usize> {
        let me = self.account_id();
        let mut envelopes = Vec::new();
        let mut docs = Vec::new();
        // One kept under a legal hold: the relay holds its disposal. One a
        // refused account log is part of: its edits are held.
        let kept = self.kept_under_hold()?;
        for doc in self.store.doc_ids()? {
            if held_back.contains(&doc)
                || kept.contains(&doc)
                || self.on_a_refused_log(&doc)?.is_some()
            {
                continue;
            }
            let sync = self.docs().sync_record(&doc)?;
            if !gathered(&sync) {
                continue;
            }
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            if !due(&sync, &meta, &me) {
                continue;
            }
            let keys = self.access().doc_keys(&doc)?;
            let (Some(key), Some(body)) = (keys.get(&meta.epoch), self.docs().snapshot_body(&doc)?)
            else {
                continue;
            };
            let plain = codec::encode(&body);
            if !fits(plain.len()) {
                continue;
            }
            let header = Header {
                kind: Kind::Snapshot,
                doc,
                epoch: meta.epoch,
                account: me,
                author: self.device_id(),
                id: EnvelopeId::fresh(),
                covers: sync.seen,
            };
            envelopes.push(Envelope::seal(header, key, &self.id.signer, &plain).into_bytes());
            let shared = super::signals::signals_in(&meta, &me, self.now());
            docs.push((doc, sync, shared));
        }
        let mut sent = 0;
        for (envs, docs) in envelopes.chunks(64).zip(docs.chunks(64)) {
            let results = match relay
                .request(&Request::Upload {
                    envelopes: envs.to_vec(),
                })
                .await?
            {
                Response::Uploaded { results } => results,
                r => return Err(unexpected(r)),
            };
            for ((doc, sync, shared), r) in docs.iter().copied().zip(results) {
                match answered(sync, &r) {
                    Some(sync) => {
                        self.atomically(|home| {
                            home.store.set_doc_sync(&doc, sync)?;
                            home.store.retell_claim(&doc)?;
                            match shared {
                                true => home.mark_snapshot(&doc),
                                false => Ok(()),
                            }
                        })?;
                        sent += 1;
                    }
                    None => tracing::warn!(doc = %doc.short(), answer = ?r, "snapshot refused"),
                }
            }
        }
        Ok(sent)
    }
}

impl Home {
    /// After the relay took a snapshot of `doc`, shared with another
    /// account: queues a change with no operations that builds on every
    /// change the snapshot holds (see the module's comment).
    fn mark_snapshot(&mut self, doc: &DocId) -> Result<()> {
        let (mut loaded, _) = self.docs().take_loaded(doc)?;
        let mark = loaded.replica_mut().mark_heads();
        self.store_loaded(doc, loaded, &mark, OutKind::Change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn only_the_owner_snapshots_a_live_document_that_gathered_enough() {
        let me = AccountId([1; 32]);
        let meta = DocMeta {
            owner: me,
            epoch: 0,
            members: vec![],
            grants: vec![],
            wraps: BTreeMap::new(),
            disposed: false,
        };
        let sync = DocSync {
            seen: 7,
            since_snapshot: SNAPSHOT_EVERY,
            ..DocSync::default()
        };
        assert!(due(&sync, &meta, &me));
        assert!(!due(&sync, &meta, &AccountId([2; 32])), "a member");
        let gone = DocMeta {
            disposed: true,
            ..meta.clone()
        };
        assert!(!due(&sync, &gone, &me), "disposed of");
        let early = DocSync {
            since_snapshot: SNAPSHOT_EVERY - 1,
            ..sync
        };
        assert!(!due(&early, &meta, &me), "not enough yet");
        let unfetched = DocSync { seen: 0, ..sync };
        assert!(!due(&unfetched, &meta, &me), "nothing fetched to cover");
        let incomplete = DocSync { missing: 1, ..sync };
        assert!(
            !due(&incomplete, &meta, &me),
            "changes it builds on missing"
        );
    }

    #[test]
    fn a_snapshot_taken_starts_the_count_again_and_one_refused_leaves_it() {
        let sync = DocSync {
            seen: 40,
            acked: 30,
            since_snapshot: SNAPSHOT_EVERY + 3,
            ..DocSync::default()
        };
        let taken = answered(sync, &Ok(41)).expect("taken");
        assert_eq!((taken.since_snapshot, taken.acked, taken.seen), (0, 41, 40));
        let late = answered(sync, &Ok(12)).expect("taken");
        assert_eq!(late.acked, 30, "the acknowledged mark never goes back");
        assert!(answered(sync, &Err(ErrorCode::AccessMoved)).is_none());
        assert!(fits(MAX_ENVELOPE - 1024) && !fits(MAX_ENVELOPE - 1023));
    }
}
