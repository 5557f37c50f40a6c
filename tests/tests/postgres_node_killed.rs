//! A relay node over PostgreSQL killed with SIGKILL in the middle of a
//! stream of uploads: nothing it acknowledged is lost, the other node
//! serves throughout (and serves what the dead one stored), and the killed
//! node, started again, serves at once.
//!
//! The nodes are real relays in child processes (the benchmark binary's
//! `__relay` mode, which runs `casebook_relay::start`), so the kill is a
//! real one.

#[path = "../../server/tests/common/postgres.rs"]
mod pg;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use casebook::net::Relay;
use casebook_shared::frames::{Request, Response};
use casebook_tests::uploader::uploader;

/// A relay node in a child process.
struct Node {
    child: Child,
    addr: String,
    fp: [u8; 32],
}

impl Node {
    fn start(data: &Path, url: &str, cert_from: Option<&Path>) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
        cmd.arg("__relay").arg(data).arg(url);
        if let Some(d) = cert_from {
            cmd.arg(d);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the relay node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (addr, fp) = line
            .trim()
            .split_once(' ')
            .expect("address and fingerprint");
        Node {
            child,
            addr: addr.to_string(),
            fp: hex::decode(fp).unwrap().try_into().unwrap(),
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing finished.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An envelope as the relay numbered it.
type Stored = (u64, Vec<u8>);

/// Every envelope of `doc` the relay serves, by sequence number.
async fn everything(relay: &Relay, doc: casebook_shared::ids::DocId) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut since = 0;
    loop {
        let page = relay
            .request(&Request::Fetch {
                docs: vec![(doc, since)],
                max_bytes: 1 << 20,
            })
            .await
            .expect("fetch");
        let Response::Changes { items, more } = page else {
            panic!("{page:?}")
        };
        for it in items {
            since = it.seq;
            out.push((it.seq, it.envelope));
        }
        if !more {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_loses_nothing_it_acknowledged() {
    let Some(server) = pg::TestPostgres::start() else {
        return;
    };
    let url = server.create_db("relay").await;
    casebook_relay::postgres::migrate(&url, None).await.unwrap();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Node::start(dirs[0].path(), &url, None);
    let b = Node::start(dirs[1].path(), &url, Some(dirs[0].path()));
    assert_eq!(a.fp, b.fp);

    // A device on node A streams uploads; what node A acknowledges is kept.
    let up = uploader(&a.addr, a.fp).await.unwrap();
    let sealed = up.seal(2_000);
    let acked: Arc<Mutex<Vec<Stored>>> = Arc::default();
    let streaming = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for chunk in sealed.chunks(16) {
                let answer = up
                    .relay
                    .request(&Request::Upload {
                        envelopes: chunk.to_vec(),
                    })
                    .await;
                let Ok(Response::Uploaded { results }) = answer else {
                    return up;
                };
                let mut acked = acked.lock().unwrap();
                for (r, bytes) in results.iter().zip(chunk) {
                    if let Ok(seq) = r {
                        acked.push((*seq, bytes.clone()));
                    }
                }
            }
            up
        })
    };
    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    a.kill();
    let up = streaming.await.unwrap();
    let (signer, account, doc) = (&up.signer, up.account, up.doc);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() < 2_000, "the kill came before the stream ended");

    // Node B served throughout: a device of another account uploads to it now.
    let other = uploader(&b.addr, b.fp).await.unwrap();
    let Response::Uploaded { results } = other
        .relay
        .request(&Request::Upload {
            envelopes: other.seal(10),
        })
        .await
        .unwrap()
    else {
        panic!("node B answers an upload")
    };
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // The first device, on node B: everything node A acknowledged is there.
    let via_b = Relay::connect(&b.addr, b.fp).await.unwrap();
    via_b.authenticate(signer, Some(account)).await.unwrap();
    let stored = everything(&via_b, doc).await;
    for (seq, bytes) in &acked {
        assert!(
            stored.iter().any(|(s, b)| s == seq && b == bytes),
            "envelope {seq}, acknowledged by the killed node, is missing"
        );
    }
    via_b.close().await;

    // Node A again, on the same folder and database: it serves at once.
    let a = Node::start(dirs[0].path(), &url, None);
    let via_a = Relay::connect(&a.addr, a.fp).await.unwrap();
    via_a.authenticate(signer, Some(account)).await.unwrap();
    assert_eq!(everything(&via_a, doc).await, stored);
    via_a.close().await;
    drop(a);
    drop(b);
}
