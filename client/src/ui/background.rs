//! Syncing while the page is open, as `sync --watch` does: a task with its
//! own handle on the home (the store is made for two processes at once, so
//! two handles in one are no different) keeps a connection to the relay,
//! takes what other devices send as the relay pushes it, and sends what the
//! page saves (the watcher notices new edits in the outbox within 100 ms).
//! The page's own handle is never held across a network wait.

use std::sync::Arc;
use std::time::Duration;

use casebook::Home;
use casebook::sync::{Progress, WatchEvent};
use tokio::sync::oneshot;

use super::Ui;

/// What the page shows of the background sync.
#[derive(Clone, Debug, Default)]
pub(super) struct SyncStatus {
    /// Whether a connection to the relay is open.
    pub connected: bool,
    /// When the last round finished (Unix seconds).
    pub last: Option<u64>,
    /// Why the last attempt failed, until one succeeds.
    pub error: Option<String>,
    /// What the last round refused of what the relay served, or found
    /// incomplete, in the person's words (see [`super::pages::round_warning`]):
    /// shown until a round finds nothing of the kind.
    pub warning: Option<String>,
}

/// Runs until `stop` fires (the page locked) or the home may no longer
/// sync (revoked, or a relay that rolled back). Stopping does not wait for
/// a round to end: the handle, and every key in it, is dropped at once, as
/// a process stopped mid-round would be, which the store is made to bear.
/// `since` is the lock count of the unlock it serves.
pub(super) async fn keep_syncing(
    ui: Arc<Ui>,
    since: u64,
    mut home: Home,
    mut stop: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let connected = tokio::select! {
            r = home.connect() => r,
            _ = &mut stop => return,
        };
        let failed = match connected {
            Ok(relay) => {
                backoff = Duration::from_millis(500);
                ui.set_sync(since, |s| {
                    s.connected = true;
                    s.error = None;
                });
                let mut on_event = |event| {
                    if let WatchEvent::Progress(Progress::Visible { received }) = event
                        && received > 0
                    {
                        ui.changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    if let WatchEvent::Synced(report) = event {
                        ui.set_sync(since, |s| {
                            s.last = Some(home_now());
                            s.error = None;
                            s.warning = super::pages::round_warning(&report);
                        });
                    }
                };
                let watched = tokio::select! {
                    r = home.watch(&relay, std::future::pending(), &mut on_event) => r,
                    _ = &mut stop => return,
                };
                relay.close().await;
                match watched {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        let fatal = matches!(
            failed,
            casebook::Error::Revoked | casebook::Error::Rollback(_) | casebook::Error::Store(_)
        );
        ui.set_sync(since, |s| {
            s.connected = false;
            s.error = Some(failed.to_string());
        });
        if fatal {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn home_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Makes every case ready to search, one case at a time, right after the
/// page is unlocked, so the first search is as quick as the next. The
/// home is taken for one case at a time: the page answers in between.
pub(super) async fn warm_search(ui: Arc<Ui>, since: u64) {
    let ids: Vec<_> = {
        let held = ui.home.lock().await;
        match held.as_ref().map(|h| h.docs().cases()) {
            Some(Ok(cases)) => cases.into_iter().map(|(id, _)| id).collect(),
            _ => return,
        }
    };
    for id in ids {
        let held = ui.home.lock().await;
        let Some(home) = held.as_ref().filter(|_| ui.locks() == since) else {
            return;
        };
        // A case that cannot be read now is read again at the search.
        let _ = home.docs().case_units(&id);
        drop(held);
        tokio::task::yield_now().await;
    }
}
