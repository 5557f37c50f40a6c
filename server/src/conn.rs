//! The QUIC shell around [`Relay`]: accept connections under a limit, answer
//! each request stream, keep subscription streams open, and stop cleanly.

use std::sync::Arc;

use casebook_shared::codec::{self, MAX_FRAME};
use casebook_shared::frames::{ErrorCode, Request, Response};
use tokio::sync::{Mutex, Semaphore, broadcast, watch};
use tokio::task::JoinSet;

use crate::relay::{Relay, Session};
use crate::storage::Storage;

/// Accepts connections until `shutdown` turns true, then lets every open
/// request finish (what was acknowledged is already durable) and closes.
pub async fn serve<S: Storage>(
    endpoint: quinn::Endpoint,
    relay: Arc<Relay<S>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = relay.limits().connections as usize;
    let limit = Arc::new(Semaphore::new(max));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(peer = %incoming.remote_address(), max, "connection limit reached; refusing");
                    crate::metrics::connection_refused();
                    incoming.refuse();
                    continue;
                };
                let relay = relay.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    if let Err(e) = connection(incoming, relay, shutdown).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    drop(permit);
                });
            }
            _ = shutdown.changed() => break,
        }
        while tasks.try_join_next().is_some() {}
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
    endpoint.close(0u32.into(), b"relay stopping");
    endpoint.wait_idle().await;
}

