//! The client's QUIC connection to a relay, pinned to the relay's certificate
//! fingerprint: no certificate authority is trusted, only the fingerprint the
//! person copied from the relay.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use casebook_shared::codec::{self, MAX_FRAME};
use casebook_shared::crypto::DeviceSigner;
use casebook_shared::frames::{self, ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// A network or relay failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("cannot resolve relay address {0:?}: give HOST:PORT, like 127.0.0.1:4433")]
    Resolve(String),
    #[error("cannot reach the relay at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The relay's certificate is not the one pinned. What it presented is
    /// not shown: a person told to check the fingerprint should ask whoever
    /// runs the relay, not copy what a machine in between may be showing.
    #[error(
        "the relay at {addr} presented a certificate other than the one pinned (its fingerprint differs); \
         nothing was sent to it"
    )]
    WrongCertificate { addr: String },
    #[error("connection to the relay failed: {0}")]
    Io(String),
    #[error("the relay refused: {reason} ({code:?})")]
    Relay { code: ErrorCode, reason: String },
    #[error("the relay sent something unexpected: {0}")]
    Protocol(String),
}

/// How often an idle connection proves the relay is still there.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);
/// How long without a packet from the relay before it counts as gone: a
/// relay that died mid-upload is an error in seconds, not the half minute
/// of QUIC's default, and what was being sent stays queued on the device.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

impl NetError {
    /// The relay's error code, if the relay answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            NetError::Relay { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Pinned {
    fingerprint: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// Set when the relay presented another certificate, so the failed
    /// handshake is reported as that and not as a network fault.
    mismatch: Arc<std::sync::atomic::AtomicBool>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One request answered by a relay in this process.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response, NetError>> + Send + 'a>>;

/// One connection to a relay in this process: a session of its own there.
/// Whatever stands between (a simulated network that drops or repeats)
/// answers with [`NetError::Io`] as a lost connection would.
pub trait Exchange: Send + Sync {
    fn exchange<'a>(&'a self, req: &'a Request) -> Answer<'a>;
}

/// A relay in this process, reached without a socket: what a simulation
/// hands a home in place of an address. Each [`LocalRelay::open`] is a new
/// connection, with its own authentication.
pub trait LocalRelay: Send + Sync {
    fn open(&self) -> Box<dyn Exchange>;
}

/// How a connection moves its bytes.
enum Link {
    Quic {
        endpoint: quinn::Endpoint,
        conn: quinn::Connection,
    },
    Local(Box<dyn Exchange>),
}

/// A request sent, its answer still to read.
pub enum Sent {
    Waiting(quinn::RecvStream),
    Answered(Response),
}

impl Sent {
    /// The relay's answer; an error frame becomes [`NetError::Relay`].
    pub async fn answer(self) -> Result<Response, NetError> {
        let response = match self {
            Sent::Answered(r) => r,
            Sent::Waiting(mut recv) => {
                let bytes = recv
                    .read_to_end(MAX_FRAME + 4)
                    .await
                    .map_err(|e| NetError::Io(e.to_string()))?;
                codec::unframe::<Response>(&bytes).map_err(|e| NetError::Protocol(e.to_string()))?
            }
        };
        match response {
            Response::Error { code, reason } => Err(NetError::Relay { code, reason }),
            r => Ok(r),
        }
    }
}

/// An open connection to a relay.
pub struct Relay {
    link: Link,
    fingerprint: [u8; 32],
}

/// Envelopes at most this long are pushed with their change (see
/// [`Request::SubscribeItems`]); a longer one is fetched.
pub const PUSHED_BYTES: u32 = 16 * 1024;

/// What the relay pushed: a document has changes up to `seq`, and where
/// the relay sent it along, the envelope at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    pub doc: DocId,
    pub seq: u64,
    pub pushed: Option<PushedEnvelope>,
}

impl Told {
    /// A change told without its envelope.
    pub fn doc(doc: DocId, seq: u64) -> Told {
        Told {
            doc,
            seq,
            pushed: None,
        }
    }
}

