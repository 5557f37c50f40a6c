//! What the relay serves of a document against what is held here: the
//! changes a device sends back when a snapshot, or a whole fetch after the
//! relay showed it lost data, lacks them. Its own changes always; from an
//! owner's device, other devices' too (see `sync::heal`).

use std::collections::HashSet;
use std::panic::catch_unwind;

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use super::replica::{Replica, guarded, plain_chunks, split_chunks};
use super::{NoteError, Result};

/// The changes held here that the relay did not serve, by whose they are,
/// each in an order they apply in.
#[derive(Debug, Default)]
pub(crate) struct Unserved {
    /// Made on this device.
    pub own: Vec<Vec<u8>>,
    /// Made on other devices (a bare device id is no device's actor, and
    /// its changes are in neither list).
    pub others: Vec<Vec<u8>>,
}

impl Replica {
    /// The changes held here that were written by an actor of `device`
    /// (see [`super::written_by`]) and that the saved document `other` (if
    /// any) lacks, each change's bytes, in an order they apply in: what a
    /// device re-sends when a snapshot shows the relay lost changes of its
    /// own. Changes of `pending` (queued, not sent yet) are left out.
    pub(crate) fn own_changes_not_in(
        &mut self,
        other: Option<&[u8]>,
        device: &[u8],
        pending: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let pending: HashSet<ChangeHash> = hashes(pending).collect();
        self.changes_not_in(other, |c| {
            of_device(c.actor_id().to_bytes(), device) && !pending.contains(&c.hash())
        })
    }

    /// The changes held here that another device than `device` wrote and
    /// that the saved document `other` lacks, in an order they apply in:
    /// what an owner's device sends on their behalf when a snapshot
    /// covering everything it fetched shows the relay lost them.
    pub(crate) fn others_changes_not_in(
        &mut self,
        other: &[u8],
        device: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        self.changes_not_in(Some(other), |c| of_another(c.actor_id().to_bytes(), device))
    }

    /// The changes held here that a whole fetch of the document did not
    /// serve: in neither the relay's `snapshot` nor any of the changes
    /// `served` (each an envelope's bytes), nor `pending` (queued here, not
    /// sent yet). What the relay holds is its snapshot and the envelopes
    /// after it, so these are what it lacks.
    pub(crate) fn unserved(
        &mut self,
        snapshot: Option<&[u8]>,
        served: &[&[u8]],
        device: &[u8],
        pending: &[u8],
    ) -> Result<Unserved> {
        let snapshot = load_saved(snapshot)?;
        let mut skip: HashSet<ChangeHash> = served.iter().flat_map(|b| hashes(b)).collect();
        skip.extend(hashes(pending));
        let mut out = Unserved::default();
        for c in self.doc.get_changes(&[]) {
            let hash = c.hash();
            if skip.contains(&hash) || snapshot.get_change_by_hash(&hash).is_some() {
                continue;
            }
            let actor = c.actor_id().to_bytes();
            if of_device(actor, device) {
                out.own.push(c.raw_bytes().to_vec());
            } else if of_another(actor, device) {
                out.others.push(c.raw_bytes().to_vec());
            }
        }
        Ok(out)
    }

    /// The changes held here that `keep` picks and the saved document
    /// `other` (if any) lacks, in an order they apply in.
    fn changes_not_in(
        &mut self,
        other: Option<&[u8]>,
        keep: impl Fn(&Change) -> bool,
    ) -> Result<Vec<Vec<u8>>> {
        let other = load_saved(other)?;
        let mut out = Vec::new();
        for c in self.doc.get_changes(&[]) {
            if keep(&c) && other.get_change_by_hash(&c.hash()).is_none() {
                out.push(c.raw_bytes().to_vec());
            }
        }
        Ok(out)
    }
}

