//! A device restored from a backup, catching up with itself: the audit
//! entries it wrote after the backup come back from the relay, and go back
//! into its chain ahead of those it wrote since the restore, which move up.
//! So no position in its chain is used twice, and what the account's other
//! devices hold from it stays true.

use casebook_shared::codec;
use casebook_shared::ids::Hash;

use super::RESTORED;
use crate::audit::AuditRecord;
use crate::error::Inconsistent;
use crate::{Home, Result};

impl Home {
    /// Where this device's audit chain ended in the backup it was restored
    /// from, while it has not yet completed a sync since.
    pub(crate) fn restored_at(&self) -> Result<Option<u64>> {
        Ok(self.store.meta(RESTORED)?.and_then(|b| {
            b.get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        }))
    }

    /// Takes this device's own audit entries as the relay sends them back.
    /// On a device not restored they are what it has already. On a
    /// restored one, those after the backup that follow on from the chain
    /// are put back in place, and the entries written since the restore
    /// are written again after them, renumbered and relinked.
    pub(crate) fn restored_audit(&mut self, body: &[u8]) -> Result<()> {
        let Some(base) = self.restored_at()? else {
            return Ok(());
        };
        let echoes = crate::audit_sync::AuditBody::decode(body)?.records;
        let own = self.trail().own()?;
        let base_len = usize::try_from(base).unwrap_or(usize::MAX).min(own.len());
        let (kept, since) = own.split_at(base_len);
        let mut prev = kept.last().map_or(Hash([0; 32]), |r| {
            crate::audit::entry_hash(&codec::encode(r))
        });
        let mut back: Vec<AuditRecord> = Vec::new();
        for r in echoes {
            if r.device != self.device_id() || r.seq <= base + back.len() as u64 {
                continue;
            }
            // An entry held here already at its place (this device's own
            // echo, sent since the restore) is no news.
            let here = usize::try_from(r.seq - 1)
                .ok()
                .and_then(|i| own.get(i))
                .map(codec::encode);
            if here.is_some_and(|h| h == codec::encode(&r)) {
                continue;
            }
            if r.seq != base + back.len() as u64 + 1 || r.prev != prev {
                return Err(Inconsistent::OwnAuditGap(r.seq).into());
            }
            prev = crate::audit::entry_hash(&codec::encode(&r));
            back.push(r);
        }
        if back.is_empty() {
            return Ok(());
        }
        let since: Vec<AuditRecord> = since.to_vec();
        let new_base = base + back.len() as u64;
        self.atomically(|home| {
            home.store.truncate_audit_after(base)?;
            for r in &back {
                home.store.push_audit(&codec::encode(r))?;
            }
            let mut seq = new_base;
            for mut r in since.clone() {
                seq += 1;
                r.seq = seq;
                r.prev = prev;
                let bytes = codec::encode(&r);
                prev = crate::audit::entry_hash(&bytes);
                home.store.push_audit(&bytes)?;
            }
            let mut head = seq.to_be_bytes().to_vec();
            head.extend_from_slice(&prev.0);
            home.store.put_secret("audit_head", &head)?;
            // What came back is on the relay already; what moved up is not.
            home.store
                .put_secret(crate::audit_sync::SENT, &new_base.to_be_bytes())?;
            home.store.put_meta(RESTORED, &new_base.to_be_bytes())?;
            Ok(())
        })
    }
}