/// An envelope pushed with its change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedEnvelope {
    pub envelope: Vec<u8>,
    /// The document's highest sequence number before it, as the relay
    /// says: a device that has seen exactly this misses nothing by taking
    /// the envelope next.
    pub prev: u64,
}

/// A stream of "document D has new changes" pushes.
pub struct Subscription {
    recv: quinn::RecvStream,
    _send: quinn::SendStream,
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Option<Response>, NetError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(NetError::Io(e.to_string())),
    }
    let len = codec::frame_len(prefix).map_err(|e| NetError::Protocol(e.to_string()))?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    codec::decode(&body)
        .map(Some)
        .map_err(|e| NetError::Protocol(e.to_string()))
}

impl Subscription {
    /// The next pushed change; `None` when the relay closed the stream.
    pub async fn next(&mut self) -> Result<Option<Told>, NetError> {
        match read_frame(&mut self.recv).await? {
            Some(Response::Notify { doc, seq }) => Ok(Some(Told::doc(doc, seq))),
            // Longer than was asked for: taken as a plain notice.
            Some(Response::Pushed { item, prev }) => Ok(Some(Told {
                doc: item.doc,
                seq: item.seq,
                pushed: (item.envelope.len() <= PUSHED_BYTES as usize).then_some(PushedEnvelope {
                    envelope: item.envelope,
                    prev,
                }),
            })),
            // Said once, at the end: the device was revoked, say.
            Some(Response::Error { code, reason }) => Err(NetError::Relay { code, reason }),
            Some(other) => Err(NetError::Protocol(format!("unexpected push {other:?}"))),
            None => Ok(None),
        }
    }
}

/// The first address `addr` names.
async fn resolve(addr: &str) -> Result<SocketAddr, NetError> {
    tokio::net::lookup_host(addr)
        .await
        .map_err(|_| NetError::Resolve(addr.to_string()))?
        .next()
        .ok_or_else(|| NetError::Resolve(addr.to_string()))
}

