//! The pairing rendezvous: short-lived mailboxes of one-message slots.
//!
//! The two devices of a pairing exchange SPAKE2 messages and sealed payloads
//! through it; the relay sees only opaque bytes. A slot takes one message ever
//! (until the mailbox expires), so a guessed code gets one try.
//!
//! The store keeps them: a SQLite relay in memory ([`Mailboxes`]), a
//! PostgreSQL one in a table, so two devices pairing through different
//! relay nodes meet. [`take`] waits the same way over either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::storage::{Storage, StoreError};

/// How long a mailbox lives after its first message.
pub const TTL: Duration = Duration::from_secs(600);
/// Most live mailboxes on one relay.
pub const MAX_MAILBOXES: usize = 10_000;

/// Why a put was refused.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("this slot already took its one message")]
    Taken,
    #[error("too many pairings are in progress; try again in a few minutes")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct Slot {
    msg: Option<Vec<u8>>,
    used: bool,
}

struct Box_ {
    created: Instant,
    slots: HashMap<u8, Slot>,
}

/// All mailboxes.
#[derive(Default)]
pub struct Mailboxes {
    boxes: Mutex<HashMap<[u8; 16], Box_>>,
    changed: Notify,
}

impl Mailboxes {
    fn expire(boxes: &mut HashMap<[u8; 16], Box_>) {
        boxes.retain(|_, b| b.created.elapsed() < TTL);
    }

    /// Puts the one message of a slot.
    pub fn put(&self, mailbox: [u8; 16], slot: u8, msg: Vec<u8>) -> Result<(), MailboxError> {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        Self::expire(&mut boxes);
        if !boxes.contains_key(&mailbox) && boxes.len() >= MAX_MAILBOXES {
            return Err(MailboxError::Full);
        }
        let b = boxes.entry(mailbox).or_insert_with(|| Box_ {
            created: Instant::now(),
            slots: HashMap::new(),
        });
        let s = b.slots.entry(slot).or_default();
        if s.used {
            return Err(MailboxError::Taken);
        }
        s.used = true;
        s.msg = Some(msg);
        drop(boxes);
        self.changed.notify_waiters();
        Ok(())
    }

    /// Takes a slot's message if it is there.
    pub fn try_take(&self, mailbox: [u8; 16], slot: u8) -> Option<Vec<u8>> {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        boxes
            .get_mut(&mailbox)
            .and_then(|b| b.slots.get_mut(&slot))
            .and_then(|s| s.msg.take())
    }

    /// Woken at every put.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }
}

/// Takes a slot's message from the store, waiting up to `wait` for it to
/// arrive (the store wakes waiters at every put, another node's included).
pub async fn take<S: Storage>(
    store: &S,
    mailbox: [u8; 16],
    slot: u8,
    wait: Duration,
) -> Result<Option<Vec<u8>>, StoreError> {
    let deadline = tokio::time::Instant::now() + wait.min(TTL);
    loop {
        let notified = store.mailbox_changed().notified();
        if let Some(msg) = store.mailbox_take(mailbox, slot).await? {
            return Ok(Some(msg));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_slot() {
        let m = Mailboxes::default();
        m.put([1; 16], 0, b"a".to_vec()).unwrap();
        assert!(matches!(
            m.put([1; 16], 0, b"b".to_vec()),
            Err(MailboxError::Taken)
        ));
        assert_eq!(m.try_take([1; 16], 0), Some(b"a".to_vec()));
        assert_eq!(m.try_take([1; 16], 0), None);
        assert!(matches!(
            m.put([1; 16], 0, b"c".to_vec()),
            Err(MailboxError::Taken)
        ));
    }
}
