//! Sharing a case with a colleague: contacts identified by a card and
//! verified by comparing safety numbers, then a signed access-log entry that
//! adds the colleague's account with a role, an expiry, and the purpose and
//! consent sealed under the case key; unsharing removes the member and moves
//! the case to a new key epoch sealed only to the remaining members.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, Role};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::frames::ErrorCode;
use casebook_shared::ids::{AccountId, DocId};
use serde::{Deserialize, Serialize};

use crate::audit::{Disclosed, Disclosure};
use crate::error::{Error, Inconsistent, Result};
use crate::home::Home;
use crate::net::{NetError, Relay};
use crate::sync::{Upkeep, upkeep};

mod comments;
mod contacts;

pub use comments::CommentRefusal;
pub use contacts::{Contact, ContactError, Contacts, card, parse_card, safety_number};

/// Why a case was not shared or unshared as asked. Each refusal names the
/// rule: sharing is the owner's, and a share states its terms.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("not allowed: invalid role {0:?}: use read, comment or write")]
    InvalidRole(String),
    #[error("not allowed: only the case's owner can share it")]
    NotOwner,
    /// A case has one owner; sharing gives a colleague a lesser role.
    #[error("not allowed: a colleague cannot be made an owner")]
    OwnerRole,
    #[error("not allowed: the expiry is in the past")]
    ExpiryPast,
    /// A disclosure is recorded with why it was made and on what consent.
    #[error("not allowed: a share needs a purpose and the consent it rests on")]
    NoPurposeOrConsent,
    /// The relay served an account log that is not the one the verified
    /// card names: the relay, or someone in between, substituted a key.
    #[error(
        "not allowed: the relay served an account log for {name} that does not match the verified card (safety-number mismatch); nothing was shared"
    )]
    CardMismatch { name: String },
    /// Terms change by ending a share and granting it again, so each
    /// grant's terms stay as they were recorded.
    #[error(
        "not allowed: this case is already shared with {name}; unshare it first to change the terms"
    )]
    AlreadyShared { name: String },
    #[error("not allowed: this case is not shared with {name}")]
    NotShared { name: String },
}

/// Why and on what terms a case was shared: sealed in the access log under
/// the case key, so the relay cannot read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShareDetails {
    pub purpose: String,
    pub consent: String,
    pub shared_by: String,
    pub private_included: bool,
}

/// A case someone shared with this account, as `shared` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SharedWithMe {
    pub case: DocId,
    pub name: Option<String>,
    pub owner: AccountId,
    /// The owner's name as a contact here, if they are one.
    pub owner_contact: Option<String>,
    pub role: Role,
    pub expires: Option<u64>,
    pub details: Option<ShareDetails>,
    pub state: ShareState,
}

impl SharedWithMe {
    /// Who shared it, as they named themselves when sharing, else as a
    /// contact here, else by account.
    pub fn shared_by(&self) -> String {
        self.details
            .as_ref()
            .map(|d| d.shared_by.clone())
            .or_else(|| self.owner_contact.clone())
            .unwrap_or_else(|| format!("account {}", self.owner.short()))
    }
}

/// Whether a share still gives access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareState {
    Active,
    /// Its expiry has passed.
    Expired,
    /// The owner ended it.
    Ended,
}

impl ShareState {
    fn of(expires: Option<u64>, now: u64) -> ShareState {
        if expires.is_some_and(|e| e <= now) {
            ShareState::Expired
        } else {
            ShareState::Active
        }
    }
}

/// A share of one of this account's cases.
#[derive(Clone, Debug, Serialize)]
pub struct ShareRow {
    pub member: AccountId,
    pub contact: Option<String>,
    pub role: Role,
    pub expires: Option<u64>,
    pub state: ShareState,
}

/// Parses `read`, `comment` or `write`.
pub fn parse_role(s: &str) -> Result<Role> {
    match s.trim().to_lowercase().as_str() {
        "read" => Ok(Role::Read),
        "comment" => Ok(Role::Comment),
        "write" => Ok(Role::Write),
        _ => Err(ShareError::InvalidRole(s.to_string()).into()),
    }
}

impl Home {
    fn owned_case(&self, case: &DocId) -> Result<Option<DocId>> {
        let meta = self
            .access()
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        if meta.owner != self.account_id() {
            return Err(ShareError::NotOwner.into());
        }
        Ok(self
            .docs()
            .cases()?
            .into_iter()
            .find(|(d, _)| d == case)
            .and_then(|(_, s)| s.private_doc))
    }

