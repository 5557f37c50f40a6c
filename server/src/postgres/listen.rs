//! Hearing what other relay nodes write: one connection per node, outside
//! the pool, that `LISTEN`s on one channel. Notices carry only ids and
//! sequence numbers (PostgreSQL refuses payloads of 8,000 bytes or more;
//! ours are under 100). A lost connection is made again, and then the relay
//! is told to read everything again, since notices sent meanwhile are gone.

use std::sync::Arc;
use std::time::Duration;

use casebook_shared::ids::DocId;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_postgres::AsyncMessage;

use crate::storage::StoreEvent;

/// The notification channel.
pub const CHANNEL: &str = "casebook_relay";

/// What one node tells the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    Logs,
    /// A pairing mailbox took a message.
    Mailbox,
    Stored {
        doc: DocId,
        seq: u64,
        added: i64,
    },
}

impl Announce {
    /// `NODE l` or `NODE e DOC SEQ ADDED`, NODE in hex so a node knows its own.
    pub fn payload(&self, node: u64) -> String {
        match self {
            Announce::Logs => format!("{node:016x} l"),
            Announce::Mailbox => format!("{node:016x} m"),
            Announce::Stored { doc, seq, added } => {
                format!("{node:016x} e {} {seq} {added}", hex::encode(doc.0))
            }
        }
    }

    /// The node and the notice, or `None` for a payload that is not one.
    pub fn parse(payload: &str) -> Option<(u64, StoreEvent)> {
        let mut parts = payload.split(' ');
        let node = u64::from_str_radix(parts.next()?, 16).ok()?;
        let event = match parts.next()? {
            "l" => StoreEvent::Logs,
            "m" => StoreEvent::Mailbox,
            "e" => StoreEvent::Stored {
                doc: DocId(hex::decode(parts.next()?).ok()?.try_into().ok()?),
                seq: parts.next()?.parse().ok()?,
                added: parts.next()?.parse().ok()?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some((node, event))
    }
}

/// Listens until the task is aborted. `ready` is answered once the first
/// `LISTEN` is in place (or the first attempt failed), so a relay that
/// loads its state after it misses nothing written meanwhile.
pub async fn run(
    db: super::Db,
    node: u64,
    events: broadcast::Sender<StoreEvent>,
    mailbox: Arc<Notify>,
    ready: oneshot::Sender<Result<(), tokio_postgres::Error>>,
) {
    let mut ready = Some(ready);
    let mut wait = Duration::from_millis(100);
    loop {
        match listen_once(&db, node, &events, &mailbox, &mut ready).await {
            Ok(()) => wait = Duration::from_millis(100),
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "the PostgreSQL listening connection failed; trying again");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: `LISTEN`, then pass on every notice of another
/// node until the connection ends.
async fn listen_once(
    db: &super::Db,
    node: u64,
    events: &broadcast::Sender<StoreEvent>,
    mailbox: &Notify,
    ready: &mut Option<oneshot::Sender<Result<(), tokio_postgres::Error>>>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = db.config.connect(db.tls.clone()).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n.payload().to_string());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the PostgreSQL listening connection ended");
                    break;
                }
            }
        }
    });
    let listened = client.batch_execute(&format!("LISTEN {CHANNEL}")).await;
    if let Err(e) = listened {
        driver.abort();
        return Err(e);
    }
    match ready.take() {
        Some(r) => {
            let _ = r.send(Ok(()));
        }
        // Listening again after a loss: what was said meanwhile is gone.
        None => {
            tracing::info!("listening to the other relay nodes again");
            let _ = events.send(StoreEvent::Resync);
            mailbox.notify_waiters();
        }
    }
    while let Some(payload) = rx.recv().await {
        match Announce::parse(&payload) {
            Some((from, _)) if from == node => {}
            Some((_, StoreEvent::Mailbox)) => mailbox.notify_waiters(),
            Some((_, event)) => {
                let _ = events.send(event);
            }
            None => tracing::warn!("a notice on the relay's channel that is not one of ours"),
        }
    }
    driver.abort();
    drop(client);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_as_written_and_nothing_else_does() {
        let node = 0x0123_4567_89ab_cdef;
        for a in [
            Announce::Logs,
            Announce::Mailbox,
            Announce::Stored {
                doc: DocId([9; 16]),
                seq: 42,
                added: -1234,
            },
        ] {
            let p = a.payload(node);
            assert!(p.len() < 100, "{p}");
            let (n, e) = Announce::parse(&p).unwrap();
            assert_eq!(n, node);
            let want = match a {
                Announce::Logs => StoreEvent::Logs,
                Announce::Mailbox => StoreEvent::Mailbox,
                Announce::Stored { doc, seq, added } => StoreEvent::Stored { doc, seq, added },
            };
            assert_eq!(e, want);
        }
        for bad in [
            "",
            "zz a 00",
            "0000000000000001 l 0707",
            "0000000000000001 e 09090909090909090909090909090909 5",
            "0000000000000001 q 09090909090909090909090909090909",
            "0000000000000001 d 09090909090909090909090909090909 extra",
        ] {
            assert!(Announce::parse(bad).is_none(), "{bad}");
        }
    }
}