impl Relay {
    /// Connects over QUIC, accepting only the certificate with this fingerprint.
    pub async fn connect(addr: &str, fingerprint: [u8; 32]) -> Result<Relay, NetError> {
        let target = resolve(addr).await?;
        let bind: SocketAddr = if target.is_ipv6() {
            "[::]:0".parse().expect("a valid literal address")
        } else {
            "0.0.0.0:0".parse().expect("a valid literal address")
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| NetError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        Self::connect_on(endpoint, addr, fingerprint).await
    }

    /// Connects over a client endpoint (one UDP socket) that other
    /// connections share: a load generator's thousands of devices, which
    /// would otherwise hold a socket and its buffers each. Closing such a
    /// connection waits until the endpoint's other connections are closed
    /// too; drop it instead.
    pub async fn connect_on(
        endpoint: quinn::Endpoint,
        addr: &str,
        fingerprint: [u8; 32],
    ) -> Result<Relay, NetError> {
        let target = resolve(addr).await?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mismatch = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Protocol(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint,
                provider,
                mismatch: mismatch.clone(),
            }))
            .with_no_client_auth();
        tls.alpn_protocols = vec![casebook_shared::ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| NetError::Protocol(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(KEEP_ALIVE));
        transport.max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("a few seconds is a valid QUIC idle timeout"),
        ));
        config.transport_config(Arc::new(transport));
        let connect_err = |reason: String| NetError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let connecting = endpoint
            .connect_with(config, target, "casebook-relay")
            .map_err(|e| connect_err(e.to_string()))?;
        // The idle timeout bounds the handshake too.
        let conn = connecting.await.map_err(|e| {
            if mismatch.load(std::sync::atomic::Ordering::Relaxed) {
                NetError::WrongCertificate {
                    addr: addr.to_string(),
                }
            } else {
                connect_err(e.to_string())
            }
        })?;
        Ok(Relay {
            link: Link::Quic { endpoint, conn },
            fingerprint,
        })
    }

    /// A connection to a relay in this process; `fingerprint` is the one
    /// the relay signs challenges against, as pinned by the home.
    pub fn local(relay: &dyn LocalRelay, fingerprint: [u8; 32]) -> Relay {
        Relay {
            link: Link::Local(relay.open()),
            fingerprint,
        }
    }

    fn quic(&self) -> Result<&quinn::Connection, NetError> {
        match &self.link {
            Link::Quic { conn, .. } => Ok(conn),
            Link::Local(_) => Err(NetError::Protocol(
                "raw streams exist only over QUIC".into(),
            )),
        }
    }

    /// Sends one request on its own stream and reads the answer. An error
    /// frame from the relay becomes [`NetError::Relay`].
    pub async fn request(&self, req: &Request) -> Result<Response, NetError> {
        self.send(req).await?.answer().await
    }

    /// Sends one request on its own stream, and returns at once: the
    /// caller does its own work while the request travels and the relay
    /// answers, then reads the answer with [`Sent::answer`]. A relay in
    /// this process answers before this returns.
    pub async fn send(&self, req: &Request) -> Result<Sent, NetError> {
        let conn = match &self.link {
            Link::Quic { conn, .. } => conn,
            Link::Local(x) => return Ok(Sent::Answered(x.exchange(req).await?)),
        };
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        send.write_all(&codec::frame(req))
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        send.finish().map_err(|e| NetError::Io(e.to_string()))?;
        Ok(Sent::Waiting(recv))
    }

    /// Sends raw bytes on a stream of their own and returns the raw answer:
    /// for protocol tests and diagnostics, which need to send what a
    /// well-behaved client never would.
    pub async fn raw_exchange(&self, bytes: &[u8]) -> Result<Vec<u8>, NetError> {
        let (mut send, mut recv) = self
            .quic()?
            .open_bi()
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        send.write_all(bytes)
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        send.finish().map_err(|e| NetError::Io(e.to_string()))?;
        recv.read_to_end(MAX_FRAME + 4)
            .await
            .map_err(|e| NetError::Io(e.to_string()))
    }

    /// Proves this connection belongs to the device; returns its account.
    pub async fn authenticate(
        &self,
        signer: &DeviceSigner,
        account: Option<AccountId>,
    ) -> Result<AccountId, NetError> {
        let Response::Challenge { nonce } = self.request(&Request::Challenge).await? else {
            return Err(NetError::Protocol("expected a challenge".into()));
        };
        let device = signer.device_id();
        let msg = frames::auth_message(&self.fingerprint, &nonce, account.as_ref(), &device);
        let sig = signer.sign(frames::AUTH_LABEL, &msg);
        match self
            .request(&Request::Auth {
                account,
                device,
                sig,
            })
            .await?
        {
            Response::Authenticated { account } => Ok(account),
            other => Err(NetError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }

    /// Opens the push stream, with short envelopes pushed along; from a
    /// relay that does not push them, without.
    pub async fn subscribe(&self) -> Result<Subscription, NetError> {
        let with_items = Request::SubscribeItems {
            max_bytes: PUSHED_BYTES,
        };
        match self.subscribe_with(&with_items).await {
            Err(NetError::Relay {
                code: ErrorCode::BadRequest,
                ..
            }) => self.subscribe_with(&Request::Subscribe).await,
            other => other,
        }
    }

    async fn subscribe_with(&self, request: &Request) -> Result<Subscription, NetError> {
        let (mut send, mut recv) = self
            .quic()?
            .open_bi()
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        send.write_all(&codec::frame(request))
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        // The relay reads a request to its end; the pushes come back on
        // the receiving half, which stays open.
        send.finish().map_err(|e| NetError::Io(e.to_string()))?;
        match read_frame(&mut recv).await? {
            Some(Response::Ok) => Ok(Subscription { recv, _send: send }),
            Some(Response::Error { code, reason }) => Err(NetError::Relay { code, reason }),
            other => Err(NetError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        if let Link::Quic { endpoint, conn } = self.link {
            conn.close(0u32.into(), b"bye");
            endpoint.wait_idle().await;
        }
    }
}
