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
//! not shown a document the relay never knew them to read). The owner's
//! devices also tell the relay who could read the case, as they knew it,
//! so that a colleague's device the restored relay never knew to read it
//! learns of the disposal too. Where the relay keeps another disposal of
//! the document (signed elsewhere after a restore), it answers with that
//! one, and its listing of that one is taken as the disposal's, so the two
//! are not given back in turn.
//!
//! A disposal whose device the owner has revoked since (a laptop retired,
//! say) no longer counts anywhere (a stolen device could sign one dated
//! back). It is not signed again here, since a retired device's and a
//! stolen one's look alike, and a disposal is a person's act: it is
//! forgotten, saying so, and the case stays deleted here; a device that
//! never saw the disposal keeps the case, to be disposed of again there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casebook_shared::access::{self, DocEntry};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::{DocHead, ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, Hash};
use casebook_shared::signed::Signed;

use super::unexpected;
use crate::app::disposal::{Taken, disposal_refused};
use crate::docs::access_state::is_disposal;
use crate::error::Result;
use crate::home::Home;
use crate::net::{NetError, Relay};

/// The sealed setting that keeps each disposal carried out here.
const KEPT: &str = "disposals_kept";

/// A disposal carried out here, kept to give back.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Kept {
    pub gone: Signed,
    /// Who could read the document as this device knew it (of a document
    /// its account owned; empty otherwise).
    pub readers: Vec<AccountId>,
    /// The last access entry of a disposal the relay answered that it
    /// keeps instead, which its listing then shows.
    pub relay_keeps: Option<Hash>,
}

/// The kept disposals the relay's listing `heads` lacks, as the module
/// says; `me` is this device's account.
pub(crate) fn lacking(
    kept: &BTreeMap<DocId, Kept>,
    heads: &[DocHead],
    me: &AccountId,
) -> Vec<(DocId, Kept)> {
    let listed: BTreeMap<DocId, &DocHead> = heads.iter().map(|h| (h.doc, h)).collect();
    kept.iter()
        .filter(|(doc, k)| match listed.get(doc) {
            Some(h) => {
                h.access_head != k.gone.hash(access::HASH_LABEL)
                    && k.relay_keeps != Some(h.access_head)
            }
            None => k
                .gone
                .open::<DocEntry>(access::SIG_LABEL)
                .is_ok_and(|e| e.account == *me),
        })
        .map(|(doc, k)| (*doc, k.clone()))
        .collect()
}

impl Home {
    /// The disposals carried out here, by document.
    pub(crate) fn kept_disposals(&self) -> Result<BTreeMap<DocId, Kept>> {
        Ok(match self.store.get_secret(KEPT)? {
            Some(b) => codec::decode(&b)?,
            None => BTreeMap::new(),
        })
    }

    /// Keeps `gone`, the disposal of `doc` carried out here, with who
    /// could read the document (`readers`), to give it back to a relay
    /// that lost it.
    pub(crate) fn keep_disposal(
        &self,
        doc: &DocId,
        gone: &Signed,
        readers: Vec<AccountId>,
    ) -> Result<()> {
        self.change_kept(doc, |k| {
            *k = Some(Kept {
                gone: gone.clone(),
                readers,
                relay_keeps: None,
            })
        })
    }

    fn change_kept(&self, doc: &DocId, change: impl FnOnce(&mut Option<Kept>)) -> Result<()> {
        let mut kept = self.kept_disposals()?;
        let mut one = kept.remove(doc);
        change(&mut one);
        kept.extend(one.map(|k| (*doc, k)));
        Ok(self.store.put_secret(KEPT, &codec::encode(&kept))?)
    }

    /// Forgets the kept disposal of `doc`, saying why in the trail. The
    /// case stays deleted here: taking it up again on a relay's word (a
    /// relay that kept its ciphertext can refuse anything) would undo the
    /// person's disposal.
    fn forget_disposal(&mut self, doc: &DocId, why: &str) -> Result<()> {
        self.atomically(|home| {
            home.change_kept(doc, |k| *k = None)?;
            home.trail().record(
                &format!(
                    "the relay lacked this case's disposal, and {why}: it is no longer given back"
                ),
                Some(*doc),
            )
        })
    }

