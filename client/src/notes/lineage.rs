//! What a device sends again when another asks for a change of its: the
//! change, and the device's own changes under it.
//!
//! A device that lacks a change usually lacks what came just before it
//! too: a relay that withheld one envelope withheld the run it sat in, and
//! one that lost a snapshot lost every change the snapshot covered. Sent
//! alone, the change would wait on the asker for its own parent, asked
//! for and sent a round later, and so on down the run: a round per
//! change. Sent with the author's changes beneath it (newest first, up to
//! a bound), the run arrives at once; what the asker held already it
//! takes as a no-op. Changes of other devices beneath it are theirs to
//! send: the asker names them when the run arrives.
//!
//! An owner's device also holds others' changes, and sends one asked for
//! on its device's behalf (see `sync::heal`):
//! [`Replica::held_with_actor`].
//!
//! And what a device sends after a snapshot, so that a device the snapshot
//! never reaches can tell what it lacks: see [`Replica::mark_heads`].

use std::collections::{BTreeSet, HashMap, VecDeque};

use automerge::ChangeHash;
use automerge::transaction::CommitOptions;

use super::replica::Replica;

/// A change held here: its hash, its actor's bytes, and its own bytes.
pub(crate) type HeldChange = (ChangeHash, Vec<u8>, Vec<u8>);

/// How much of a device's own run goes beneath the changes asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub changes: usize,
    pub bytes: usize,
}

/// For this account's own devices: up to a page of envelopes (see
/// `sync::heal`).
pub(crate) const RUN_FOR_OWN: Run = Run {
    changes: 64,
    bytes: 1024 * 1024,
};

/// For another account's: less. Each of its devices may ask once for each
/// of this device's changes, and what it is sent counts against the
/// owner's storage on the relay.
pub(crate) const RUN_FOR_OTHERS: Run = Run {
    changes: 16,
    bytes: 256 * 1024,
};

impl Replica {
    /// Commits a change with no operations that builds on every change
    /// held here (Automerge's merge commit) and returns it as bytes.
    ///
    /// Sent after a snapshot, it names the snapshot's heads in an envelope
    /// the snapshot does not cover. The relay drops the envelopes a
    /// snapshot covers, signals among them (`sync::signals`), so a relay
    /// that then withholds or loses the snapshot would leave a device that
    /// had not fetched those envelopes short of them without a word: no
    /// change after them names them, and the claims that did are gone. This
    /// change names them: a device served it and lacking what it builds on
    /// waits, asks, and is sent the rest by the devices that made it.
    pub(crate) fn mark_heads(&mut self) -> Vec<u8> {
        let heads = self.heads();
        self.doc.empty_change(CommitOptions::default());
        self.changes_since(&heads)
    }

    /// The changes among `hashes` that `device` made, every one of them,
    /// with at most `run` of that device's changes beneath them (walking
    /// every change's dependencies, the nearest first), as bytes, in the
    /// order the history holds them (each after what it builds on).
    pub(crate) fn own_lineage(
        &mut self,
        hashes: &[ChangeHash],
        device: &[u8],
        run: Run,
    ) -> Vec<Vec<u8>> {
        let own = |actor: &[u8]| actor.starts_with(device) && actor.len() > device.len();
        // One pass over the history's metadata, not a change decoded per
        // step; its order is one the changes apply in.
        let graph: HashMap<ChangeHash, (usize, Vec<ChangeHash>, bool)> = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m.hash, (i, m.deps, own(m.actor.to_bytes()))))
            .collect();
        // Only asks for this device's changes are answered here: another's
        // are its own device's to answer.
        let wanted: BTreeSet<ChangeHash> = hashes
            .iter()
            .filter(|h| graph.get(h).is_some_and(|(_, _, own)| *own))
            .copied()
            .collect();
        let mut queue: VecDeque<ChangeHash> = wanted.iter().copied().collect();
        let mut seen = wanted.clone();
        let mut beneath: Vec<(usize, ChangeHash)> = Vec::new();
        while let Some(h) = queue.pop_front() {
            if beneath.len() == run.changes {
                break;
            }
            let Some((i, deps, own)) = graph.get(&h) else {
                continue;
            };
            if *own && !wanted.contains(&h) {
                beneath.push((*i, h));
            }
            for d in deps {
                if seen.insert(*d) {
                    queue.push_back(*d);
                }
            }
        }
        let mut out: Vec<(usize, Vec<u8>)> = Vec::new();
        for h in &wanted {
            if let Some(c) = self.doc.get_change_by_hash(h) {
                out.push((graph[h].0, c.raw_bytes().to_vec()));
            }
        }
        // What lies beneath, the newest first, within the byte bound.
        beneath.sort_by_key(|p| std::cmp::Reverse(p.0));
        let mut bytes = 0;
        for (i, h) in beneath {
            let Some(c) = self.doc.get_change_by_hash(&h) else {
                continue;
            };
            let raw = c.raw_bytes().to_vec();
            if bytes + raw.len() > run.bytes {
                break;
            }
            bytes += raw.len();
            out.push((i, raw));
        }
        out.sort_by_key(|p| p.0);
        out.into_iter().map(|(_, raw)| raw).collect()
    }
}

impl Replica {
    /// Each of `hashes` held here: its hash, its actor and its bytes.
    pub(crate) fn held_with_actor(&mut self, hashes: &[ChangeHash]) -> Vec<HeldChange> {
        hashes
            .iter()
            .filter_map(|h| self.doc.get_change_by_hash(h))
            .map(|c| {
                (
                    c.hash(),
                    c.actor_id().to_bytes().to_vec(),
                    c.raw_bytes().to_vec(),
                )
            })
            .collect()
    }
}

