//! A UDP forwarder between a client and a relay that can go silent, as a
//! relay does when its process is killed or its machine loses power: no
//! close frame, no error, just nothing coming back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UdpSocket;

/// Forwards one client's datagrams to `upstream` and back.
pub struct UdpProxy {
    pub addr: SocketAddr,
    fingerprint: [u8; 32],
    silent: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpProxy {
    /// Starts forwarding to a relay.
    pub async fn start(upstream: SocketAddr, fingerprint: [u8; 32]) -> UdpProxy {
        let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        back.connect(upstream).await.expect("connect");
        let addr = front.local_addr().expect("address");
        let silent = Arc::new(AtomicBool::new(false));
        let quiet = silent.clone();
        let task = tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
            loop {
                tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        if !quiet.load(Ordering::SeqCst) {
                            let _ = back.send(&a[..n]).await;
                        }
                    }
                    r = back.recv(&mut b) => {
                        let Ok(n) = r else { continue };
                        if let (Some(c), false) = (client, quiet.load(Ordering::SeqCst)) {
                            let _ = front.send_to(&b[..n], c).await;
                        }
                    }
                }
            }
        });
        UdpProxy {
            addr,
            fingerprint,
            silent,
            task,
        }
    }

    /// From now on nothing passes either way.
    pub fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn resume(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl crate::Reach for UdpProxy {
    fn addr(&self) -> String {
        self.addr.to_string()
    }
    fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}