    /// Carries out the disposals the relay lists over more access entries
    /// than it shows: of each document held here, not owned (owned, see
    /// `check::Need::fork`), that the relay lists with fewer entries than
    /// this device had from it (`confirmed`), the last entry is fetched,
    /// and one that is a disposal is taken as any other. That is a
    /// disposal given back after a restore, over a log an owner's device
    /// that never saw it wrote on (and this device took). Returns what
    /// came of each disposal found (one refused is held back this round,
    /// with why, rather than refusing the whole listing); any other shorter
    /// log is left to the listing's judgment, which holds that document
    /// back as a rollback.
    pub(super) async fn disposed_over_more(
        &mut self,
        relay: &Relay,
        heads: &[DocHead],
        confirmed: &HashMap<DocId, u64>,
        owned: &BTreeSet<DocId>,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<Vec<(DocId, Taken)>> {
        let mut taken = Vec::new();
        for h in heads {
            let had = confirmed.get(&h.doc).copied().unwrap_or(0);
            if h.access_len == 0 || h.access_len >= had || owned.contains(&h.doc) {
                continue;
            }
            let from = h.access_len - 1;
            let entries = match relay
                .request(&Request::GetAccess { doc: h.doc, from })
                .await?
            {
                Response::Log { entries } => entries,
                r => return Err(unexpected(r)),
            };
            let [gone] = &entries[..] else {
                continue;
            };
            if !is_disposal(gone) {
                continue;
            }
            taken.push((
                h.doc,
                self.take_disposal(relay, &h.doc, gone, accounts).await?,
            ));
        }
        Ok(taken)
    }

    /// Gives `kept`, the disposal of `doc`, back to a relay whose listing
    /// lacked it. Says whether the relay took it. One refused for what it
    /// is (it no longer counts there) is forgotten, and the trail says so;
    /// one refused for the moment is given back next round.
    pub(super) async fn give_back_disposal(
        &mut self,
        relay: &Relay,
        doc: &DocId,
        kept: Kept,
        accounts: &mut BTreeMap<AccountId, AccountState>,
    ) -> Result<bool> {
        let Ok(entry) = kept.gone.open::<DocEntry>(access::SIG_LABEL) else {
            self.forget_disposal(doc, "what was kept does not open")?;
            return Ok(false);
        };
        // Nothing is judged against a log refused this round: given back
        // once it is mended.
        if self.synced.refused_logs.contains_key(&entry.account) {
            return Ok(false);
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(entry.account) {
            match self.other_log(relay, &entry.account).await? {
                Some(st) => slot.insert(st),
                None => return Ok(false),
            };
        }
        let owner = &accounts[&entry.account];
        let mine = entry.account == self.account_id();
        if disposal_refused(&kept.gone, doc, owner).is_some() {
            // Not signed again here: a retired laptop's disposal and a
            // stolen one's look alike, and a disposal is a person's act.
            self.forget_disposal(
                doc,
                "it no longer counts (the device that signed it was revoked since): a device that never saw it keeps the case; dispose of it again there",
            )?;
            return Ok(false);
        }
        let request = Request::RestoreDisposal {
            doc: *doc,
            entry: kept.gone.clone(),
            readers: if mine {
                kept.readers.clone()
            } else {
                Vec::new()
            },
        };
        let answer = match relay.request(&request).await {
            Ok(Response::Log { entries }) => entries,
            Ok(r) => return Err(unexpected(r)),
            Err(NetError::Relay {
                code: ErrorCode::Forbidden,
                reason,
            }) => {
                self.forget_disposal(doc, &format!("the relay refused it given back ({reason})"))?;
                return Ok(false);
            }
            // Refused for the moment: the relay's copy of the owner's log
            // may lack the signer yet, or it moved on meanwhile.
            Err(NetError::Relay { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if answer == std::slice::from_ref(&kept.gone) {
            self.atomically(|home| {
                home.trail().record(
                    "the relay lacked this case's disposal (restored from an older copy, or losing data): given back, so it is deleted again wherever it was",
                    Some(*doc),
                )?;
                // It may have lost more than the disposal: see `heal::RECHECK`.
                home.relay_lost_data()
            })?;
            return Ok(true);
        }
        // Another device gave one back first, or the relay keeps another:
        // its listing of that one is the disposal's from now on.
        let keeps = answer.last().map(|e| e.hash(access::HASH_LABEL));
        self.change_kept(doc, |k| {
            if let Some(k) = k {
                k.relay_keeps = keeps;
            }
        })?;
        Ok(false)
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
        let kept = |gone: Signed| Kept {
            gone,
            readers: Vec::new(),
            relay_keeps: None,
        };
        let mut kept: BTreeMap<DocId, Kept> = [
            (mine, kept(disposal(mine, me))),
            (theirs, kept(disposal(theirs, colleague))),
        ]
        .into();
        let gone = |k: &BTreeMap<DocId, Kept>, d: &DocId| k[d].gone.hash(access::HASH_LABEL);
        // Listed as disposed of: nothing to give back.
        let listed = [
            head(mine, gone(&kept, &mine)),
            head(theirs, gone(&kept, &theirs)),
        ];
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
        // Listed with a disposal the relay said it keeps instead: nothing.
        kept.get_mut(&theirs).unwrap().relay_keeps = Some(Hash([7; 32]));
        let back: Vec<DocId> = lacking(&kept, &live, &me)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(back, vec![mine]);
    }
}
