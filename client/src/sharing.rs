//! Sharing a case with a colleague: contacts identified by a card and
//! verified by comparing safety numbers, then a signed access-log entry that
//! adds the colleague's account with a role, an expiry, and the purpose and
//! consent sealed under the case key; unsharing removes the member and moves
//! the case to a new key epoch sealed only to the remaining members.

use std::collections::BTreeMap;

use casebook_shared::access::{self, DocEntry, DocOp, Role};
use casebook_shared::account::AccountState;
use casebook_shared::codec;
use casebook_shared::crypto;
use casebook_shared::ids::{AccountId, DocId};
use serde::{Deserialize, Serialize};

use crate::docs::Loaded;
use crate::error::{Error, Result};
use crate::home::{Disclosure, Home, now};
use crate::net::Relay;
use crate::notes::{CaseDoc, Note, Profile};
use crate::store::OutKind;

const CARD_PREFIX: &str = "casebook-card1";
const CONTACTS: &str = "contacts";

/// Someone this account may share with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub account: AccountId,
    /// The two people compared safety numbers.
    pub verified: bool,
    pub added_at: u64,
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
}

/// A share of one of this account's cases.
#[derive(Clone, Debug, Serialize)]
pub struct ShareRow {
    pub member: AccountId,
    pub contact: Option<String>,
    pub role: Role,
    pub expires: Option<u64>,
}

