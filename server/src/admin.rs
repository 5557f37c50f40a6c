//! The admin listener: Prometheus metrics and health probes over plain
//! HTTP, on a loopback address only and off unless asked for.
//!
//! It answers only requests whose `Host` is a loopback name, so a web page
//! in the operator's browser cannot read it through DNS rebinding; it
//! shows counts, never an id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

/// Whether the store answers; run on a blocking thread.
pub type ReadyCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// An admin listener failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error(
        "--admin {0}: the admin listener serves loopback only (127.0.0.1 or [::1]); to scrape from elsewhere, put a proxy or a Prometheus agent on this machine"
    )]
    NotLoopback(SocketAddr),
    #[error("--admin {0}: cannot listen: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("metrics: another metrics recorder is already installed in this process")]
    Recorder,
}

#[derive(Clone)]
struct AppState {
    metrics: &'static metrics_exporter_prometheus::PrometheusHandle,
    ready: ReadyCheck,
}

/// Binds the admin listener's socket (before the relay creates anything,
/// so a port in use leaves nothing behind).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, AdminError> {
    if !addr.ip().is_loopback() {
        return Err(AdminError::NotLoopback(addr));
    }
    let listener = std::net::TcpListener::bind(addr).map_err(|e| AdminError::Bind(addr, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| AdminError::Bind(addr, e))?;
    Ok(listener)
}

/// Serves a bound admin listener until `shutdown` turns true.
pub fn serve(
    listener: std::net::TcpListener,
    ready: ReadyCheck,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, AdminError> {
    let addr = listener
        .local_addr()
        .map_err(|e| AdminError::Bind(([127, 0, 0, 1], 0).into(), e))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| AdminError::Bind(addr, e))?;
    let metrics = crate::metrics::prometheus().ok_or(AdminError::Recorder)?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, ready });
    let task = tokio::spawn(async move {
        // Histograms are kept in buckets that need draining now and then.
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                metrics.run_upkeep();
            }
        });
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "admin listener");
        }
        upkeep.abort();
    });
    tracing::info!(%addr, "admin listener (metrics, healthz, readyz)");
    Ok(task)
}

/// A request from a page whose address only resolves here (DNS rebinding)
/// names another host.
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    name == "localhost"
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn refuse_foreign(headers: &HeaderMap) -> Option<Response> {
    (!local_host(headers)).then(|| {
        (
            StatusCode::FORBIDDEN,
            "the admin listener answers only to a loopback Host\n",
        )
            .into_response()
    })
}

async fn metrics_page(
    axum::extract::State(st): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_foreign(&headers) {
        return r;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

async fn healthz(headers: HeaderMap) -> Response {
    refuse_foreign(&headers).unwrap_or_else(|| "ok\n".into_response())
}

async fn readyz(
    axum::extract::State(st): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_foreign(&headers) {
        return r;
    }
    match (st.ready)().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, h.parse().unwrap());
        m
    }

    #[test]
    fn only_loopback_hosts_are_answered() {
        for ok in [
            "127.0.0.1:9090",
            "localhost:9090",
            "[::1]:9090",
            "localhost",
        ] {
            assert!(local_host(&host(ok)), "{ok}");
        }
        for bad in [
            "evil.example:9090",
            "127.0.0.1.evil.example",
            "10.0.0.1:9090",
        ] {
            assert!(!local_host(&host(bad)), "{bad}");
        }
        assert!(!local_host(&HeaderMap::new()));
    }
}