async fn connection<S: Storage>(
    incoming: quinn::Incoming,
    relay: Arc<Relay<S>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), quinn::ConnectionError> {
    let conn = incoming.await?;
    let peer = conn.remote_address();
    tracing::debug!(%peer, "connection");
    let _counted = crate::metrics::OpenConnection::count();
    let session = Arc::new(Mutex::new(Session::for_peer(peer)));
    let in_flight = Arc::new(Semaphore::new(relay.limits().requests_in_flight as usize));
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_bi() => {
                let (send, recv) = match s {
                    Ok(s) => s,
                    Err(e) => { streams.shutdown().await; return Err(e) }
                };
                let relay = relay.clone();
                let session = session.clone();
                let shutdown = shutdown.clone();
                let in_flight = in_flight.clone();
                streams.spawn(async move {
                    if let Err(e) = stream(send, recv, relay, session, in_flight, shutdown).await {
                        tracing::debug!(error = %e, "stream ended");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
        while streams.try_join_next().is_some() {}
    }
    while streams.join_next().await.is_some() {}
    conn.close(0u32.into(), b"relay stopping");
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    #[error(transparent)]
    Closed(#[from] quinn::ClosedStream),
}

/// What a watching device is sent of a change: the envelope with it when
/// the relay has it and it is at most `push_up_to` bytes long, else only
/// which document changed.
fn push_frame(c: crate::relay::Change, push_up_to: usize) -> Response {
    match c.pushed {
        Some(p) if p.envelope.len() <= push_up_to => Response::Pushed {
            item: casebook_shared::frames::Stored {
                doc: c.doc,
                seq: c.seq,
                envelope: p.envelope.clone(),
            },
            prev: p.prev,
        },
        _ => Response::Notify {
            doc: c.doc,
            seq: c.seq,
        },
    }
}

async fn respond(send: &mut quinn::SendStream, resp: &Response) -> Result<(), StreamError> {
    send.write_all(&codec::frame(resp)).await?;
    Ok(())
}

async fn stream<S: Storage>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    relay: Arc<Relay<S>>,
    session: Arc<Mutex<Session>>,
    in_flight: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StreamError> {
    // Taken before the frame is read, so a connection cannot make the relay
    // buffer more than this many frames at once.
    let Ok(permit) = in_flight.try_acquire() else {
        let account = session.lock().await.identity.map(|(a, _)| a);
        let max = relay.limits().requests_in_flight;
        let resp = crate::limits::Limit::RequestsInFlight.refuse(
            account.as_ref(),
            format!("this connection already has {max} requests waiting; wait for their answers"),
        );
        respond(&mut send, &resp).await?;
        send.finish()?;
        return Ok(());
    };
    let req = match recv.read_to_end(MAX_FRAME + 4).await {
        Ok(bytes) => {
            codec::unframe::<Request>(&bytes).map_err(|e| ("malformed", bytes.len(), e.to_string()))
        }
        Err(quinn::ReadToEndError::TooLong) => Err((
            "oversized",
            MAX_FRAME + 4,
            "frame is over the size limit".to_string(),
        )),
        Err(e) => {
            tracing::debug!(error = %e, "request stream failed");
            return Ok(());
        }
    };
    let req = match req {
        Ok(r) => r,
        Err((what, size, reason)) => {
            let s = session.lock().await;
            crate::metrics::bad_frame(what);
            tracing::warn!(
                peer = ?s.peer,
                account = s.identity.map(|(a, _)| a.short()).unwrap_or_default(),
                bytes = size,
                reason = %reason,
                "refused a {what} frame"
            );
            drop(s);
            respond(&mut send, &Response::error(ErrorCode::BadRequest, reason)).await?;
            send.finish()?;
            return Ok(());
        }
    };
    let push_up_to = match req {
        Request::Subscribe => Some(0),
        Request::SubscribeItems { max_bytes } => Some(max_bytes as usize),
        _ => None,
    };
    if let Some(push_up_to) = push_up_to {
        // A subscription is one long stream per device and is not counted.
        drop(permit);
        let watcher = session.lock().await.clone();
        let (account, _) = match relay.identity(&watcher).await {
            Ok(i) => i,
            Err(resp) => {
                respond(&mut send, &resp).await?;
                send.finish()?;
                return Ok(());
            }
        };
        let mut changes = relay.watch(account);
        respond(&mut send, &Response::Ok).await?;
        loop {
            tokio::select! {
                c = changes.recv() => match c {
                    Ok(c) => {
                        // Each push goes only to a device still active: one
                        // revoked while it watches is told so and cut off,
                        // before any envelope of the account's reaches it.
                        if let Err(resp) = relay.identity(&watcher).await {
                            respond(&mut send, &resp).await?;
                            break;
                        }
                        respond(&mut send, &push_frame(c, push_up_to)).await?;
                        crate::metrics::pushed();
                    }
                    // A slow reader missed some: tell it to list everything.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        respond(&mut send, &Response::Notify { doc: casebook_shared::ids::DocId([0; 16]), seq: 0 }).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = shutdown.changed() => break,
                _ = send.stopped() => return Ok(()),
            }
        }
        send.finish()?;
        return Ok(());
    }
    let stateful = matches!(
        req,
        Request::Challenge | Request::Auth { .. } | Request::CreateAccount { .. }
    );
    let resp = if stateful {
        let mut s = session.lock().await;
        relay.handle(&mut s, req).await
    } else {
        let mut s = session.lock().await.clone();
        relay.handle(&mut s, req).await
    };
    respond(&mut send, &resp).await?;
    send.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use casebook_shared::ids::DocId;

    use super::*;
    use crate::relay::{Change, Pushed};

    #[test]
    fn a_short_envelope_goes_only_to_who_asked_for_one_that_long() {
        let doc = DocId([4; 16]);
        let change = Change {
            doc,
            seq: 9,
            pushed: Some(Arc::new(Pushed {
                envelope: vec![1; 10],
                prev: 3,
            })),
        };
        let told = |r: Response| matches!(r, Response::Notify { doc: d, seq: 9 } if d == doc);
        // A plain subscription (an older device), or one that asked for less.
        assert!(told(push_frame(change.clone(), 0)));
        assert!(told(push_frame(change.clone(), 9)));
        assert!(told(push_frame(Change::told(doc, 9), 1 << 20)));
        match push_frame(change, 10) {
            Response::Pushed { item, prev } => {
                assert_eq!((item.doc, item.seq, prev), (doc, 9, 3));
                assert_eq!(item.envelope, vec![1; 10]);
            }
            r => panic!("{r:?}"),
        }
    }
}
