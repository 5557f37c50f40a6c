//! Contacts: a colleague's account named by a card, and trusted only once
//! the two people have compared safety numbers.

use casebook_shared::clock::Clock;
use casebook_shared::codec;
use casebook_shared::crypto;
use casebook_shared::ids::AccountId;
use serde::{Deserialize, Serialize};

use crate::audit::Trail;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::store::Store;

const CARD_PREFIX: &str = "casebook-card1";
const CONTACTS: &str = "contacts";

/// A card, contact name or safety number that does not check out. Where
/// to find a card is the front end's to say.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// `start` is the beginning of what was given, to recognise it by.
    #[error("not allowed: {start:?} is not a casebook card: it starts with {CARD_PREFIX}:")]
    NotACard { start: String },
    #[error("not allowed: the card's check digits do not match: it was changed or copied wrong")]
    CheckDigits,
    #[error("not allowed: the contact's name must not be empty")]
    EmptyName,
    #[error("not allowed: that card is this account's own")]
    OwnCard,
    /// The number read out is not this contact's: the card may not be
    /// theirs, so nothing may be shared with it.
    #[error(
        "not allowed: the safety number does not match the one for {name}: do not share with this card; ask for it again"
    )]
    SafetyNumberMismatch { name: String },
}

/// Someone this account may share with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub account: AccountId,
    /// The two people compared safety numbers.
    pub verified: bool,
    pub added_at: u64,
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
    let bad = || ContactError::NotACard {
        start: text.chars().take(40).collect(),
    };
    let parts: Vec<&str> = text.trim().split(':').collect();
    let [CARD_PREFIX, account, name, check] = parts.as_slice() else {
        return Err(bad().into());
    };
    let account: AccountId = account.parse().map_err(|_| bad())?;
    let name = String::from_utf8(hex::decode(name).map_err(|_| bad())?).map_err(|_| bad())?;
    if card(&account, &name).rsplit(':').next() != Some(*check) {
        return Err(ContactError::CheckDigits.into());
    }
    Ok((account, name))
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

    /// The address book of colleagues, to read or change.
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts {
            store: &self.store,
            me: self.account_id(),
            clock: &self.setup.clock,
            trail: self.trail(),
        }
    }
}

/// The colleagues this account knows by name: each an account id taken
/// from a card, verified once the two read each other's safety numbers.
/// The part of a [`Home`] that keeps them.
pub struct Contacts<'h> {
    store: &'h Store,
    me: AccountId,
    clock: &'h Clock,
    trail: Trail<'h>,
}

impl Contacts<'_> {
    /// Every contact.
    pub fn list(&self) -> Result<Vec<Contact>> {
        Ok(match self.store.get_secret(CONTACTS)? {
            Some(b) => codec::decode(&b)?,
            None => Vec::new(),
        })
    }

    fn save(&self, contacts: &[Contact]) -> Result<()> {
        Ok(self
            .store
            .put_secret(CONTACTS, &codec::encode(&contacts.to_vec()))?)
    }

    /// A contact by name (case-insensitive).
    pub fn get(&self, name: &str) -> Result<Contact> {
        self.list()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| Error::UnknownContact(name.trim().to_string()))
    }

    /// Adds a contact from a card (unverified until safety numbers match).
    pub fn add(&self, name: &str, card_text: &str) -> Result<Contact> {
        let (account, _card_name) = parse_card(card_text)?;
        let name = crate::names::check(name)?;
        if name.is_empty() {
            return Err(ContactError::EmptyName.into());
        }
        if account == self.me {
            return Err(ContactError::OwnCard.into());
        }
        let mut all = self.list()?;
        if all
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name) || c.account == account)
        {
            return Err(Error::ContactExists);
        }
        let c = Contact {
            name: name.to_string(),
            account,
            verified: false,
            added_at: self.clock.now(),
        };
        all.push(c.clone());
        self.save(&all)?;
        self.trail
            .record(&format!("contact {name} added (unverified)"), None)?;
        Ok(c)
    }

    /// Marks a contact verified once the safety number read out matches.
    /// Returns the contact's account.
    pub fn verify(&self, name: &str, number: &str) -> Result<AccountId> {
        let mut all = self.list()?;
        let c = all
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| Error::UnknownContact(name.trim().to_string()))?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        if digits(number) != digits(&safety_number(&c.account)) {
            return Err(ContactError::SafetyNumberMismatch {
                name: c.name.clone(),
            }
            .into());
        }
        c.verified = true;
        let (who, account) = (c.name.clone(), c.account);
        self.save(&all)?;
        self.trail
            .record(&format!("contact {who} verified"), None)?;
        Ok(account)
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
    fn safety_numbers_are_sixty_digits() {
        let n = safety_number(&AccountId([1; 32]));
        assert_eq!(n.len(), 12 * 5 + 11);
        assert_ne!(n, safety_number(&AccountId([2; 32])));
    }
}
