//! The casebook relay: a QUIC endpoint that authenticates devices against
//! their signed account logs, checks every envelope's signature and author,
//! and stores end-to-end encrypted changes it cannot read.
//!
//! [`start`] runs a relay in the current tokio runtime; the `casebook-relay`
//! binary and the tests both use it.

pub mod admin;
pub mod any_store;
pub mod backup;
pub mod cache;
pub mod conn;
pub mod data_dir;
pub mod limits;
pub mod mailbox;
pub mod metrics;
pub mod numbering;
pub mod postgres;
pub mod relay;
pub mod sqlite;
pub mod state;
pub mod storage;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

pub use tls::{format_fingerprint, parse_fingerprint};

/// How to run a relay. Its `Debug` leaves out the database address, which
/// may carry a password.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The relay's own folder: its certificate, and its SQLite database
    /// unless `store` names another.
    pub data: PathBuf,
    /// A PostgreSQL database (`postgres://…`) to keep the data in instead
    /// of SQLite in `data`; made ready by `casebook-relay migrate`.
    pub store: Option<String>,
    /// The PEM certificate of the authority that signed the database
    /// server's certificate: with it, the connection to `store` is TLS.
    pub store_ca: Option<PathBuf>,
    /// Whether to follow what other relay nodes over the same store write
    /// (always, but in tests that prove the store's fences alone keep a
    /// node that heard nothing from accepting what it should not).
    pub follow: bool,
    /// A DER certificate and PKCS#8 DER key to use instead of the self-signed pair.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Where to serve metrics and health probes (loopback only); off if `None`.
    pub admin: Option<SocketAddr>,
    pub limits: limits::Limits,
    /// How many verified account and access logs to hold in memory.
    pub cache: state::Capacity,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data", &self.data)
            .field(
                "store",
                &self.store.as_ref().map(|_| "postgres (address hidden)"),
            )
            .field("store_ca", &self.store_ca)
            .field("follow", &self.follow)
            .field("cert", &self.cert)
            .field("admin", &self.admin)
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Config {
    /// A relay on `listen` with its data in `data`, a self-signed
    /// certificate, no admin listener and the default limits.
    pub fn new(listen: SocketAddr, data: impl Into<PathBuf>) -> Config {
        Config {
            listen,
            data: data.into(),
            store: None,
            store_ca: None,
            follow: true,
            cert: None,
            admin: None,
            limits: limits::Limits::default(),
            cache: state::Capacity::default(),
        }
    }
}

/// A relay failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Data(#[from] data_dir::DataDirError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

/// A running relay.
pub struct Handle {
    pub addr: SocketAddr,
    /// The admin listener's address, when it runs.
    pub admin: Option<SocketAddr>,
    pub fingerprint: [u8; 32],
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
    admin_task: Option<tokio::task::JoinHandle<()>>,
    store: Arc<any_store::AnyStore>,
    /// Held until the store is closed, so no second relay opens it meanwhile.
    _data: data_dir::DataDir,
}

impl Handle {
    /// Stops accepting, finishes open requests, and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(f) = self.follower {
            f.abort();
        }
        if let Some(t) = self.admin_task {
            let _ = t.await;
        }
        storage::Storage::close(&*self.store).await;
    }
}

/// Binds the socket, takes the data folder, opens the store, loads the
/// TLS identity and starts serving.
///
/// The socket comes first: a relay that cannot listen leaves nothing behind
/// in its data folder (not even a new certificate).
pub async fn start(config: Config) -> Result<Handle, StartError> {
    let socket =
        std::net::UdpSocket::bind(config.listen).map_err(|e| StartError::Bind(config.listen, e))?;
    let admin_listener = config.admin.map(admin::bind).transpose()?;
    // With PostgreSQL the folder holds only the certificate (and the lock).
    let data = match config.store {
        Some(_) => data_dir::DataDir::lock(&config.data)?,
        None => data_dir::DataDir::lock_with_db(&config.data)?,
    };
    let identity = match &config.cert {
        Some((c, k)) => tls::Identity::from_files(c, k)?,
        None => tls::Identity::load_or_create(data.path())?,
    };
    let fingerprint = identity.fingerprint();
    let store = Arc::new(match &config.store {
        Some(url) => any_store::AnyStore::Postgres(
            postgres::PgStore::open(url, config.store_ca.as_deref()).await?,
        ),
        None => {
            let db = data.db();
            any_store::AnyStore::Sqlite(
                tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&db))
                    .await
                    .map_err(|e| storage::StoreError::Damaged(e.to_string()))??,
            )
        }
    });
    if config.admin.is_some() {
        // Before the relay loads, so what it counts at start is recorded.
        metrics::prometheus().ok_or(admin::AdminError::Recorder)?;
    }
    let relay = relay::Relay::load(
        store.clone(),
        fingerprint,
        config.limits.clone(),
        config.cache,
    )
    .await?;
    let runtime = quinn::default_runtime().ok_or_else(|| {
        StartError::Bind(config.listen, std::io::Error::other("no async runtime"))
    })?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(identity.server_config()?),
        socket,
        runtime,
    )
    .map_err(|e| StartError::Bind(config.listen, e))?;
    let addr = endpoint
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let (tx, rx) = watch::channel(false);
    let relay = Arc::new(relay);
    let admin = match admin_listener {
        Some(listener) => {
            let bound = listener.local_addr().ok();
            let r = relay.clone();
            let ready: admin::ReadyCheck = Arc::new(move || {
                let r = r.clone();
                Box::pin(async move { r.store_ready().await.map_err(|e| e.to_string()) })
            });
            Some((bound, admin::serve(listener, ready, rx.clone())?))
        }
        None => None,
    };
    // Where other nodes write the same store, what they write reaches this
    // one's memory and watchers (returns at once over SQLite).
    let follower = config.follow.then(|| tokio::spawn(relay.clone().follow()));
    // The stored-bytes gauge, counted once without holding up the start.
    let counting = relay.clone();
    tokio::spawn(async move {
        if let Err(e) = counting.count_stored().await {
            tracing::warn!(error = %e, "counting the stored bytes");
        }
    });
    let task = tokio::spawn(conn::serve(endpoint, relay, rx));
    tracing::info!(%addr, fingerprint = %format_fingerprint(&fingerprint), "relay listening");
    Ok(Handle {
        addr,
        admin: admin.as_ref().and_then(|(a, _)| *a),
        admin_task: admin.map(|(_, t)| t),
        fingerprint,
        shutdown: tx,
        task,
        follower,
        store,
        _data: data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_never_prints_the_database_password() {
        let mut c = Config::new("127.0.0.1:0".parse().unwrap(), "/tmp/x");
        c.store = Some("postgres://casebook:s3cret-pw@db/relay".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("address hidden"), "{shown}");
    }
}