    /// Shares a case with a verified contact. The colleague's account log is
    /// fetched and checked against the contact's account id (a relay cannot
    /// substitute another key: the id is the hash of the log's first entry).
    /// The private document goes too only with `include_private`. The new
    /// access entries go out with the next sync. Returns the colleague's account.
    #[allow(clippy::too_many_arguments)]
    pub async fn share(
        &mut self,
        relay: &Relay,
        case: &DocId,
        contact: &str,
        role: Role,
        purpose: &str,
        consent: &str,
        expires: Option<u64>,
        include_private: bool,
    ) -> Result<AccountId> {
        let c = self.contacts().get(contact)?;
        if !c.verified {
            return Err(Error::ContactUnverified(c.name));
        }
        if role == Role::Owner {
            return Err(ShareError::OwnerRole.into());
        }
        if expires.is_some_and(|e| e <= self.now()) {
            return Err(ShareError::ExpiryPast.into());
        }
        if purpose.trim().is_empty() || consent.trim().is_empty() {
            return Err(ShareError::NoPurposeOrConsent.into());
        }
        let private = self.owned_case(case)?;
        let mismatch = || -> Error {
            ShareError::CardMismatch {
                name: c.name.clone(),
            }
            .into()
        };
        let colleague: AccountState = match self.refresh_log(relay, &c.account).await {
            Ok(s) => s,
            Err(Error::Inconsistent(_) | Error::Rollback(_) | Error::Account(_)) => {
                return Err(mismatch());
            }
            Err(Error::Net(NetError::Relay {
                code: ErrorCode::NotFound,
                ..
            })) => return Err(Error::ContactNotOnRelay(c.name.clone())),
            Err(e) => return Err(e),
        };
        if colleague.id != c.account {
            return Err(mismatch());
        }
        let mut docs = vec![*case];
        if include_private {
            docs.extend(private);
        }
        for d in &docs {
            if self
                .access()
                .doc_meta(d)?
                .is_some_and(|m| m.members.iter().any(|(a, _, _)| *a == c.account))
            {
                return Err(ShareError::AlreadyShared {
                    name: c.name.clone(),
                }
                .into());
            }
        }
        let details = ShareDetails {
            purpose: purpose.trim().to_string(),
            consent: consent.trim().to_string(),
            shared_by: self.name().to_string(),
            private_included: include_private,
        };
        self.atomically(|home| {
            for d in &docs {
                let meta = home
                    .access()
                    .doc_meta(d)?
                    .ok_or_else(|| Error::UnknownCase(d.to_hex()))?;
                let keys = home.access().doc_keys(d)?;
                let key = keys.get(&meta.epoch).ok_or(Error::NoKey(*d))?;
                let op = DocOp::AddMember {
                    member: c.account,
                    role,
                    expires,
                    details: access::seal_details(d, meta.epoch, key, &codec::encode(&details)),
                    key: access::key_envelope(d, meta.epoch, key, &colleague)?,
                };
                home.access().append_access_entry(d, op)?;
            }
            let case_name = home
                .docs()
                .cases()?
                .into_iter()
                .find(|(d, _)| d == case)
                .map(|(_, s)| s.name)
                .unwrap_or_default();
            home.trail().record_with(
                &format!(
                    "share granted to {} ({}), role {}, purpose {:?}, consent {:?}, expires {}{}",
                    c.name,
                    c.account.short(),
                    role.name(),
                    details.purpose,
                    details.consent,
                    expires.map_or("never".to_string(), crate::clock::rfc3339),
                    if include_private {
                        ", private notes included"
                    } else {
                        ""
                    }
                ),
                Some(*case),
                Disclosed::Share(Disclosure {
                    recipient: c.name.clone(),
                    recipient_account: c.account,
                    case_name,
                    role: role.name().to_string(),
                    purpose: details.purpose.clone(),
                    consent: details.consent.clone(),
                    expires,
                    private_included: include_private,
                }),
            )
        })?;
        Ok(c.account)
    }

