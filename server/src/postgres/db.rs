//! Where the database is and how to reach it: its address, and TLS.
//!
//! With the certificate of the authority that signed the database server's
//! certificate (`--store-ca`), every connection is TLS 1.2 or 1.3 on the
//! same rustls and ring as the relay's QUIC, and the server must prove the
//! host name in the address. Without it connections are plain, for a
//! database on the same machine or a private network, and an address that
//! asks for TLS (`sslmode=require`) is refused rather than quietly served
//! without verification.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::storage::StoreError;

/// A database to connect to.
#[derive(Clone)]
pub struct Db {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: MakeRustlsConnect,
}

impl Db {
    /// `url` is a `postgres://` address; `ca` a PEM file of one or more
    /// certificates to trust for the database server.
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Db, StoreError> {
        let mut config = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| StoreError::Schema(format!("not a PostgreSQL address ({e})")))?;
        // A connection that died without a word (the listening one above
        // all, which only ever reads) is noticed within about a minute,
        // not the system's two hours.
        config.keepalives_idle(std::time::Duration::from_secs(30));
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        StoreError::Schema(format!(
                            "--store-ca {}: not a PEM certificate file ({e})",
                            path.display()
                        ))
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(StoreError::Schema(format!(
                        "--store-ca {}: no certificate in it",
                        path.display()
                    )));
                }
                config.ssl_mode(SslMode::Require);
            }
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(StoreError::Schema(
                    "the address asks for TLS (sslmode=require): give the database server's certificate authority with --store-ca".into(),
                ));
            }
            None => {
                config.ssl_mode(SslMode::Disable);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Schema(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Db {
            config,
            tls: MakeRustlsConnect::new(tls),
        })
    }

    /// A connection, driven by a task of its own until the client is dropped.
    pub(super) async fn client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(client)
    }
}
