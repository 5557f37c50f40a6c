//! The audit trail: each device's hash chain of what it did and read
//! (sealed in its store like everything else), the entries the account's
//! other devices sent, and the accounting of disclosures. Sharing the
//! trail among the account's devices is [`crate::audit_sync`].

use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId, Hash};

use casebook_shared::clock::Clock;

use crate::error::{Error, Inconsistent, Result};
use crate::store::Store;

/// How long, in seconds, a run of the same edit to the same case is one
/// line of the trail ([`Trail::record_folded`]).
pub const FOLDED_FOR: u64 = 10 * 60;

/// This device's audit trail, with the entries the account's other devices
/// sent of theirs: the part of a [`crate::Home`] that records and reads it.
pub struct Trail<'h> {
    pub(crate) store: &'h Store,
    pub(crate) device: DeviceId,
    pub(crate) clock: &'h Clock,
}

impl Trail<'_> {
    /// Records an audit entry (sealed like everything else).
    pub(crate) fn record(&self, what: &str, case: Option<DocId>) -> Result<()> {
        self.record_with(what, case, Disclosed::Nothing)
    }

    /// Records `what`, unless this device's newest entry says the same of
    /// the same case less than [`FOLDED_FOR`] seconds ago. A draft saved as
    /// it is typed would otherwise add a line every few seconds; the trail
    /// keeps when a stretch of editing began, and the document's own
    /// history every change in it.
    pub(crate) fn record_folded(&self, what: &str, case: Option<DocId>) -> Result<()> {
        let last = self
            .store
            .last_audit()?
            .and_then(|b| codec::decode::<AuditRecord>(&b).ok());
        let now = self.clock.now();
        if let Some(last) = last
            && last.what == what
            && last.case == case
            && last.device == self.device
            && now >= last.at
            && now - last.at < FOLDED_FOR
        {
            return Ok(());
        }
        self.record(what, case)
    }

    /// Records that a case was opened for reading (the audit trail lists views).
    pub fn record_view(&self, case: &DocId) -> Result<()> {
        self.record("case viewed", Some(*case))
    }

    /// Records an audit entry, chained to the one before it: each entry
    /// carries the hash of its predecessor, and the newest hash is kept
    /// sealed apart, so a deleted, changed or reordered entry breaks the
    /// chain ([`Trail::verify`]).
    pub(crate) fn record_with(
        &self,
        what: &str,
        case: Option<DocId>,
        disclosure: Disclosed,
    ) -> Result<()> {
        let started = self.store.begin()?;
        let out = (|| -> Result<()> {
            let (seq, prev) = self.head()?;
            let rec = AuditRecord {
                seq: seq + 1,
                prev,
                at: self.clock.now(),
                device: self.device,
                case,
                what: what.to_string(),
                disclosure,
            };
            let bytes = codec::encode(&rec);
            self.store.push_audit(&bytes)?;
            let head = entry_hash(&bytes);
            let mut sealed = (seq + 1).to_be_bytes().to_vec();
            sealed.extend_from_slice(&head.0);
            self.store.put_secret("audit_head", &sealed)?;
            Ok(())
        })();
        self.store.end(started, out.is_ok())?;
        out
    }

    fn head(&self) -> Result<(u64, Hash)> {
        Ok(match self.store.get_secret("audit_head")? {
            Some(b) if b.len() == 40 => (
                u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
                Hash(b[8..].try_into().expect("32 bytes")),
            ),
            Some(_) => return Err(Inconsistent::AuditHead.into()),
            None => (0, Hash([0; 32])),
        })
    }

    /// Checks the audit chain end to end; returns the number of entries.
    pub fn verify(&self) -> Result<u64> {
        let broken =
            |entry: u64, why: &'static str| Error::from(Inconsistent::AuditBroken { entry, why });
        let rows = self.store.audit().map_err(Inconsistent::AuditUnreadable)?;
        let mut prev = Hash([0; 32]);
        let mut n = 0u64;
        for bytes in rows {
            n += 1;
            let rec: AuditRecord =
                codec::decode(&bytes).map_err(|_| broken(n, "an entry does not decode"))?;
            if rec.seq != n {
                return Err(broken(n, "entries are missing or out of order"));
            }
            if rec.prev != prev {
                return Err(broken(n, "it does not follow the entry before it"));
            }
            prev = entry_hash(&bytes);
        }
        let (seq, head) = self.head()?;
        if seq != n || head != prev {
            return Err(broken(n, "the newest entries are missing"));
        }
        // Other devices' chains, as far as they have arrived.
        let mut expect: Option<(DeviceId, u64, Hash)> = None;
        for rec in self.remote()? {
            let (next, prev) = match expect {
                Some((d, s, h)) if d == rec.device => (s + 1, h),
                _ => (1, Hash([0; 32])),
            };
            if rec.seq != next || rec.prev != prev {
                return Err(Inconsistent::DeviceAuditBroken {
                    device: rec.device,
                    entry: rec.seq,
                }
                .into());
            }
            let h = entry_hash(&codec::encode(&rec));
            expect = Some((rec.device, rec.seq, h));
            n += 1;
        }
        Ok(n)
    }

    /// The local audit trail, newest first.
    pub fn entries(&self) -> Result<Vec<AuditRecord>> {
        let mut out = self.own()?;
        out.extend(self.remote()?);
        out.sort_by_key(|a| std::cmp::Reverse((a.at, a.device, a.seq)));
        Ok(out)
    }

    /// This device's own audit entries, oldest first.
    pub(crate) fn own(&self) -> Result<Vec<AuditRecord>> {
        self.store
            .audit()?
            .iter()
            .map(|b| codec::decode(b).map_err(Error::from))
            .collect()
    }

    /// The entries the account's other devices sent, by device and sequence.
    pub(crate) fn remote(&self) -> Result<Vec<AuditRecord>> {
        self.store
            .remote_audit()?
            .iter()
            .map(|b| codec::decode(b).map_err(Error::from))
            .collect()
    }
}

