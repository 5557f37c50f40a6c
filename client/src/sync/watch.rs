//! `sync --watch`: stay connected, and run a round whenever the relay says a
//! document changed or this home queued something new.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::net::{NetError, Relay, Told};

use super::{Progress, SyncReport};

/// What the watcher reports after each round.
#[derive(Debug)]
pub enum WatchEvent {
    /// The relay said a document changed; a round starts.
    Notified,
    /// How far the round has got; [`Progress::Visible`] is the moment
    /// changes from other devices are applied and saved here, before the
    /// rest of the round: what a page showing the record refreshes on.
    Progress(Progress),
    /// A round finished (boxed: a report is many times the size of the
    /// other events, which come far more often).
    Synced(Box<SyncReport>),
}

/// Pushes held for the next round at most.
const PUSH_QUEUE: usize = 1024;

/// How often the outbox is checked for edits made by another process.
const OUTBOX_POLL: Duration = Duration::from_millis(100);

impl Home {
    /// What a watcher does when the relay says documents changed (`told`:
    /// each with its newest sequence number and perhaps the envelope
    /// itself; none when only the outbox filled): it takes those documents'
    /// changes at once (fetching what was not pushed along), where it can
    /// judge them exactly as the round would, and then runs the round. If the
    /// early fetch fails, the round fetches them (and says why, if it
    /// fails too).
    pub async fn sync_told(
        &mut self,
        relay: &Relay,
        told: &[Told],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        let early = self
            .pull_told(relay, told, progress)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "fetching the told documents first failed; the round fetches them");
                SyncReport::default()
            });
        let mut r = self.sync(relay, progress).await?;
        r.received += early.received;
        r.taken_pushed += early.taken_pushed;
        r.snapshots_in += early.snapshots_in;
        r.docs_updated += early.docs_updated;
        r.refused.extend(early.refused);
        Ok(r)
    }

    /// Syncs now, then again on every push from the relay and whenever the
    /// outbox fills, until `stop` completes or the connection fails.
    pub async fn watch(
        &mut self,
        relay: &Relay,
        stop: impl Future<Output = ()>,
        on_event: &mut (dyn FnMut(WatchEvent) + Send),
    ) -> Result<()> {
        let mut sub = relay.subscribe().await?;
        // The push stream is read by its own task: a half-read frame must
        // never be dropped by a `select!` that picks another branch.
        // Bounded: a relay pushing faster than rounds take it in is held
        // back by the stream's flow control, and then tells this device to
        // list everything instead (the relay's push backlog is bounded).
        let (tx, mut rx) = tokio::sync::mpsc::channel(PUSH_QUEUE);
        let reader = tokio::spawn(async move {
            loop {
                match sub.next().await {
                    Ok(Some(n)) => {
                        if tx.send(Ok(n)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = tx
                            .send(Err(NetError::Io("the relay closed the push stream".into())))
                            .await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        let first = {
            let mut seen = |p: Progress| on_event(WatchEvent::Progress(p));
            self.sync(relay, &mut seen).await?
        };
        // Edits held back stay in the outbox: only rows beyond them are new
        // (counted from the round's report, not the outbox after it, so an
        // edit queued during a round is not mistaken for a held one).
        let held = |r: &super::SyncReport| r.held.iter().map(|h| h.edits as u64).sum::<u64>();
        let mut settled = held(&first);
        on_event(WatchEvent::Synced(Box::new(first)));
        tokio::pin!(stop);
        let mut poll = tokio::time::interval(OUTBOX_POLL);
        let mut told = Vec::new();
        let result = loop {
            tokio::select! {
                _ = &mut stop => break Ok(()),
                n = rx.recv() => match n {
                    Some(Ok(first)) => {
                        // Many pushes may be waiting; one round covers them all.
                        told.push(first);
                        while let Ok(Ok(n)) = rx.try_recv() {
                            told.push(n);
                        }
                        on_event(WatchEvent::Notified);
                    }
                    Some(Err(e)) => break Err(Error::Net(e)),
                    None => break Err(Error::Net(NetError::Io("the push stream ended".into()))),
                },
                _ = poll.tick() => {
                    if self.pending()? <= settled {
                        continue;
                    }
                }
            }
            let round = {
                let mut seen = |p: Progress| on_event(WatchEvent::Progress(p));
                self.sync_told(relay, &std::mem::take(&mut told), &mut seen)
                    .await
            };
            match round {
                Ok(r) => {
                    settled = held(&r);
                    on_event(WatchEvent::Synced(Box::new(r)));
                }
                Err(e) => break Err(e),
            }
        };
        reader.abort();
        result
    }
}
