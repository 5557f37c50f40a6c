//! The audit trail: each device's hash chain of what it did and read
//! (sealed in its store like everything else), the entries the account's
//! other devices sent, and the accounting of disclosures. Sharing the
//! trail among the account's devices is [`crate::audit_sync`].

use casebook_shared::codec;
use casebook_shared::ids::{AccountId, DeviceId, DocId, Hash};

use crate::error::{Error, Result};
use crate::home::{Home, now};

impl Home {
    /// Records an audit entry (sealed like everything else).
    pub(crate) fn audit(&self, what: &str, case: Option<DocId>) -> Result<()> {
        self.audit_with(what, case, None)
    }

    /// Records that a case was opened for reading (the audit trail lists views).
    pub fn record_view(&self, case: &DocId) -> Result<()> {
        self.audit("case viewed", Some(*case))
    }

    /// Records an audit entry, chained to the one before it: each entry
    /// carries the hash of its predecessor, and the newest hash is kept
    /// sealed apart, so a deleted, changed or reordered entry breaks the
    /// chain ([`Home::verify_audit`]).
    pub(crate) fn audit_with(
        &self,
        what: &str,
        case: Option<DocId>,
        disclosure: Option<Disclosure>,
    ) -> Result<()> {
        let started = self.store.begin()?;
        let out = (|| -> Result<()> {
            let (seq, prev) = self.audit_head()?;
            let rec = AuditRecord {
                seq: seq + 1,
                prev,
                at: now(),
                device: self.device_id(),
                case,
                what: what.to_string(),
                disclosure,
            };
            let bytes = codec::encode(&rec);
            self.store.push_audit(&bytes)?;
            let head = casebook_shared::crypto::hash(AUDIT_LABEL, &bytes);
            let mut sealed = (seq + 1).to_be_bytes().to_vec();
            sealed.extend_from_slice(&head.0);
            self.store.put_secret("audit_head", &sealed)?;
            Ok(())
        })();
        self.store.end(started, out.is_ok())?;
        out
    }

    fn audit_head(&self) -> Result<(u64, Hash)> {
        Ok(match self.store.get_secret("audit_head")? {
            Some(b) if b.len() == 40 => (
                u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
                Hash(b[8..].try_into().expect("32 bytes")),
            ),
            Some(_) => return Err(Error::Inconsistent("the audit head is malformed".into())),
            None => (0, Hash([0; 32])),
        })
    }

    /// Checks the audit chain end to end; returns the number of entries.
    pub fn verify_audit(&self) -> Result<u64> {
        let broken = |n: u64, why: &str| {
            Error::Inconsistent(format!("the audit trail is broken at entry {n}: {why}"))
        };
        let rows = self.store.audit().map_err(|e| {
            broken(
                0,
                &format!("an entry does not open ({e}): changed or moved"),
            )
        })?;
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
            prev = casebook_shared::crypto::hash(AUDIT_LABEL, &bytes);
        }
        let (seq, head) = self.audit_head()?;
        if seq != n || head != prev {
            return Err(broken(n, "the newest entries are missing"));
        }
        // Other devices' chains, as far as they have arrived.
        let mut expect: Option<(DeviceId, u64, Hash)> = None;
        for rec in self.remote_audit()? {
            let (next, prev) = match expect {
                Some((d, s, h)) if d == rec.device => (s + 1, h),
                _ => (1, Hash([0; 32])),
            };
            if rec.seq != next || rec.prev != prev {
                return Err(Error::Inconsistent(format!(
                    "the audit trail of device {} is broken at entry {}",
                    rec.device.short(),
                    rec.seq
                )));
            }
            let h = casebook_shared::crypto::hash(AUDIT_LABEL, &codec::encode(&rec));
            expect = Some((rec.device, rec.seq, h));
            n += 1;
        }
        Ok(n)
    }

    /// The local audit trail, newest first.
    pub fn audit_trail(&self) -> Result<Vec<AuditRecord>> {
        let mut out = self.own_audit()?;
        out.extend(self.remote_audit()?);
        out.sort_by_key(|a| std::cmp::Reverse((a.at, a.device, a.seq)));
        Ok(out)
    }

    /// This device's own audit entries, oldest first.
    pub(crate) fn own_audit(&self) -> Result<Vec<AuditRecord>> {
        self.store
            .audit()?
            .iter()
            .map(|b| codec::decode(b).map_err(Error::from))
            .collect()
    }

    /// The entries the account's other devices sent, by device and sequence.
    fn remote_audit(&self) -> Result<Vec<AuditRecord>> {
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
    /// Set for a disclosure (a share granted).
    pub disclosure: Option<Disclosure>,
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