    /// Takes a share back: the member is removed and the case (and its
    /// private document, if shared) moves to a new epoch sealed only to the
    /// remaining members. Goes out with the next sync.
    /// Returns the account the case was taken back from.
    pub fn unshare(&mut self, case: &DocId, contact: &str) -> Result<AccountId> {
        let c = self.contacts().get(contact)?;
        let private = self.owned_case(case)?;
        let docs: Vec<DocId> = std::iter::once(*case).chain(private).collect();
        self.atomically(|home| {
            let mut removed = 0;
            for d in &docs {
                let shared = home
                    .access()
                    .doc_meta(d)?
                    .is_some_and(|m| m.members.iter().any(|(a, _, _)| *a == c.account));
                if shared {
                    home.access()
                        .append_access_entry(d, DocOp::RemoveMember { member: c.account })?;
                    home.rotate_doc(d)?;
                    removed += 1;
                }
            }
            if removed == 0 {
                return Err(ShareError::NotShared {
                    name: c.name.clone(),
                }
                .into());
            }
            home.trail().record(
                &format!(
                    "share revoked from {} ({}); case keys rotated",
                    c.name,
                    c.account.short()
                ),
                Some(*case),
            )
        })?;
        Ok(c.account)
    }

    /// Who a case of this account is shared with now (expired shares
    /// included, marked; ended ones left out).
    pub fn shares(&self, case: &DocId) -> Result<Vec<ShareRow>> {
        let mut rows = self.shares_ever(case)?;
        rows.retain(|r| r.state != ShareState::Ended);
        Ok(rows)
    }

    /// Everyone a case of this account was ever shared with, ended shares
    /// marked.
    pub fn shares_ever(&self, case: &DocId) -> Result<Vec<ShareRow>> {
        let meta = self
            .access()
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        let contacts = self.contacts().list()?;
        let contact = |a: &AccountId| {
            contacts
                .iter()
                .find(|c| c.account == *a)
                .map(|c| c.name.clone())
        };
        let now = self.now();
        let mut rows: Vec<ShareRow> = meta
            .members
            .iter()
            .filter(|(a, _, _)| *a != meta.owner)
            .map(|(a, r, e)| ShareRow {
                member: *a,
                contact: contact(a),
                role: *r,
                expires: *e,
                state: ShareState::of(*e, now),
            })
            .collect();
        // Shares the owner ended: members no more, their grants closed.
        for g in meta.grants.iter().rev() {
            if g.account != meta.owner && !rows.iter().any(|r| r.member == g.account) {
                rows.push(ShareRow {
                    member: g.account,
                    contact: contact(&g.account),
                    role: g.role,
                    expires: None,
                    state: ShareState::Ended,
                });
            }
        }
        Ok(rows)
    }

    /// Cases other accounts share with this one now (expired shares
    /// included, marked; ended ones left out).
    pub fn shared_with_me(&self) -> Result<Vec<SharedWithMe>> {
        let mut rows = self.shared_with_me_ever()?;
        rows.retain(|r| r.state != ShareState::Ended);
        Ok(rows)
    }

    /// Cases other accounts ever shared with this one, ended shares marked.
    pub fn shared_with_me_ever(&self) -> Result<Vec<SharedWithMe>> {
        let cases = self.docs().cases()?;
        self.shared_with_me_among(&self.store.doc_ids()?, &cases)
    }

    /// [`Self::shared_with_me_ever`], of `docs` only, naming them from
    /// `cases` (the listing the caller has read already).
    pub(crate) fn shared_with_me_among(
        &self,
        docs: &[DocId],
        cases: &[(DocId, crate::notes::CaseSummary)],
    ) -> Result<Vec<SharedWithMe>> {
        let me = self.account_id();
        let contacts = self.contacts().list()?;
        let mut out = Vec::new();
        for &doc in docs {
            let Some(meta) = self.access().doc_meta(&doc)? else {
                continue;
            };
            if meta.owner == me {
                continue;
            }
            let (role, expires, state) =
                match meta.members.iter().find(|(a, _, _)| *a == me).copied() {
                    Some((_, role, expires)) => {
                        (role, expires, ShareState::of(expires, self.now()))
                    }
                    None => match meta.grants.iter().rev().find(|g| g.account == me) {
                        Some(g) => (g.role, None, ShareState::Ended),
                        None => continue,
                    },
                };
            let name = cases
                .iter()
                .find(|(d, _)| *d == doc)
                .map(|(_, s)| s.name.clone());
            if name.is_none() && self.store.has_body(&doc)? {
                continue; // the private document of a shared case
            }
            out.push(SharedWithMe {
                case: doc,
                name,
                owner: meta.owner,
                owner_contact: contacts
                    .iter()
                    .find(|c| c.account == meta.owner)
                    .map(|c| c.name.clone()),
                role,
                expires,
                details: self.share_details(&doc, &me)?,
                state,
            });
        }
        Ok(out)
    }

