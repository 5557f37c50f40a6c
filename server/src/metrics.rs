//! What the relay counts, for an operator's Prometheus: one function per
//! event, so every name and label is written once here.
//!
//! No label ever carries an account, device or document id: labels are
//! fixed words (a refusal's reason, a limit's name), so the metrics say how
//! the relay is doing and nothing about who uses it.
//!
//! The `metrics` facade does nothing until a recorder is installed, which
//! [`prometheus`] does when the admin listener is turned on.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::limits::Limit;

const COMMIT_JOBS: &str = "casebook_relay_commit_jobs";
const COMMIT_SECONDS: &str = "casebook_relay_commit_seconds";

/// The process's Prometheus recorder, installed on first use. `None` if
/// something else in the process installed a recorder first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(COMMIT_JOBS.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(COMMIT_SECONDS.into()),
                        &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0],
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: another recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

/// A QUIC connection, counted while it is open.
pub struct OpenConnection(());

impl OpenConnection {
    pub fn count() -> OpenConnection {
        counter!("casebook_relay_connections_total").increment(1);
        gauge!("casebook_relay_connections").increment(1.0);
        OpenConnection(())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!("casebook_relay_connections").decrement(1.0);
    }
}

/// A connection was refused because the relay serves as many as it may.
pub fn connection_refused() {
    counter!("casebook_relay_connections_refused_total").increment(1);
}

/// A device authenticated (`1`) or its connection ended (`-1`).
pub fn authenticated(delta: i8) {
    gauge!("casebook_relay_authenticated_devices").increment(f64::from(delta));
}

/// Authentication was refused.
pub fn auth_failed(reason: &'static str) {
    counter!("casebook_relay_auth_failures_total", "reason" => reason).increment(1);
}

/// Envelopes stored (new or repeated) from one upload.
pub fn accepted(n: usize) {
    counter!("casebook_relay_envelopes_accepted_total").increment(n as u64);
}

/// An envelope was refused.
pub fn refused(reason: &'static str) {
    counter!("casebook_relay_envelopes_refused_total", "reason" => reason).increment(1);
}

/// A frame was over the size limit or did not decode.
pub fn bad_frame(reason: &'static str) {
    counter!("casebook_relay_bad_frames_total", "reason" => reason).increment(1);
}

/// A limit turned a request away.
pub fn limited(limit: Limit) {
    counter!("casebook_relay_limited_total", "limit" => limit.name()).increment(1);
}

/// Bytes of envelopes and snapshots stored now, in all.
pub fn stored_bytes(total: u64) {
    gauge!("casebook_relay_stored_bytes").set(total as f64);
}

/// A page of envelopes was fetched.
pub fn fetched(items: usize, bytes: usize) {
    counter!("casebook_relay_fetch_pages_total").increment(1);
    counter!("casebook_relay_fetch_bytes_total").increment(bytes as u64);
    counter!("casebook_relay_fetch_envelopes_total").increment(items as u64);
}

/// A change notice was pushed to a subscribed device.
pub fn pushed() {
    counter!("casebook_relay_pushes_total").increment(1);
}

/// A group commit: how many jobs it held and how long until durable.
pub fn commit(jobs: usize, took: Duration) {
    histogram!(COMMIT_JOBS).record(jobs as f64);
    histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
}

/// The store failed.
pub fn storage_error() {
    counter!("casebook_relay_storage_errors_total").increment(1);
}
