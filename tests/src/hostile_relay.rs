//! A hostile relay for the tests: it holds the real relay's TLS key (it *is*
//! the relay, as far as a client can tell), forwards every request to the
//! real one, and rewrites the answers as a test tells it to. What the real
//! relay refuses to store can still reach a client this way, which is the
//! case the clients must hold against.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use casebook::net::Relay;
use casebook_shared::codec::{self, MAX_FRAME};
use casebook_shared::frames::{Request, Response};

use crate::TestRelay;

/// Turns the real relay's answer to a request into the one a client gets.
pub type Rewrite = Box<dyn Fn(&Request, Response) -> Response + Send + Sync>;

/// Answers a request without passing it on, or passes it on (`None`).
pub type Intercept = Box<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// A relay in the middle; homes set up with [`HostileRelay::addr`] use it.
pub struct HostileRelay {
    pub addr: SocketAddr,
    pub fingerprint: [u8; 32],
    rewrite: Arc<Mutex<Option<Rewrite>>>,
    intercept: Arc<Mutex<Option<Intercept>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileRelay {
    /// Starts on 127.0.0.1, port 0, in front of `upstream`, passing
    /// everything through unchanged until [`HostileRelay::set`].
    pub async fn start(upstream: &TestRelay) -> HostileRelay {
        let identity = casebook_relay::tls::Identity::load_or_create(upstream.data.path())
            .expect("the relay's own TLS identity");
        let fingerprint = identity.fingerprint();
        assert_eq!(fingerprint, upstream.handle.fingerprint);
        let endpoint = quinn::Endpoint::server(
            identity.server_config().expect("a server config"),
            "127.0.0.1:0".parse().expect("a literal address"),
        )
        .expect("bind");
        let addr = endpoint.local_addr().expect("an address");
        let rewrite: Arc<Mutex<Option<Rewrite>>> = Arc::new(Mutex::new(None));
        let target = upstream.addr();
        let intercept: Arc<Mutex<Option<Intercept>>> = Arc::new(Mutex::new(None));
        let (rw, ic) = (rewrite.clone(), intercept.clone());
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let (rw, ic, target) = (rw.clone(), ic.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    let Ok(up) = Relay::connect(&target, fingerprint).await else {
                        return;
                    };
                    let up = Arc::new(up);
                    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                        let (rw, ic, up) = (rw.clone(), ic.clone(), up.clone());
                        tokio::spawn(async move {
                            let Ok(raw) = recv.read_to_end(MAX_FRAME + 4).await else {
                                return;
                            };
                            let alone = codec::unframe::<Request>(&raw).ok().and_then(|req| {
                                let guard = ic.lock().expect("not poisoned");
                                guard.as_ref().and_then(|f| f(&req))
                            });
                            if let Some(resp) = alone {
                                let _ = send.write_all(&codec::frame(&resp)).await;
                                let _ = send.finish();
                                return;
                            }
                            let Ok(answer) = up.raw_exchange(&raw).await else {
                                return;
                            };
                            let answer = match (
                                codec::unframe::<Request>(&raw),
                                codec::unframe::<Response>(&answer),
                            ) {
                                (Ok(req), Ok(resp)) => {
                                    let guard = rw.lock().expect("not poisoned");
                                    match guard.as_ref() {
                                        Some(f) => codec::frame(&f(&req, resp)),
                                        None => answer,
                                    }
                                }
                                _ => answer,
                            };
                            let _ = send.write_all(&answer).await;
                            let _ = send.finish();
                        });
                    }
                });
            }
        });
        HostileRelay {
            addr,
            fingerprint,
            rewrite,
            intercept,
            task,
        }
    }

    /// The address to give clients.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// From now on, answers pass through `f`.
    pub fn set(&self, f: impl Fn(&Request, Response) -> Response + Send + Sync + 'static) {
        *self.rewrite.lock().expect("not poisoned") = Some(Box::new(f));
    }

    /// From now on, a request `f` answers is not passed on at all (the
    /// real relay never sees it).
    pub fn intercept(&self, f: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static) {
        *self.intercept.lock().expect("not poisoned") = Some(Box::new(f));
    }

    /// Back to passing requests on and answers through unchanged.
    pub fn clear(&self) {
        *self.rewrite.lock().expect("not poisoned") = None;
        *self.intercept.lock().expect("not poisoned") = None;
    }
}

impl Drop for HostileRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