/// One audit trail entry.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Position in this device's chain, from 1.
    pub seq: u64,
    /// Hash of the entry before (zero for the first).
    pub prev: Hash,
    pub at: u64,
    pub device: DeviceId,
    pub case: Option<DocId>,
    pub what: String,
    /// Set for a disclosure: a share granted, or an export to someone.
    pub disclosure: Disclosed,
}

/// What an audit entry disclosed, for the accounting of disclosures.
///
/// It replaced an `Option<Disclosure>` and is written exactly as that was:
/// postcard writes an `Option`'s tag and an enum's variant index as the same
/// single byte for 0 and 1, so entries written before exports existed (kept
/// here and on the account's other devices, and hashed into the chain)
/// decode and re-encode byte for byte.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub enum Disclosed {
    #[default]
    Nothing,
    Share(Disclosure),
    Export(ExportDisclosure),
}

impl Disclosed {
    pub fn is_some(&self) -> bool {
        !matches!(self, Disclosed::Nothing)
    }

    /// The share it records, if it is one.
    pub fn share(&self) -> Option<&Disclosure> {
        match self {
            Disclosed::Share(d) => Some(d),
            _ => None,
        }
    }
}

/// A case (or part of it) exported to someone outside casebook.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ExportDisclosure {
    pub to: Recipient,
    pub case_name: String,
    /// The session notes disclosed.
    pub notes: Vec<String>,
    /// The psychotherapy notes disclosed (none unless asked for).
    pub private: Vec<String>,
    /// The parts kept when narrowed by section; empty for every part.
    pub sections: Vec<String>,
}

/// A disclosure of a case to another practitioner, for the accounting of
/// disclosures.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Disclosure {
    pub recipient: String,
    pub recipient_account: AccountId,
    pub case_name: String,
    pub role: String,
    pub purpose: String,
    pub consent: String,
    pub expires: Option<u64>,
    pub private_included: bool,
}

const AUDIT_LABEL: &str = "casebook/v1/hash/audit-entry";

/// The hash an entry's successor carries in `prev`.
pub(crate) fn entry_hash(encoded: &[u8]) -> Hash {
    casebook_shared::crypto::hash(AUDIT_LABEL, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audit entry as written before exports existed.
    #[derive(serde::Serialize)]
    struct Before {
        seq: u64,
        prev: Hash,
        at: u64,
        device: DeviceId,
        case: Option<DocId>,
        what: String,
        disclosure: Option<Disclosure>,
    }

    #[test]
    fn entries_written_before_exports_read_and_hash_alike() {
        let share = Disclosure {
            recipient: "Dr. Chen".into(),
            recipient_account: AccountId([3; 32]),
            case_name: "Jordan Avery".into(),
            role: "comment".into(),
            purpose: "consultation".into(),
            consent: "signed release".into(),
            expires: Some(1_800_000_000),
            private_included: false,
        };
        for disclosure in [None, Some(share)] {
            let old = codec::encode(&Before {
                seq: 7,
                prev: Hash([1; 32]),
                at: 1_790_000_000,
                device: DeviceId([2; 32]),
                case: Some(DocId([4; 16])),
                what: "share granted".into(),
                disclosure: disclosure.clone(),
            });
            let rec: AuditRecord = codec::decode(&old).unwrap();
            assert_eq!(rec.disclosure.is_some(), disclosure.is_some());
            assert_eq!(codec::encode(&rec), old, "the chain's hashes hold");
        }
    }
}

/// Who an export is disclosed to, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    pub name: String,
    pub purpose: String,
    pub consent: String,
}
