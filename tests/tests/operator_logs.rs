//! What the relay logs at warn: every refusal an operator should see, with
//! ids and sizes and never content.

use std::io::Write;
use std::sync::{Arc, Mutex};

use casebook_shared::crypto::DeviceSigner;
use casebook_shared::frames::Request;
use casebook_tests::*;
use serde_json::Value;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Warn lines whose message contains `what`.
fn warnings(log: &Captured, what: &str) -> Vec<Value> {
    let bytes = log.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("every line is JSON"))
        .filter(|v| v["level"] == "WARN" && v["fields"]["message"].as_str().unwrap().contains(what))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_at_warn_with_ids_and_sizes() {
    let log = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::WARN)
            .with_writer(log.clone())
            .finish(),
    )
    .unwrap();

    let relay = TestRelay::start().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    laptop
        .edit_case(&case, "edit", |c| {
            Ok(c.set_profile(&[("goals".into(), "Sleep through the night".into())])?)
        })
        .unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;
    let account = laptop.account_id().short();

    // A refused envelope and a frame that does not decode.
    let conn = laptop.connect().await.unwrap();
    conn.request(&Request::Upload {
        envelopes: vec![b"not an envelope".to_vec()],
    })
    .await
    .unwrap();
    conn.raw_exchange(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    // A device no account lists.
    let stranger = DeviceSigner::generate();
    let plain = casebook::net::Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    plain.authenticate(&stranger, None).await.unwrap_err();
    // A revoked device.
    let tablet_id = tablet.device_id();
    laptop.revoke(&conn, &tablet_id).await.unwrap();
    assert!(try_sync(&mut tablet).await.is_err());
    conn.close().await;
    plain.close().await;

    let envelope = warnings(&log, "refused an envelope");
    assert_eq!(envelope.len(), 1, "{envelope:?}");
    let f = &envelope[0]["fields"];
    assert_eq!(f["reason"], "malformed");
    assert_eq!(f["account"], account.as_str());
    assert_eq!(f["device"], laptop.device_id().short().as_str());
    assert_eq!(f["bytes"], 15);

    let frame = warnings(&log, "refused a malformed frame");
    assert_eq!(frame.len(), 1, "{frame:?}");
    assert_eq!(frame[0]["fields"]["bytes"], 7);
    assert_eq!(frame[0]["fields"]["account"], account.as_str());

    let auth = warnings(&log, "authentication refused");
    let reasons: Vec<_> = auth
        .iter()
        .map(|v| {
            (
                v["fields"]["reason"].as_str().unwrap().to_string(),
                v["fields"]["device"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("unknown-device".into(), stranger.device_id().short())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("revoked".into(), tablet_id.short())),
        "{reasons:?}"
    );
    // Ids and sizes, never what was sent: not the refused envelope's
    // bytes, in any form.
    let all = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    for form in [
        "not an envelope".to_string(),
        hex::encode(b"not an envelope"),
        format!("{:?}", b"not an envelope"),
    ] {
        assert!(!all.contains(&form), "{form} logged");
    }
}
