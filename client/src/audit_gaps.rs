//! Gaps in another device's trail, and how they are filled.
//!
//! A relay restored from an older copy loses the audit envelopes it took
//! since. A device that syncs after another device of the account wrote to
//! the audit document again does not see the loss (the relay's numbers
//! went on), so it does not send its lost entries again; the devices that
//! took its later entries hold its chain with a gap. Each asks, in its next
//! audit envelope, for the device's trail: a want in the audit document
//! naming the device, asked once while the gap lasts (a gap nobody can
//! fill does not make the devices send their trails over and over).
//!
//! - The device named sends its whole trail again (each device keeps
//!   another's entries once, by device and number).
//! - Every other device of the account that holds entries of the named
//!   device's sends them on: the named one may be revoked, or gone. The
//!   entries are not signed one by one, so one forwarded is kept only
//!   where it fills a gap chained at both ends: its first names by hash the
//!   entry held before the gap (or starts the chain), and the entry held
//!   after the gap names its last. No device can make up another's entry
//!   that fits.
//!
//! Either answer is given at most once in [`ANSWER_EVERY`] seconds: a relay
//! serving the asking envelope again and again cannot make a device send
//! its trail each round. An ask that comes within that time waits, and is
//! answered once it is over.

use std::collections::{BTreeMap, BTreeSet};

use casebook_shared::codec;
use casebook_shared::ids::{DeviceId, DocId, Hash};

use crate::audit::{AuditRecord, entry_hash};
use crate::audit_sync::{SENT, audit_doc};
use crate::error::Result;
use crate::home::Home;

/// When this device last sent its whole trail again because another
/// device asked, and last forwarded another device's.
const RESENT_AT: &str = "audit_resent_at";
const FORWARDED_AT: &str = "audit_forwarded_at";

/// When this device last found its own audit envelope gone from the relay.
const LOST_AT: &str = "audit_lost_at";

/// The devices whose entries held here go out in the next audit envelope.
const FORWARD: &str = "audit_forward";

/// Seconds between two answers of each kind.
const ANSWER_EVERY: u64 = 3600;

/// Devices asked at once to send their trail again: more than an account
/// has.
const AUDIT_WANTS: usize = 64;

impl Home {
    /// Asks for the trail of each device of the account whose entries
    /// arrived here with a gap (see the module).
    pub(crate) fn ask_for_audit_gaps(&self, doc: &DocId) -> Result<()> {
        let gaps = self.store.remote_audit_gaps()?;
        self.store.forget_wants_but(doc, &gaps)?;
        for device in &gaps {
            self.store.queue_want(doc, device, AUDIT_WANTS)?;
        }
        Ok(())
    }

    /// Answers the wants among `wants` asked in the audit document (see
    /// the module), each kind at most once in [`ANSWER_EVERY`] seconds;
    /// returns those that wait for the next answer.
    pub(crate) fn answer_audit_wants(
        &mut self,
        wants: &[(DocId, [u8; 32])],
    ) -> Result<Vec<(DocId, [u8; 32])>> {
        let doc = audit_doc(&self.account_id());
        let me = self.device_id();
        let named: BTreeSet<[u8; 32]> = wants
            .iter()
            .filter(|(d, _)| *d == doc)
            .map(|(_, h)| *h)
            .collect();
        let mut waiting = Vec::new();
        if named.contains(&me.0) {
            if self.due(RESENT_AT)? {
                self.store.put_secret(SENT, &0u64.to_be_bytes())?;
                // The claims the lost envelopes carried go again too.
                self.store.retell_every_claim()?;
                self.trail().record(
                    "another device of this account holds this device's trail with a gap (the relay lost entries of it): sent again whole",
                    None,
                )?;
            } else {
                waiting.push((doc, me.0));
            }
        }
        let held: BTreeSet<[u8; 32]> = self.trail().remote()?.iter().map(|r| r.device.0).collect();
        let asked: Vec<[u8; 32]> = named
            .iter()
            .filter(|d| **d != me.0 && held.contains(*d))
            .copied()
            .collect();
        if !asked.is_empty() {
            if self.due(FORWARDED_AT)? {
                let mut forward = self.devices_to_forward()?;
                forward.extend(asked);
                forward.sort();
                forward.dedup();
                self.store.put_secret(FORWARD, &codec::encode(&forward))?;
            } else {
                waiting.extend(asked.into_iter().map(|d| (doc, d)));
            }
        }
        Ok(waiting)
    }