/// Whether a batch of changes holds any operation: a mark (see
/// [`Replica::mark_heads`]) holds none, and edits nothing. Bytes that do
/// not decode count as holding some.
pub(crate) fn holds_operations(batch: &[u8]) -> bool {
    let Some(chunks) = super::replica::split_chunks(batch) else {
        return true;
    };
    chunks.into_iter().any(|c| {
        std::panic::catch_unwind(|| automerge::Change::try_from(c))
            .ok()
            .and_then(|c| c.ok())
            .is_none_or(|c| !c.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, Change, ROOT};

    fn write(doc: &mut AutoCommit, key: &str) -> ChangeHash {
        doc.put(ROOT, key, 1).unwrap();
        doc.commit().unwrap()
    }

    fn hashes(sent: &[Vec<u8>]) -> Vec<ChangeHash> {
        sent.iter()
            .map(|raw| Change::try_from(&raw[..]).unwrap().hash())
            .collect()
    }

    #[test]
    fn an_ask_brings_the_authors_run_beneath_it_and_nobody_elses() {
        let me = b"device-a";
        let mut replica = Replica::new("test", &[], b"device-a-1").unwrap();
        let a = &mut replica.doc;
        let created = a.commit().unwrap();
        let first = write(a, "one");
        let mut b = a.fork().with_actor(ActorId::from(&b"device-b-1"[..]));
        let theirs = write(&mut b, "two");
        a.merge(&mut b).unwrap();
        let second = write(a, "three");
        let sent = replica.own_lineage(&[second], me, RUN_FOR_OWN);
        assert_eq!(
            hashes(&sent),
            vec![created, first, second],
            "oldest first, this device's only"
        );
        // Another device's change starts no walk; nor does one not held.
        assert!(replica.own_lineage(&[theirs], me, RUN_FOR_OWN).is_empty());
        assert!(
            replica
                .own_lineage(&[ChangeHash([7; 32])], me, RUN_FOR_OWN)
                .is_empty()
        );
    }

    #[test]
    fn the_mark_builds_on_every_head_and_holds_nothing() {
        let mut replica = Replica::new("test", &[], b"device-a-1").unwrap();
        write(&mut replica.doc, "one");
        let mut b = replica
            .doc
            .fork()
            .with_actor(ActorId::from(&b"device-b-1"[..]));
        let theirs = write(&mut b, "two");
        // Made meanwhile here: two heads.
        let mine = write(&mut replica.doc, "three");
        replica.doc.merge(&mut b).unwrap();
        let before = replica.doc.get_heads();
        assert_eq!(before.len(), 2);
        let mark = replica.mark_heads();
        let change = Change::try_from(&mark[..]).unwrap();
        let mut deps = change.deps().to_vec();
        deps.sort();
        let mut heads = vec![mine, theirs];
        heads.sort();
        assert_eq!(deps, heads);
        assert_eq!(change.len(), 0, "no operation");
        assert!(!holds_operations(&mark));
        let edit = replica.doc.get_change_by_hash(&mine).unwrap();
        assert!(holds_operations(edit.raw_bytes()));
        assert!(holds_operations(b"not changes"));
        assert_eq!(replica.doc.get_heads(), vec![change.hash()]);
    }

    #[test]
    fn a_long_run_goes_in_a_bounded_piece_and_every_change_asked_for_goes() {
        let mut replica = Replica::new("test", &[], b"device-a-1").unwrap();
        let first = replica.doc.commit().unwrap();
        let mut last = first;
        for i in 0..RUN_FOR_OWN.changes + 10 {
            last = write(&mut replica.doc, &format!("k{i}"));
        }
        let sent = hashes(&replica.own_lineage(&[last], b"device-a", RUN_FOR_OWN));
        assert_eq!(sent.len(), RUN_FOR_OWN.changes + 1);
        assert_eq!(sent.last(), Some(&last));
        // The oldest, asked for beside the newest, goes too, whatever the
        // bound: the asker asks once.
        let sent = replica.own_lineage(&[last, first], b"device-a", RUN_FOR_OTHERS);
        let sent = hashes(&sent);
        assert_eq!(sent.len(), RUN_FOR_OTHERS.changes + 2);
        assert_eq!((sent.first(), sent.last()), (Some(&first), Some(&last)));
        let none = Run {
            changes: 0,
            bytes: 0,
        };
        assert_eq!(
            hashes(&replica.own_lineage(&[last], b"device-a", none)),
            [last]
        );
    }

    #[test]
    fn a_change_built_on_a_mark_goes_after_it() {
        let mut replica = Replica::new("test", &[], b"device-a-1").unwrap();
        write(&mut replica.doc, "one");
        replica.mark_heads();
        // The mark took no operation: this change starts at the same one.
        let after = write(&mut replica.doc, "two");
        let sent = hashes(&replica.own_lineage(&[after], b"device-a", RUN_FOR_OWN));
        let mut fresh = AutoCommit::new();
        for h in &sent {
            let c = replica.doc.get_change_by_hash(h).unwrap();
            fresh.apply_changes([c]).unwrap();
            assert!(fresh.get_missing_deps(&[]).is_empty(), "in order");
        }
        assert_eq!(fresh.get_heads(), vec![after]);
    }
}
