//! Live push, by account: a change wakes only the subscriptions of the
//! accounts that may read its document, not every open subscription. With
//! thousands of devices watching one node, telling each of them about
//! every change (and having each look up the document) would cost the
//! whole node per upload.

use std::collections::HashMap;
use std::sync::Mutex;

use casebook_shared::ids::AccountId;
use tokio::sync::broadcast;

use super::Change;

/// Pushes an account's watching devices may fall behind by before they are
/// told to list everything instead.
const BACKLOG: usize = 256;

/// Who is watching, by account.
#[derive(Default)]
pub struct Hub {
    watchers: Mutex<HashMap<AccountId, broadcast::Sender<Change>>>,
}

/// One device's subscription; leaves the hub when dropped.
pub struct Watch<'a> {
    hub: &'a Hub,
    account: AccountId,
    rx: Option<broadcast::Receiver<Change>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, broadcast::Sender<Change>>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching the changes `account` may read.
    pub fn watch(&self, account: AccountId) -> Watch<'_> {
        let rx = self
            .lock()
            .entry(account)
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe();
        Watch {
            hub: self,
            account,
            rx: Some(rx),
        }
    }

    /// Tells every watching device of `readers` about `change`.
    pub fn tell<'r>(&self, readers: impl IntoIterator<Item = &'r AccountId>, change: Change) {
        let watchers = self.lock();
        if watchers.is_empty() {
            return;
        }
        for a in readers {
            if let Some(tx) = watchers.get(a) {
                let _ = tx.send(change.clone());
            }
        }
    }

    /// Whether a device of any of `readers` is watching.
    pub fn watched<'r>(&self, readers: impl IntoIterator<Item = &'r AccountId>) -> bool {
        let watchers = self.lock();
        !watchers.is_empty() && readers.into_iter().any(|a| watchers.contains_key(a))
    }

    /// Tells every watching device `change` (one that says "list
    /// everything" after this node lost track of what changed).
    pub fn tell_everyone(&self, change: Change) {
        for tx in self.lock().values() {
            let _ = tx.send(change.clone());
        }
    }

    /// Accounts with a device watching now.
    #[cfg(test)]
    fn accounts(&self) -> usize {
        self.lock().len()
    }
}

impl Watch<'_> {
    /// The next change, as [`broadcast::Receiver::recv`] gives it.
    pub async fn recv(&mut self) -> Result<Change, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // Counted under the lock, so a device starting to watch meanwhile
        // keeps the account's channel.
        let mut watchers = self.hub.lock();
        drop(self.rx.take());
        if watchers
            .get(&self.account)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            watchers.remove(&self.account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casebook_shared::ids::DocId;

    #[tokio::test]
    async fn only_readers_are_told_and_leaving_cleans_up() {
        let hub = Hub::default();
        let (a, b) = (AccountId([1; 32]), AccountId([2; 32]));
        let mut wa = hub.watch(a);
        let mut wa2 = hub.watch(a);
        let mut wb = hub.watch(b);
        assert!(hub.watched([&b]) && !hub.watched([&AccountId([9; 32])]));
        hub.tell([&a], Change::told(DocId([3; 16]), 7));
        assert_eq!(wa.recv().await.unwrap().seq, 7);
        assert_eq!(wa2.recv().await.unwrap().seq, 7);
        assert!(matches!(
            wb.rx.as_mut().unwrap().try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        drop(wa);
        assert_eq!(hub.accounts(), 2, "a's other device still watches");
        drop((wa2, wb));
        assert_eq!(hub.accounts(), 0);
        assert!(!hub.watched([&a, &b]));
    }
}