/// A saved document from the relay (a snapshot), or an empty one for none.
fn load_saved(saved: Option<&[u8]>) -> Result<Automerge> {
    match saved {
        Some(saved) if !plain_chunks(saved) => Err(NoteError::Malformed(
            "loading a snapshot: not a document as this client writes it".into(),
        )),
        Some(saved) => guarded("loading a snapshot", || Automerge::load(saved)),
        None => Ok(Automerge::new()),
    }
}

/// The hashes of the changes in `bytes` (concatenated change chunks); what
/// does not decode names none.
fn hashes(bytes: &[u8]) -> impl Iterator<Item = ChangeHash> + '_ {
    split_chunks(bytes)
        .unwrap_or_default()
        .into_iter()
        // Bytes from another device: decoding stays inside the guard.
        .filter_map(|c| catch_unwind(|| Change::try_from(c)).ok()?.ok())
        .map(|c| c.hash())
}

/// Whether `actor` is one of `device`'s: its id, then a suffix.
fn of_device(actor: &[u8], device: &[u8]) -> bool {
    actor.starts_with(device) && actor.len() > device.len()
}

/// Whether `actor` is another device's than `device` (a bare id is no
/// device's actor).
fn of_another(actor: &[u8], device: &[u8]) -> bool {
    actor.len() > 32 && !actor.starts_with(device)
}

#[cfg(test)]
mod tests {
    use super::super::CaseDoc;
    use super::super::tests::pairs;
    use casebook_shared::ids::DocId;

    const ME: [u8; 32] = [1; 32];
    const COLLEAGUE: [u8; 32] = [2; 32];

    /// A device's actor: its id, then a suffix.
    fn actor(device: &[u8; 32]) -> Vec<u8> {
        [&device[..], b"-1"].concat()
    }

    /// Sets the case's goals to `goals` and returns the change made.
    fn goals(doc: &mut CaseDoc, goals: &str) -> Vec<u8> {
        let heads = doc.heads();
        doc.set_profile(&pairs(&[("goals", goals)])).unwrap();
        doc.changes_since(&heads)
    }

    /// What a whole fetch did not serve is found, by whose it is: what the
    /// relay's snapshot holds and the envelopes it served count as the
    /// relay's; what waits here to be sent is left out.
    #[test]
    fn what_was_not_served_is_found_by_whose_it_is() {
        let mut mine =
            CaseDoc::new("R. Client", "2024-01-05", DocId([3; 16]), &actor(&ME)).unwrap();
        let created = mine.changes_since(&[]);
        let snapshot = mine.save();
        let mut theirs = CaseDoc::load(&snapshot, &actor(&COLLEAGUE)).unwrap();
        let colleague = goals(&mut theirs, "sleep");
        mine.apply(&colleague).unwrap();
        let served = goals(&mut mine, "sleep, walks");
        let pending = goals(&mut mine, "sleep, walks, diary");
        let lost = goals(&mut mine, "sleep, walks, diary, breathing");
        let replica = mine.replica_mut();

        let found = replica
            .unserved(Some(&snapshot), &[&served], &ME, &pending)
            .unwrap();
        assert_eq!(found.own, std::slice::from_ref(&lost));
        assert_eq!(found.others, std::slice::from_ref(&colleague));

        let all = [&served[..], &lost, &colleague];
        let found = replica
            .unserved(Some(&snapshot), &all, &ME, &pending)
            .unwrap();
        assert!(found.own.is_empty() && found.others.is_empty());

        // With no snapshot, the case's creation was not served either.
        let found = replica.unserved(None, &all, &ME, &pending).unwrap();
        assert_eq!(found.own, [created]);
        // Nor is a change written as a bare id any device's.
        let mut bare = CaseDoc::load(&snapshot, &[4; 32]).unwrap();
        let unknown = goals(&mut bare, "unknown");
        mine.apply(&unknown).unwrap();
        let found = mine
            .replica_mut()
            .unserved(Some(&snapshot), &all, &ME, &pending)
            .unwrap();
        assert!(found.own.is_empty() && found.others.is_empty());
    }
}