/// The safety number of an account: 60 digits in 12 groups of 5, to read
/// aloud and compare. Both sides compute it from the account id alone.
pub fn safety_number(account: &AccountId) -> String {
    let h = crypto::hash("casebook/v1/safety-number", &account.0);
    (0..12)
        .map(|i| {
            let b = &h.0[i * 2..i * 2 + 3];
            let n = (u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])) % 100_000;
            format!("{n:05}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one-line card a colleague pastes into `contact add`.
pub fn card(account: &AccountId, name: &str) -> String {
    let check = crypto::hash(
        "casebook/v1/card",
        &[&account.0[..], name.as_bytes()].concat(),
    );
    format!(
        "{CARD_PREFIX}:{}:{}:{}",
        account.to_hex(),
        hex::encode(name.as_bytes()),
        hex::encode(&check.0[..4])
    )
}

/// Parses a card; returns the account and the name it carries.
pub fn parse_card(text: &str) -> Result<(AccountId, String)> {
    let bad = || {
        Error::NotAllowed(format!(
            "{:?} is not a casebook card: it starts with {CARD_PREFIX}: and is printed by `casebook whoami`",
            text.chars().take(40).collect::<String>()
        ))
    };
    let parts: Vec<&str> = text.trim().split(':').collect();
    let [CARD_PREFIX, account, name, check] = parts.as_slice() else {
        return Err(bad());
    };
    let account: AccountId = account.parse().map_err(|_| bad())?;
    let name = String::from_utf8(hex::decode(name).map_err(|_| bad())?).map_err(|_| bad())?;
    if card(&account, &name).rsplit(':').next() != Some(*check) {
        return Err(Error::NotAllowed(
            "the card's check digits do not match: it was changed or copied wrong".into(),
        ));
    }
    Ok((account, name))
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Read => "read",
        Role::Comment => "comment",
        Role::Write => "write",
        Role::Owner => "owner",
    }
}

/// Parses `read`, `comment` or `write`.
pub fn parse_role(s: &str) -> Result<Role> {
    match s.trim().to_lowercase().as_str() {
        "read" => Ok(Role::Read),
        "comment" => Ok(Role::Comment),
        "write" => Ok(Role::Write),
        _ => Err(Error::NotAllowed(format!(
            "invalid role {s:?}: use read, comment or write"
        ))),
    }
}

impl Home {
    /// This account's name, safety number and card.
    pub fn whoami(&self) -> (String, AccountId, String, String) {
        let a = self.account_id();
        (
            self.name().to_string(),
            a,
            safety_number(&a),
            card(&a, self.name()),
        )
    }

    /// Every contact.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        Ok(match self.store.get_secret(CONTACTS)? {
            Some(b) => codec::decode(&b)?,
            None => Vec::new(),
        })
    }

    fn save_contacts(&self, contacts: &[Contact]) -> Result<()> {
        Ok(self
            .store
            .put_secret(CONTACTS, &codec::encode(&contacts.to_vec()))?)
    }

    /// A contact by name (case-insensitive).
    pub fn contact(&self, name: &str) -> Result<Contact> {
        self.contacts()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                Error::NotAllowed(format!(
                    "no contact named {name:?}: add one with `casebook contact add NAME CARD`"
                ))
            })
    }

    /// Adds a contact from a card (unverified until safety numbers match).
    pub fn add_contact(&mut self, name: &str, card_text: &str) -> Result<Contact> {
        let (account, _card_name) = parse_card(card_text)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::NotAllowed(
                "the contact's name must not be empty".into(),
            ));
        }
        if account == self.account_id() {
            return Err(Error::NotAllowed("that card is this account's own".into()));
        }
        let mut all = self.contacts()?;
        if all
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name) || c.account == account)
        {
            return Err(Error::NotAllowed(
                "a contact with that name or card exists already: see `casebook contact list`"
                    .into(),
            ));
        }
        let c = Contact {
            name: name.to_string(),
            account,
            verified: false,
            added_at: now(),
        };
        all.push(c.clone());
        self.save_contacts(&all)?;
        self.audit(&format!("contact {name} added (unverified)"), None)?;
        Ok(c)
    }

    /// Marks a contact verified once the safety number read out matches.
    pub fn verify_contact(&mut self, name: &str, number: &str) -> Result<()> {
        let mut all = self.contacts()?;
        let c = all
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| Error::NotAllowed(format!("no contact named {name:?}")))?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        if digits(number) != digits(&safety_number(&c.account)) {
            return Err(Error::NotAllowed(format!(
                "the safety number does not match the one for {}: do not share with this card; ask for it again",
                c.name
            )));
        }
        c.verified = true;
        let who = c.name.clone();
        self.save_contacts(&all)?;
        self.audit(&format!("contact {who} verified"), None)?;
        Ok(())
    }

    fn owned_case(&self, case: &DocId) -> Result<Option<DocId>> {
        let meta = self
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        if meta.owner != self.account_id() {
            return Err(Error::NotAllowed(
                "only the case's owner can share it".into(),
            ));
        }
        Ok(self
            .cases()?
            .into_iter()
            .find(|(d, _)| d == case)
            .and_then(|(_, s)| s.private_doc))
    }

    /// Shares a case with a verified contact. The colleague's account log is
    /// fetched and checked against the contact's account id (a relay cannot
    /// substitute another key: the id is the hash of the log's first entry).
    /// The private document goes too only with `include_private`. The new
    /// access entries go out with the next sync.
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
    ) -> Result<()> {
        let c = self.contact(contact)?;
        if !c.verified {
            return Err(Error::NotAllowed(format!(
                "{} is not verified: compare safety numbers (`casebook whoami` on their side), then `casebook contact verify \"{}\" NUMBER`",
                c.name, c.name
            )));
        }
        if role == Role::Owner {
            return Err(Error::NotAllowed(
                "a colleague cannot be made an owner".into(),
            ));
        }
        if expires.is_some_and(|e| e <= now()) {
            return Err(Error::NotAllowed("the expiry is in the past".into()));
        }
        if purpose.trim().is_empty() || consent.trim().is_empty() {
            return Err(Error::NotAllowed(
                "a share needs a purpose and the consent it rests on".into(),
            ));
        }
        let private = self.owned_case(case)?;
        let mismatch = || {
            Error::NotAllowed(format!(
                "the relay served an account log for {} that does not match the verified card (safety-number mismatch); nothing was shared",
                c.name
            ))
        };
        let colleague: AccountState = match self.refresh_log(relay, &c.account).await {
            Ok(s) => s,
            Err(Error::Inconsistent(_) | Error::Rollback(_) | Error::Account(_)) => {
                return Err(mismatch());
            }
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
                .doc_meta(d)?
                .is_some_and(|m| m.members.iter().any(|(a, _, _)| *a == c.account))
            {
                return Err(Error::NotAllowed(format!(
                    "this case is already shared with {}; unshare it first to change the terms",
                    c.name
                )));
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
                    .doc_meta(d)?
                    .ok_or_else(|| Error::UnknownCase(d.to_hex()))?;
                let keys = home.doc_keys(d)?;
                let key = keys
                    .get(&meta.epoch)
                    .ok_or_else(|| Error::NotAllowed("no key for this case".into()))?;
                let op = DocOp::AddMember {
                    member: c.account,
                    role,
                    expires,
                    details: access::seal_details(d, meta.epoch, key, &codec::encode(&details)),
                    key: access::key_envelope(d, meta.epoch, key, &colleague)?,
                };
                home.append_access_entry(d, op)?;
            }
            let case_name = home
                .cases()?
                .into_iter()
                .find(|(d, _)| d == case)
                .map(|(_, s)| s.name)
                .unwrap_or_default();
            home.audit_with(
                &format!(
                    "share granted to {} ({}), role {}, purpose {:?}, consent {:?}, expires {}{}",
                    c.name,
                    c.account.short(),
                    role_name(role),
                    details.purpose,
                    details.consent,
                    expires.map_or("never".to_string(), |e| e.to_string()),
                    if include_private {
                        ", private notes included"
                    } else {
                        ""
                    }
                ),
                Some(*case),
                Some(Disclosure {
                    recipient: c.name.clone(),
                    recipient_account: c.account,
                    case_name,
                    role: role_name(role).to_string(),
                    purpose: details.purpose.clone(),
                    consent: details.consent.clone(),
                    expires,
                    private_included: include_private,
                }),
            )
        })
    }

    /// Takes a share back: the member is removed and the case (and its
    /// private document, if shared) moves to a new epoch sealed only to the
    /// remaining members. Goes out with the next sync.
    pub fn unshare(&mut self, case: &DocId, contact: &str) -> Result<()> {
        let c = self.contact(contact)?;
        let private = self.owned_case(case)?;
        let docs: Vec<DocId> = std::iter::once(*case).chain(private).collect();
        self.atomically(|home| {
            let mut removed = 0;
            for d in &docs {
                let shared = home
                    .doc_meta(d)?
                    .is_some_and(|m| m.members.iter().any(|(a, _, _)| *a == c.account));
                if shared {
                    home.append_access_entry(d, DocOp::RemoveMember { member: c.account })?;
                    home.rotate_doc(d)?;
                    removed += 1;
                }
            }
            if removed == 0 {
                return Err(Error::NotAllowed(format!(
                    "this case is not shared with {}",
                    c.name
                )));
            }
            home.audit(
                &format!(
                    "share revoked from {} ({}); case keys rotated",
                    c.name,
                    c.account.short()
                ),
                Some(*case),
            )
        })
    }

    /// Who a case of this account is shared with.
    pub fn shares(&self, case: &DocId) -> Result<Vec<ShareRow>> {
        let meta = self
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        let contacts = self.contacts()?;
        Ok(meta
            .members
            .iter()
            .filter(|(a, _, _)| *a != meta.owner)
            .map(|(a, r, e)| ShareRow {
                member: *a,
                contact: contacts
                    .iter()
                    .find(|c| c.account == *a)
                    .map(|c| c.name.clone()),
                role: *r,
                expires: *e,
            })
            .collect())
    }

    /// Cases other accounts shared with this one.
    pub fn shared_with_me(&self) -> Result<Vec<SharedWithMe>> {
        let me = self.account_id();
        let contacts = self.contacts()?;
        let cases = self.cases()?;
        let mut out = Vec::new();
        for doc in self.store.doc_ids()? {
            let Some(meta) = self.doc_meta(&doc)? else {
                continue;
            };
            if meta.owner == me {
                continue;
            }
            let Some((_, role, expires)) = meta.members.iter().find(|(a, _, _)| *a == me).copied()
            else {
                continue;
            };
            let name = cases
                .iter()
                .find(|(d, _)| *d == doc)
                .map(|(_, s)| s.name.clone());
            if name.is_none() && self.store.doc_body(&doc)?.is_some() {
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
            });
        }
        Ok(out)
    }

    /// Opens the details of the entry that added `member`.
    fn share_details(&self, doc: &DocId, member: &AccountId) -> Result<Option<ShareDetails>> {
        let keys = self.doc_keys(doc)?;
        let mut epoch = 0;
        let mut found = None;
        for e in self.access_log(doc)? {
            let entry: DocEntry = e
                .open(access::SIG_LABEL)
                .map_err(|err| Error::Inconsistent(err.to_string()))?;
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

    /// Adds a comment to a note of a case shared with at least the comment role.
    pub fn comment_note(&mut self, case: &DocId, note: &str, text: &str, at: &str) -> Result<()> {
        let meta = self
            .doc_meta(case)?
            .ok_or_else(|| Error::UnknownCase(case.to_hex()))?;
        let me = self.account_id();
        let allowed = meta.owner == me || meta.role_of(&me, now()).is_some_and(Role::can_upload);
        if !allowed {
            return Err(Error::NotAllowed(
                "your role on this case does not allow comments".into(),
            ));
        }
        let by = self.name().to_string();
        self.change_case(case, "comment added", OutKind::Comment, |c| {
            let n = c.resolve_note_id(note)?;
            Ok(c.add_comment(&n, &by, at, text)?)
        })
    }
}

/// Whether a commenter's change, applied where it was written, adds
/// comments and does nothing else; `Ok(false)` while its base is not here.
fn judge_comment(case: &mut CaseDoc, body: &[u8]) -> Result<bool> {
    let Some(before) = case.at_base_of(body)? else {
        return Ok(false);
    };
    let mut after = before.copy();
    after.apply(body)?;
    if !after.missing_deps().is_empty() {
        return Err(Error::NotAllowed(
            "it depends on changes not held here".into(),
        ));
    }
    if without_comments(&before) != without_comments(&after) {
        return Err(Error::NotAllowed("it changes the case itself".into()));
    }
    let kept = before.notes().iter().all(|b| {
        after
            .note(&b.id)
            .is_some_and(|a| b.comments.iter().all(|c| a.comments.contains(c)))
    });
    if !kept {
        return Err(Error::NotAllowed("it removes comments".into()));
    }
    Ok(true)
}

/// A case without its comments: what a commenter must leave unchanged.
fn without_comments(c: &CaseDoc) -> (String, Profile, Vec<Note>) {
    let mut notes = c.notes();
    for n in &mut notes {
        n.comments.clear();
    }
    (c.name(), c.profile(), notes)
}

impl Home {
    /// Applies a change from a member whose role is comment, if it adds
    /// comments to a case and changes nothing else (the relay lets such a
    /// member upload; only the content shows what the change does).
    ///
    /// The change is judged against the case as it stood where the change
    /// was written (its dependencies), never against what this device holds
    /// now: a device that first sees the comment after the owner's later
    /// edits (one paired or recovered since) must decide exactly as the
    /// devices that saw it first. Returns `Ok(false)`, changing nothing,
    /// while a change it builds on has not been applied here.
    pub(crate) fn apply_comment_change(&mut self, doc: &DocId, body: &[u8]) -> Result<bool> {
        if self.store.doc_body(doc)?.is_none() {
            return Err(Error::NotAllowed(
                "a comment on a document not held here".into(),
            ));
        }
        let mut loaded = self.take_loaded(doc)?;
        let judged = match &mut loaded {
            Loaded::Case(case) => judge_comment(case, body),
            Loaded::Private(_) => Err(Error::NotAllowed(
                "comments belong on case documents only".into(),
            )),
        };
        self.keep_loaded(doc, loaded)?;
        if !judged? {
            return Ok(false);
        }
        self.apply_batch(doc, body)?;
        Ok(true)
    }

    /// Keeps each document this account owns as its access rules say, at
    /// every sync, after the pull (so what the owner's other devices already
    /// did is known) and before the push: members whose share expired are
    /// removed, and
    /// a document whose newest key was sealed to an account key that has
    /// since been replaced (a device revoked, by this account or a member's)
    /// moves to a new epoch, so the revoked device holds no key of it. The
    /// second also finishes a revocation whose rotations were cut short.
    /// Documents whose relay access log did not verify this round wait.
    /// Returns how many documents changed.
    pub(crate) fn maintain_owned_docs(
        &mut self,
        accounts: &BTreeMap<AccountId, AccountState>,
        held_back: &std::collections::BTreeSet<DocId>,
    ) -> Result<usize> {
        let me = self.account_id();
        let at = now();
        self.atomically(|home| {
            let mut changed = 0;
            for doc in home.store.doc_ids()? {
                let Some(meta) = home.doc_meta(&doc)? else {
                    continue;
                };
                if meta.owner != me || held_back.contains(&doc) {
                    continue;
                }
                let expired: Vec<AccountId> = meta
                    .members
                    .iter()
                    .filter(|(a, _, e)| *a != me && e.is_some_and(|e| e <= at))
                    .map(|(a, _, _)| *a)
                    .collect();
                let stale: Vec<AccountId> = meta
                    .members
                    .iter()
                    .map(|(a, _, _)| *a)
                    .filter(|a| !expired.contains(a))
                    .filter(|a| {
                        accounts.get(a).is_some_and(|st| {
                            meta.wrap_generation(meta.epoch, a)
                                .is_none_or(|g| g < st.key.generation)
                        })
                    })
                    .collect();
                if expired.is_empty() && stale.is_empty() {
                    continue;
                }
                for a in &expired {
                    home.append_access_entry(&doc, DocOp::RemoveMember { member: *a })?;
                }
                home.rotate_doc(&doc)?;
                if !expired.is_empty() {
                    home.audit(
                        &format!(
                            "share expired for {}; keys rotated",
                            home.names_of(&expired).join(", ")
                        ),
                        Some(doc),
                    )?;
                }
                if !stale.is_empty() {
                    home.audit(
                        &format!(
                            "keys rotated: {} revoked a device",
                            home.names_of(&stale).join(", ")
                        ),
                        Some(doc),
                    )?;
                }
                changed += 1;
            }
            Ok(changed)
        })
    }

    /// Contact names for accounts (this account is "this account"; one not
    /// among the contacts by its short id).
    fn names_of(&self, accounts: &[AccountId]) -> Vec<String> {
        let contacts = self.contacts().unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_round_trip_and_reject_tampering() {
        let a = AccountId([7; 32]);
        let c = card(&a, "Dr. Chen");
        assert_eq!(parse_card(&c).unwrap(), (a, "Dr. Chen".to_string()));
        let tampered = c.replace("07", "08");
        assert!(parse_card(&tampered).is_err());
        assert!(parse_card("hello").is_err());
        assert!(parse_card("").is_err());
    }

    #[test]
    fn a_commenter_may_add_comments_and_nothing_else() {
        use crate::notes::{NoteFormat, NoteInput};
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(
            dir.path(),
            b"passphrase",
            "Dr. Rivera",
            "127.0.0.1:1",
            [0; 32],
        )
        .unwrap();
        let case = home.create_case("Jordan Avery", "2026-11-20").unwrap();
        let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
        input.fields = vec![("plan".into(), "Sleep diary.".into())];
        home.edit_case(&case, "note", |c| {
            Ok(c.add_note(input, "n1", "Dr. Rivera")?)
        })
        .unwrap();
        let saved = home.store.doc_body(&case).unwrap().unwrap();
        let mut theirs = CaseDoc::load(&saved, b"colleague-actor").unwrap();
        let heads = theirs.heads();
        theirs
            .add_comment("n1", "Dr. Chen", "2026-11-21T09:00:00Z", "Agree.")
            .unwrap();
        let comment = theirs.changes_since(&heads);
        let heads = theirs.heads();
        theirs
            .edit_note("n1", &[("plan".into(), "Stop the diary.".into())])
            .unwrap();
        let edit = theirs.changes_since(&heads);

        // The owner's own later edit, made after the comment merged there.
        let mut owners = CaseDoc::load(&saved, b"owner-other-actor").unwrap();
        owners.apply(&comment).unwrap();
        let heads = owners.heads();
        owners
            .edit_note("n1", &[("plan".into(), "Sleep diary; CBT-I.".into())])
            .unwrap();
        let owner_edit = owners.changes_since(&heads);

        assert!(
            !home.apply_comment_change(&case, &edit).unwrap(),
            "an edit built on the comment waits for it"
        );
        // A device that gets the owner's later edit first (it waits inside
        // the document for the comment) judges the comment where it was
        // written, as the devices that saw it first did.
        home.apply_batch(&case, &owner_edit).unwrap();
        assert!(home.apply_comment_change(&case, &comment).unwrap());
        assert!(home.apply_comment_change(&case, &edit).is_err(), "an edit");
        let note = home.read_case(&case, |c| c.note("n1").unwrap()).unwrap();
        assert_eq!(note.field("plan"), "Sleep diary; CBT-I.");
        assert_eq!(note.comments.len(), 1);
    }

    #[test]
    fn safety_numbers_are_sixty_digits() {
        let n = safety_number(&AccountId([1; 32]));
        assert_eq!(n.len(), 12 * 5 + 11);
        assert_ne!(n, safety_number(&AccountId([2; 32])));
    }
}
