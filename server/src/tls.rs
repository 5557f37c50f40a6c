//! The relay's TLS identity: a self-signed certificate made on first start and
//! kept in the data folder (or one from files), and its SHA-256 fingerprint,
//! which clients pin instead of trusting any certificate authority.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A TLS setup failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("reading or writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0} holds no usable certificate or key (DER expected)")]
    BadFile(String),
}

/// The relay's certificate and key.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", format_fingerprint(&self.fingerprint()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

impl Identity {
    /// Loads `cert.der`/`key.der` from the data folder, making them on first start.
    pub fn load_or_create(data: &Path) -> Result<Identity, TlsError> {
        let cert_path = data.join("relay-cert.der");
        let key_path = data.join("relay-key.der");
        if !cert_path.exists() {
            let ck = rcgen::generate_simple_self_signed(vec!["casebook-relay".to_string()])?;
            write_private(&key_path, &ck.signing_key.serialize_der())?;
            write_private(&cert_path, ck.cert.der())?;
        }
        Self::from_files(&cert_path, &key_path)
    }

    /// Loads a DER certificate and a PKCS#8 DER key from files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let cert_bytes = read(cert)?;
        let key_bytes = read(key)?;
        if cert_bytes.is_empty() {
            return Err(TlsError::BadFile(cert.display().to_string()));
        }
        if key_bytes.is_empty() {
            return Err(TlsError::BadFile(key.display().to_string()));
        }
        Ok(Identity {
            cert: CertificateDer::from(cert_bytes),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_bytes)),
        })
    }

    /// SHA-256 of the certificate's DER bytes: what clients pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.cert.as_ref()).into()
    }

    /// A QUIC server configuration: TLS 1.3 only, ring provider, ALPN `casebook/4`.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())?;
        tls.alpn_protocols = vec![casebook_shared::ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let mut transport = quinn::TransportConfig::default();
        transport.max_concurrent_bidi_streams(64u32.into());
        transport.max_concurrent_uni_streams(0u32.into());
        transport.max_idle_timeout(Some(
            std::time::Duration::from_secs(30)
                .try_into()
                .expect("30 s is a valid QUIC idle timeout"),
        ));
        cfg.transport_config(Arc::new(transport));
        Ok(cfg)
    }
}

/// `sha256:` and lowercase hex, the form people copy (protocol, so it
/// lives in `casebook-shared`).
pub use casebook_shared::fingerprint::{format as format_fingerprint, parse as parse_fingerprint};
