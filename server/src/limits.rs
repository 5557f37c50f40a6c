//! What one account and one connection may use of a relay, so that one
//! runaway device (or one stolen device key) cannot fill the disk or starve
//! the other practitioners of a shared relay.
//!
//! Over a limit the relay answers `Limited` with the limit's name first in
//! the reason (`limit storage-quota: ...`), counts it in the metrics and
//! logs it; the client keeps what it was sending and says what to do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use casebook_shared::frames::{ErrorCode, Response};
use casebook_shared::ids::AccountId;

use crate::metrics;

/// The limits a relay enforces. The defaults suit a clinic: a handful of
/// practitioners, each with a few devices, writing text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections this relay node serves at once, all accounts together;
    /// more are refused until one ends. Each idle watching device holds
    /// about 60 KiB of the node's memory (BENCHMARKS.md).
    pub connections: u32,
    /// Connections one account may have open at once (all its devices).
    pub connections_per_account: u32,
    /// Bytes of envelopes stored for the documents one account owns.
    pub quota_bytes: u64,
    /// Write requests (uploads, log appends) one account may make per
    /// second (twice as many in a burst).
    pub uploads_per_second: u32,
    /// Requests one connection may have waiting for an answer at once.
    pub requests_in_flight: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 16_384,
            connections_per_account: 32,
            quota_bytes: 5 * 1024 * 1024 * 1024,
            uploads_per_second: 50,
            requests_in_flight: 32,
        }
    }
}

/// Which limit was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    ConnectionsPerAccount,
    StorageQuota,
    UploadsPerSecond,
    RequestsInFlight,
}

impl Limit {
    /// The name in error frames, logs, metrics and flags.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ConnectionsPerAccount => "connections-per-account",
            Limit::StorageQuota => "storage-quota",
            Limit::UploadsPerSecond => "uploads-per-second",
            Limit::RequestsInFlight => "requests-in-flight",
        }
    }

    /// The error frame for it, counted and logged.
    pub fn refuse(self, account: Option<&AccountId>, detail: impl std::fmt::Display) -> Response {
        metrics::limited(self);
        tracing::warn!(
            limit = self.name(),
            account = account.map(|a| a.short()).unwrap_or_default(),
            "{detail}"
        );
        Response::error(
            ErrorCode::Limited,
            format!("limit {}: {detail}", self.name()),
        )
    }
}

/// A token bucket: `rate` per second, up to `2 * rate` saved up.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The per-account counters behind [`Limits`], in this process's memory.
#[derive(Debug, Default)]
pub struct Limiter {
    pub limits: Limits,
    connections: Mutex<HashMap<AccountId, u32>>,
    buckets: Mutex<HashMap<AccountId, Bucket>>,
}

/// An authenticated connection's place under its account's limit; given
/// back when the connection's last request is done with it.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<Limiter>,
    account: AccountId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .limiter
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.account);
            }
        }
        metrics::authenticated(-1);
    }
}

impl Limiter {
    pub fn new(limits: Limits) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            ..Limiter::default()
        })
    }

    /// Takes a connection slot for an account that just authenticated.
    pub fn connect(self: &Arc<Self>, account: AccountId) -> Result<Slot, Response> {
        let max = self.limits.connections_per_account;
        {
            let mut c = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            let n = c.entry(account).or_default();
            if *n >= max {
                return Err(Limit::ConnectionsPerAccount.refuse(
                    Some(&account),
                    format!("this account already has {max} connections open; close a device's casebook or wait"),
                ));
            }
            *n += 1;
        }
        metrics::authenticated(1);
        Ok(Slot {
            limiter: self.clone(),
            account,
        })
    }

    /// Takes one upload from an account's allowance for this second.
    pub fn upload(&self, account: &AccountId) -> Result<(), Response> {
        let rate = f64::from(self.limits.uploads_per_second.max(1));
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // Forget accounts that have been quiet long enough to be full again.
        if b.len() > 10_000 {
            b.retain(|_, v| now.duration_since(v.at).as_secs_f64() < 2.0);
        }
        let bucket = b.entry(*account).or_insert(Bucket {
            tokens: 2.0 * rate,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(2.0 * rate);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(Limit::UploadsPerSecond.refuse(
                Some(account),
                format!(
                    "more than {rate} uploads a second from this account; try again in a moment"
                ),
            ));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    /// Whether an account owning `used` bytes may store `more`.
    pub fn quota(&self, account: &AccountId, used: u64, more: u64) -> Result<(), Response> {
        let quota = self.limits.quota_bytes;
        if used.saturating_add(more) > quota {
            return Err(Limit::StorageQuota.refuse(
                Some(account),
                format!(
                    "the account that owns this case stores {used} bytes of its {quota}; ask the relay's operator for more room"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId([n; 32])
    }

    #[test]
    fn connection_slots_come_back_when_dropped() {
        let l = Limiter::new(Limits {
            connections_per_account: 2,
            ..Limits::default()
        });
        let a = l.connect(account(1)).unwrap();
        let _b = l.connect(account(1)).unwrap();
        let refused = l.connect(account(1)).unwrap_err();
        assert!(
            matches!(refused, Response::Error { code: ErrorCode::Limited, ref reason } if reason.starts_with("limit connections-per-account:"))
        );
        l.connect(account(2)).expect("another account has its own");
        drop(a);
        l.connect(account(1)).expect("a slot came back");
    }

    #[test]
    fn uploads_are_allowed_a_burst_then_the_rate() {
        let l = Limiter::new(Limits {
            uploads_per_second: 5,
            ..Limits::default()
        });
        for _ in 0..10 {
            l.upload(&account(1)).expect("within the burst");
        }
        assert!(l.upload(&account(1)).is_err());
        l.upload(&account(2)).expect("another account has its own");
    }

    #[test]
    fn the_quota_counts_what_is_stored_and_what_comes() {
        let l = Limiter::new(Limits {
            quota_bytes: 100,
            ..Limits::default()
        });
        l.quota(&account(1), 60, 40).expect("exactly full");
        assert!(l.quota(&account(1), 60, 41).is_err());
    }
}