    fn devices_to_forward(&self) -> Result<Vec<[u8; 32]>> {
        Ok(match self.store.get_secret(FORWARD)? {
            Some(bytes) => codec::decode(&bytes).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// The relay no longer holds this device's last audit envelope it
    /// took (see `Pulling::own_audit_at`): the whole trail goes again, and
    /// the claims it carried, at most once in [`ANSWER_EVERY`] seconds (a
    /// relay withholding it cannot make this device send its trail each
    /// round).
    pub(crate) fn own_audit_lost(&mut self) -> Result<()> {
        if !self.due(LOST_AT)? {
            return Ok(());
        }
        self.store.put_secret(SENT, &0u64.to_be_bytes())?;
        self.store.retell_every_claim()?;
        // It may have lost more than this device's trail.
        self.relay_lost_data()?;
        self.trail().record(
            "the relay no longer holds this device's last audit entries it took (restored from an older copy, or losing data): the whole trail sent again",
            None,
        )
    }

    /// Whether the answer timed by `key` may be given now (a clock set
    /// back since counts as due); if so, notes that it is.
    pub(crate) fn due(&self, key: &str) -> Result<bool> {
        let now = self.now();
        let last = match self.store.get_secret(key)? {
            Some(b) if b.len() == 8 => u64::from_be_bytes(b[..].try_into().expect("8 bytes")),
            _ => 0,
        };
        if last != 0 && now >= last && now < last.saturating_add(ANSWER_EVERY) {
            return Ok(false);
        }
        self.store.put_secret(key, &now.to_be_bytes())?;
        Ok(true)
    }

    /// The entries held here of the devices asked for, to forward.
    pub(crate) fn audit_to_forward(&self) -> Result<Vec<AuditRecord>> {
        let devices = self.devices_to_forward()?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .trail()
            .remote()?
            .into_iter()
            .filter(|r| devices.contains(&r.device.0))
            .collect())
    }

    /// The entries to forward went out.
    pub(crate) fn audit_forwarded(&self) -> Result<()> {
        self.store.delete_secret(FORWARD)?;
        Ok(())
    }

    /// Keeps those of `forwarded` (entries of devices other than the one
    /// that sent them) that fill a gap in what is held here, chained at
    /// both ends; returns how many.
    pub(crate) fn fill_audit_gaps(&self, forwarded: Vec<AuditRecord>) -> Result<usize> {
        let me = self.device_id();
        let mut offered: BTreeMap<DeviceId, BTreeMap<u64, AuditRecord>> = BTreeMap::new();
        for r in forwarded.into_iter().filter(|r| r.device != me) {
            offered.entry(r.device).or_default().insert(r.seq, r);
        }
        if offered.is_empty() {
            return Ok(0);
        }
        let mut held: BTreeMap<DeviceId, BTreeMap<u64, AuditRecord>> = BTreeMap::new();
        for r in self.trail().remote()? {
            held.entry(r.device).or_default().insert(r.seq, r);
        }
        let mut kept = 0;
        for (device, offer) in offered {
            let Some(have) = held.get(&device) else {
                continue;
            };
            for run in fitting_runs(have, &offer) {
                for r in run {
                    if self
                        .store
                        .put_remote_audit(&r.device.0, r.seq, &codec::encode(r))?
                    {
                        kept += 1;
                    }
                }
            }
        }
        Ok(kept)
    }
}

fn hash_of(r: &AuditRecord) -> Hash {
    entry_hash(&codec::encode(r))
}

/// The runs of `offer` that fill a gap of `have` whole, each chained to
/// the entry held before it (or starting the chain) and named by the entry
/// held after it. A gap after the last entry held is not filled: nothing
/// held names what would fill it.
fn fitting_runs<'a>(
    have: &BTreeMap<u64, AuditRecord>,
    offer: &'a BTreeMap<u64, AuditRecord>,
) -> Vec<Vec<&'a AuditRecord>> {
    let mut runs = Vec::new();
    let mut before: Option<(u64, Hash)> = None;
    for (seq, r) in have {
        let (from, prev) = before.unwrap_or((0, Hash([0; 32])));
        if *seq > from + 1 {
            let run: Option<Vec<&AuditRecord>> = (from + 1..*seq).map(|s| offer.get(&s)).collect();
            if let Some(run) = run {
                let mut link = prev;
                let chained = run.iter().all(|f| {
                    let ok = f.prev == link;
                    link = hash_of(f);
                    ok
                });
                if chained && r.prev == link {
                    runs.push(run);
                }
            }
        }
        before = Some((*seq, hash_of(r)));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = Hash([0; 32]);
        (1..=n)
            .map(|seq| {
                let r = AuditRecord {
                    seq,
                    prev,
                    at: seq,
                    device: DeviceId([1; 32]),
                    case: None,
                    what: format!("entry {seq}"),
                    disclosure: Default::default(),
                };
                prev = hash_of(&r);
                r
            })
            .collect()
    }

    fn map(rs: &[AuditRecord]) -> BTreeMap<u64, AuditRecord> {
        rs.iter().map(|r| (r.seq, r.clone())).collect()
    }

    #[test]
    fn only_a_run_chained_at_both_ends_fills_a_gap() {
        let all = chain(8);
        let mut have = map(&all);
        for s in [1, 4, 5, 8] {
            have.remove(&s);
        }
        let offer = map(&all);
        let runs = fitting_runs(&have, &offer);
        let seqs: Vec<Vec<u64>> = runs
            .iter()
            .map(|r| r.iter().map(|x| x.seq).collect())
            .collect();
        assert_eq!(
            seqs,
            [vec![1], vec![4, 5]],
            "the first entry, and the run between two held; not the end"
        );

        let mut forged = map(&all);
        forged.get_mut(&5).unwrap().what = "made up".into();
        let runs = fitting_runs(&have, &forged);
        assert_eq!(runs.len(), 1, "a changed entry no longer fits: {runs:?}");
        let mut short = map(&all);
        short.remove(&5);
        assert_eq!(
            fitting_runs(&have, &short).len(),
            1,
            "half a gap is not taken"
        );
    }
}
