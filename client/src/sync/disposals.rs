//! Disposals the relay lost, given back.
//!
//! A relay restored from a copy older than a case's disposal holds the case
//! again (or, from a copy older than the case, holds nothing of it until an
//! owner's device that never saw the disposal sends it back whole). Either
//! way the owner's decision would be undone: a device paired since would be
//! served a case its owner destroyed, and a device that never saw the
//! disposal would keep it. So every device that carries out a disposal
//! keeps its signed entry (it holds no key and nothing of the case), and
//! gives it back when the relay's listing lacks it: the relay then deletes
//! the case again, and every device that still holds it deletes it too.
//!
//! A listing lacks it where it shows the document with another last access
//! entry, or, to the owner's devices, not at all (a colleague's device is
//! not shown a document the relay never knew them to read). Where the
//! relay keeps another disposal of the document (signed elsewhere after a
//! restore), it answers with that one, which is kept here instead once it
//! checks out, so the two are not given back in turn.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocState};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{DocHead, ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId};
use casebook_shared::signed::Signed;

use super::unexpected;
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};

/// The sealed setting that keeps each disposal carried out here.
const KEPT: &str = "disposals_kept";

/// The kept disposals the relay's listing `heads` lacks, as the module
/// says; `me` is this device's account.
pub(crate) fn lacking(
    kept: &BTreeMap<DocId, Signed>,
    heads: &[DocHead],
    me: &AccountId,
) -> Vec<(DocId, Signed)> {
    let listed: BTreeMap<DocId, &DocHead> = heads.iter().map(|h| (h.doc, h)).collect();
    kept.iter()
        .filter(|(doc, gone)| match listed.get(doc) {
            Some(h) => h.access_head != gone.hash(access::HASH_LABEL),
            None => gone
                .open::<DocEntry>(access::SIG_LABEL)
                .is_ok_and(|e| e.account == *me),
        })
        .map(|(doc, gone)| (*doc, gone.clone()))
        .collect()
}

/// Whether `gone` is a disposal of `doc` that a device takes: it verifies
/// against its owner's account `owner`, from a device not revoked since.
fn holds(gone: &Signed, doc: &DocId, owner: &AccountState) -> bool {
    DocState::verify_disposal(gone, doc, owner).is_ok()
        && owner
            .devices
            .get(&gone.signer)
            .is_some_and(|d| d.revoked_seq.is_none())
}

impl Home {
    /// The disposals carried out here, by document.
    pub(crate) fn kept_disposals(&self) -> Result<BTreeMap<DocId, Signed>> {
        Ok(match self.store.get_secret(KEPT)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeMap::new(),
        })
    }

    /// Keeps `gone`, the disposal of `doc` carried out here, to give it
    /// back to a relay that lost it.
    pub(crate) fn keep_disposal(&self, doc: &DocId, gone: &Signed) -> Result<()> {
        let mut kept = self.kept_disposals()?;
        kept.insert(*doc, gone.clone());
        Ok(self.store.put_secret(KEPT, &codec::encode(&kept))?)
    }

    fn forget_disposal(&self, doc: &DocId) -> Result<()> {
        let mut kept = self.kept_disposals()?;
        kept.remove(doc);
        Ok(self.store.put_secret(KEPT, &codec::encode(&kept))?)
    }

    /// Gives `gone`, the disposal of `doc`, back to a relay whose listing
    /// lacked it. Says whether the relay took it (or kept another, which
    /// is kept here from now on). One the relay refuses for what it is
    /// (it no longer checks out there) is forgotten, and the trail says
    /// so; one refused for the moment is given back next round.
    pub(super) async fn give_back_disposal(
        &mut self,
        relay: &Relay,
        doc: &DocId,
        gone: &Signed,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<bool> {
        let Ok(entry) = gone.open::<DocEntry>(access::SIG_LABEL) else {
            self.forget_disposal(doc)?;
            return Ok(false);
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(entry.account) {
            slot.insert(self.refresh_log(relay, &entry.account).await?);
        }
        let owner = &accounts[&entry.account];
        if !holds(gone, doc, owner) {
            // Its device was revoked since: no device takes it now.
            self.forget_disposal(doc)?;
            return Ok(false);
        }
        let request = Request::RestoreDisposal {
            doc: *doc,
            entry: gone.clone(),
        };
        let kept = match relay.request(&request).await {
            Ok(Response::Log { entries }) => entries,
            Ok(r) => return Err(unexpected(r)),
            Err(NetError::Relay {
                code: code @ (ErrorCode::Invalid | ErrorCode::Forbidden | ErrorCode::NotFound),
                reason,
            }) => {
                self.atomically(|home| {
                    home.forget_disposal(doc)?;
                    home.trail().record(
                        &format!(
                            "the relay lacked this case's disposal and refused it given back ({code:?}: {reason}); it is no longer given back"
                        ),
                        Some(*doc),
                    )
                })?;
                return Ok(false);
            }
            Err(NetError::Relay { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        self.atomically(|home| {
            if let [other] = &kept[..]
                && other != gone
                && holds(other, doc, owner)
            {
                home.keep_disposal(doc, other)?;
            }
            home.trail().record(
                "the relay lacked this case's disposal (restored from an older copy, or losing data): given back, so it is deleted again wherever it was",
                Some(*doc),
            )?;
            // It may have lost more than the disposal: see `heal::RECHECK`.
            home.relay_lost_data()
        })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use casebook_shared::ids::Hash;

    use super::*;

    fn disposal(doc: DocId, account: AccountId) -> Signed {
        let signer = casebook_shared::crypto::DeviceSigner::generate();
        let entry = DocEntry {
            doc,
            seq: 3,
            prev: Some(Hash([1; 32])),
            at: 1,
            account,
            account_len: 1,
            op: access::DocOp::Dispose,
        };
        Signed::sign(&signer, access::SIG_LABEL, &entry)
    }

    fn head(doc: DocId, access_head: Hash) -> DocHead {
        DocHead {
            doc,
            access_len: 4,
            access_head,
            seq: 9,
        }
    }

    #[test]
    fn a_disposal_is_given_back_where_the_listing_lacks_it() {
        let (me, colleague) = (AccountId([1; 32]), AccountId([2; 32]));
        let (mine, theirs) = (DocId([1; 16]), DocId([2; 16]));
        let kept: BTreeMap<DocId, Signed> = [
            (mine, disposal(mine, me)),
            (theirs, disposal(theirs, colleague)),
        ]
        .into();
        let gone = |d: &DocId| kept[d].hash(access::HASH_LABEL);
        // Listed as disposed of: nothing to give back.
        let listed = [head(mine, gone(&mine)), head(theirs, gone(&theirs))];
        assert!(lacking(&kept, &listed, &me).is_empty());
        // Listed with another last entry (the case back whole): given
        // back, whoever owns it.
        let live = [head(mine, Hash([7; 32])), head(theirs, Hash([7; 32]))];
        let back: Vec<DocId> = lacking(&kept, &live, &me)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(back, vec![mine, theirs]);
        // Not listed: given back by the owner's devices only.
        let back: Vec<DocId> = lacking(&kept, &[], &me)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(back, vec![mine]);
    }
}
