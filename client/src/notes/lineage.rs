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
//! And what a device sends after a snapshot, so that a device the snapshot
//! never reaches can tell what it lacks: see [`Replica::mark_heads`].

use std::collections::{BTreeSet, HashMap, VecDeque};

use automerge::ChangeHash;
use automerge::transaction::CommitOptions;

use super::replica::Replica;

/// The most of a device's own changes sent for one document's asks.
pub(crate) const LINEAGE_CHANGES: usize = 64;

/// The most bytes of them (a page of envelopes; see `sync::heal`).
pub(crate) const LINEAGE_BYTES: usize = 1024 * 1024;

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

    /// The changes among `hashes` that `device` made, with that device's
    /// changes beneath them (walking every change's dependencies, the
    /// newest first), at most [`LINEAGE_CHANGES`] and [`LINEAGE_BYTES`],
    /// as bytes, in an order they apply in.
    pub(crate) fn own_lineage(&mut self, hashes: &[ChangeHash], device: &[u8]) -> Vec<Vec<u8>> {
        let own = |actor: &[u8]| actor.starts_with(device) && actor.len() > device.len();
        // One pass over the history's metadata, not a change decoded per step.
        let graph: HashMap<ChangeHash, (Vec<ChangeHash>, bool, u64)> = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|m| (m.hash, (m.deps, own(m.actor.to_bytes()), m.start_op)))
            .collect();
        // Only asks for this device's changes start a walk: another's are
        // its own device's to answer.
        let mut queue: VecDeque<ChangeHash> = hashes
            .iter()
            .filter(|h| graph.get(h).is_some_and(|(_, own, _)| *own))
            .copied()
            .collect();
        let mut seen: BTreeSet<ChangeHash> = queue.iter().copied().collect();
        let mut picked: Vec<(u64, ChangeHash)> = Vec::new();
        while let Some(h) = queue.pop_front() {
            if picked.len() == LINEAGE_CHANGES {
                break;
            }
            let Some((deps, own, start_op)) = graph.get(&h) else {
                continue;
            };
            if *own {
                picked.push((*start_op, h));
            }
            for d in deps {
                if seen.insert(*d) {
                    queue.push_back(*d);
                }
            }
        }
        // Newest first within the byte bound, then oldest first to apply
        // (a change's first operation follows every one it builds on).
        picked.sort_by_key(|p| std::cmp::Reverse(p.0));
        let mut bytes = 0;
        let mut out = Vec::new();
        for (op, h) in picked {
            let Some(c) = self.doc.get_change_by_hash(&h) else {
                continue;
            };
            let raw = c.raw_bytes().to_vec();
            if !out.is_empty() && bytes + raw.len() > LINEAGE_BYTES {
                break;
            }
            bytes += raw.len();
            out.push((op, raw));
        }
        out.reverse();
        out.into_iter().map(|(_, raw)| raw).collect()
    }
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
        let sent = replica.own_lineage(&[second], me);
        assert_eq!(
            hashes(&sent),
            vec![created, first, second],
            "oldest first, this device's only"
        );
        // Another device's change starts no walk; nor does one not held.
        assert!(replica.own_lineage(&[theirs], me).is_empty());
        assert!(replica.own_lineage(&[ChangeHash([7; 32])], me).is_empty());
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
        assert_eq!(replica.doc.get_heads(), vec![change.hash()]);
    }

    #[test]
    fn a_long_run_goes_in_a_bounded_piece_ending_with_the_change_asked_for() {
        let mut replica = Replica::new("test", &[], b"device-a-1").unwrap();
        let mut last = replica.doc.commit().unwrap();
        for i in 0..LINEAGE_CHANGES + 10 {
            last = write(&mut replica.doc, &format!("k{i}"));
        }
        let sent = replica.own_lineage(&[last], b"device-a");
        assert_eq!(sent.len(), LINEAGE_CHANGES);
        assert_eq!(hashes(&sent).last(), Some(&last));
    }
}