    /// Opens the details of the entry that added `member`.
    pub(crate) fn share_details(
        &self,
        doc: &DocId,
        member: &AccountId,
    ) -> Result<Option<ShareDetails>> {
        let keys = self.access().doc_keys(doc)?;
        let mut epoch = 0;
        let mut found = None;
        for e in self.access().access_log(doc)? {
            let entry: DocEntry = e
                .open(access::SIG_LABEL)
                .map_err(Inconsistent::EntryDoesNotOpen)?;
            match entry.op {
                DocOp::Rotate { epoch: ep, .. } => epoch = ep,
                DocOp::AddMember {
                    member: m, details, ..
                } if m == *member => {
                    found = keys
                        .get(&epoch)
                        .and_then(|k| access::open_details(doc, epoch, k, &details).ok())
                        .and_then(|b| codec::decode(&b).ok());
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

impl Home {
    /// Keeps each document this account owns as its access rules say
    /// ([`upkeep`]): members whose share expired are removed, and a
    /// document whose newest key was sealed to a replaced account key moves
    /// to a new epoch (which also finishes a revocation whose rotations
    /// were cut short), as does one a turn of an account log left due
    /// ([`Home::rotations_due`]). Documents whose relay access log did not
    /// verify this round wait. Returns how many documents changed.
    pub(crate) fn maintain_owned_docs(
        &mut self,
        accounts: &BTreeMap<AccountId, AccountState>,
        held_back: &std::collections::BTreeSet<DocId>,
    ) -> Result<usize> {
        let me = self.account_id();
        let at = self.now();
        self.atomically(|home| {
            let mut changed = 0;
            let mut due = home.rotations_due()?;
            let was_due = due.len();
            let docs = home.store.doc_ids()?;
            due.retain(|d| docs.contains(d));
            for doc in docs {
                let Some(meta) = home.access().doc_meta(&doc)? else {
                    continue;
                };
                // A document disposed of (its disposal maybe not sent yet)
                // takes no more entries.
                if meta.owner != me || meta.disposed {
                    due.remove(&doc);
                    continue;
                }
                if held_back.contains(&doc) {
                    continue;
                }
                let Upkeep { expired, stale, .. } = upkeep(&meta, &me, at, |a| {
                    accounts.get(a).map(|st| st.key.generation)
                });
                // Due since a turn could not move it on (see `sync::turn`).
                let turned = due.remove(&doc);
                if expired.is_empty() && stale.is_empty() && !turned {
                    continue;
                }
                for a in &expired {
                    home.access()
                        .append_access_entry(&doc, DocOp::RemoveMember { member: *a })?;
                }
                // Due alone: one that still cannot move on (see
                // `Home::rotate_doc`) stays due and fails no round.
                if expired.is_empty() && stale.is_empty() {
                    match home.rotate_doc(&doc) {
                        Ok(()) => {}
                        Err(e @ crate::error::Error::Store(_)) => return Err(e),
                        Err(_) => {
                            due.insert(doc);
                            continue;
                        }
                    }
                } else {
                    home.rotate_doc(&doc)?;
                }
                if !expired.is_empty() {
                    home.trail().record(
                        &format!(
                            "share expired for {}; keys rotated",
                            home.names_of(&expired).join(", ")
                        ),
                        Some(doc),
                    )?;
                }
                if !stale.is_empty() {
                    home.trail().record(
                        &format!(
                            "keys rotated: {} revoked a device",
                            home.names_of(&stale).join(", ")
                        ),
                        Some(doc),
                    )?;
                }
                if turned && stale.is_empty() {
                    home.trail().record(
                        "keys rotated: an account log this case rests on took another turn",
                        Some(doc),
                    )?;
                }
                changed += 1;
            }
            if due.len() != was_due {
                home.set_rotations_due(&due)?;
            }
            Ok(changed)
        })
    }

    /// Contact names for accounts (this account is "this account"; one not
    /// among the contacts by its short id).
    pub(crate) fn names_of(&self, accounts: &[AccountId]) -> Vec<String> {
        let contacts = self.contacts().list().unwrap_or_default();
        accounts
            .iter()
            .map(|a| {
                if *a == self.account_id() {
                    "this account".to_string()
                } else {
                    contacts
                        .iter()
                        .find(|c| c.account == *a)
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| a.short())
                }
            })
            .collect()
    }
}
