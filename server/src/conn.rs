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
    if matches!(req, Request::Subscribe) {
        // A subscription is one long stream per device and is not counted.
        drop(permit);
        let identity = {
            let s = session.lock().await.clone();
            relay.identity(&s).await
        };
        let (account, _) = match identity {
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
                        respond(&mut send, &Response::Notify { doc: c.doc, seq: c.seq }).await?;
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
