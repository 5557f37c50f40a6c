//! The pairing rendezvous: short-lived mailboxes of one-message slots.
//!
//! The two devices of a pairing exchange SPAKE2 messages and sealed payloads
//! through it; the relay sees only opaque bytes. A slot takes one message ever
//! (until the mailbox expires), so a guessed code gets one try.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a mailbox lives after its first message.
pub const TTL: Duration = Duration::from_secs(600);
/// Most live mailboxes on one relay.
pub const MAX_MAILBOXES: usize = 10_000;

/// Why a put was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("this slot already took its one message")]
    Taken,
    #[error("too many pairings are in progress; try again in a few minutes")]
    Full,
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

    /// Takes a slot's message, waiting up to `wait` for it to arrive.
    pub async fn take(&self, mailbox: [u8; 16], slot: u8, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait.min(TTL);
        loop {
            let notified = self.changed.notified();
            {
                let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(msg) = boxes
                    .get_mut(&mailbox)
                    .and_then(|b| b.slots.get_mut(&slot))
                    .and_then(|s| s.msg.take())
                {
                    return Some(msg);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_message_per_slot() {
        let m = Mailboxes::default();
        m.put([1; 16], 0, b"a".to_vec()).unwrap();
        assert_eq!(m.put([1; 16], 0, b"b".to_vec()), Err(MailboxError::Taken));
        assert_eq!(
            m.take([1; 16], 0, Duration::ZERO).await,
            Some(b"a".to_vec())
        );
        assert_eq!(m.take([1; 16], 0, Duration::ZERO).await, None);
        assert_eq!(m.put([1; 16], 0, b"c".to_vec()), Err(MailboxError::Taken));
    }
}
