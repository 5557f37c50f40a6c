//! Running a relay: the admin listener's metrics and probes, and the limits
//! one account and one connection are held to. Real relays, real clients.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use casebook::net::NetError;
use casebook_relay::limits::Limits;
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_tests::*;

/// `GET path` with this `Host`, as (status, body).
fn get(addr: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("the admin listener accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().expect("a status line");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// The value of a metric line that starts with `name` (labels included).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{body}"))
}

async fn relay_with(limits: Limits, admin: bool) -> TestRelay {
    let data = tempfile::tempdir().unwrap();
    let mut config = casebook_relay::Config::new("127.0.0.1:0".parse().unwrap(), data.path());
    config.limits = limits;
    if admin {
        config.admin = Some("127.0.0.1:0".parse().unwrap());
    }
    let handle = casebook_relay::start(config)
        .await
        .expect("the relay starts");
    TestRelay { handle, data }
}

fn limited(e: &casebook::Error, name: &str) -> bool {
    matches!(e, casebook::Error::Net(NetError::Relay { code: ErrorCode::Limited, reason })
        if reason.starts_with(&format!("limit {name}:")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_counts_what_happens_and_names_no_one() {
    let relay = relay_with(Limits::default(), true).await;
    let admin = relay.handle.admin.expect("an admin address");
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;

    // The tablet watches; the laptop's next edit is pushed to it.
    let watching = tablet.connect().await.unwrap();
    let mut pushes = watching.subscribe().await.unwrap();
    laptop
        .edit_case(&case, "edit", |c| {
            Ok(c.set_profile(&[("goals".into(), "Sleep through".into())])?)
        })
        .unwrap();
    sync(&mut laptop).await;
    tokio::time::timeout(Duration::from_secs(10), pushes.next())
        .await
        .expect("a push")
        .unwrap();
    // One envelope that is not one, and one frame that does not decode.
    let conn = laptop.connect().await.unwrap();
    let Response::Uploaded { results } = conn
        .request(&Request::Upload {
            envelopes: vec![b"not an envelope".to_vec()],
        })
        .await
        .unwrap()
    else {
        panic!("an upload answer")
    };
    assert_eq!(results, vec![Err(ErrorCode::BadRequest)]);
    conn.raw_exchange(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();

    let (status, body) = get(admin, "/metrics", &admin.to_string());
    assert_eq!(status, 200);
    assert!(metric(&body, "casebook_relay_connections_total") >= 4.0);
    assert!(metric(&body, "casebook_relay_connections") >= 2.0);
    assert!(metric(&body, "casebook_relay_authenticated_devices") >= 2.0);
    assert!(metric(&body, "casebook_relay_envelopes_accepted_total") >= 2.0);
    // Other tests in this process count into the same recorder: at least.
    assert!(
        metric(
            &body,
            "casebook_relay_envelopes_refused_total{reason=\"malformed\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &body,
            "casebook_relay_bad_frames_total{reason=\"malformed\"}"
        ) >= 1.0
    );
    assert!(metric(&body, "casebook_relay_stored_bytes") > 0.0);
    assert!(metric(&body, "casebook_relay_fetch_pages_total") >= 1.0);
    assert!(metric(&body, "casebook_relay_pushes_total") >= 1.0);
    assert!(metric(&body, "casebook_relay_commit_jobs_count") >= 1.0);
    assert!(metric(&body, "casebook_relay_commit_seconds_count") >= 1.0);
    assert!(body.contains("casebook_relay_commit_seconds_bucket{le=\"0.005\"}"));
    // No account, device or document id in any form.
    let account = laptop.account_id();
    for id in [
        account.to_hex(),
        account.short(),
        case.to_hex(),
        case.short(),
    ] {
        assert!(!body.contains(&id), "{id} in the metrics");
    }

    assert_eq!(get(admin, "/healthz", "localhost").0, 200);
    assert_eq!(get(admin, "/readyz", "127.0.0.1").0, 200);
    // A page that made its name resolve here is refused.
    assert_eq!(get(admin, "/metrics", "evil.example").0, 403);
    assert_eq!(get(admin, "/nothing", "localhost").0, 404);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_listener_off_loopback_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("relay");
    let mut config = casebook_relay::Config::new("127.0.0.1:0".parse().unwrap(), &data);
    config.admin = Some("0.0.0.0:0".parse().unwrap());
    let e = casebook_relay::start(config).await.err().expect("refused");
    assert!(e.to_string().contains("loopback only"), "{e}");
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_quota_stops_uploads_and_keeps_the_edit() {
    let relay = relay_with(
        Limits {
            quota_bytes: 24 * 1024,
            ..Limits::default()
        },
        false,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    sync(&mut laptop).await;
    // Text that does not compress, as the changes are compressed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut words = move || {
        (0..6000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'a' + (x % 26) as u8) as char
            })
            .collect::<String>()
    };
    let mut refused = None;
    for i in 0..20 {
        let text = format!("{i} {}", words());
        laptop
            .edit_case(&case, "edit", |c| {
                Ok(c.set_profile(&[("goals".into(), text.clone())])?)
            })
            .unwrap();
        if let Err(e) = try_sync(&mut laptop).await {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("the quota was reached");
    assert!(limited(&e, "storage-quota"), "{e}");
    assert!(e.to_string().contains("ask the relay's operator"), "{e}");
    // Kept on the device.
    let goals = laptop.open_case(&case).unwrap().profile.goals;
    assert!(goals.starts_with(&format!("{i} ")), "{goals:.20}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_held_to_its_connections_and_upload_rate() {
    let relay = relay_with(
        Limits {
            connections_per_account: 2,
            uploads_per_second: 1,
            ..Limits::default()
        },
        false,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = init(dir.path(), &relay, "Dr. Rivera");
    let a = laptop.connect().await.unwrap();
    let b = laptop.connect().await.unwrap();
    let e = laptop.connect().await.err().expect("a third is refused");
    assert!(limited(&e, "connections-per-account"), "{e}");
    a.close().await;
    let c = laptop.connect().await.expect("a slot came back");

    // One a second, two in a burst: of ten in a row, most are refused
    // however slowly this machine runs them.
    let upload = Request::Upload { envelopes: vec![] };
    let mut refused = Vec::new();
    for _ in 0..10 {
        if let Err(e) = b.request(&upload).await {
            refused.push(e);
        }
    }
    assert!(!refused.is_empty());
    for e in &refused {
        assert!(
            matches!(e, NetError::Relay { code: ErrorCode::Limited, reason } if reason.starts_with("limit uploads-per-second:")),
            "{e}"
        );
    }
    b.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_held_to_its_requests_in_flight() {
    let relay = relay_with(
        Limits {
            requests_in_flight: 1,
            ..Limits::default()
        },
        false,
    )
    .await;
    let conn = casebook::net::Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    // A long poll holds the one place.
    let waiting = conn.request(&Request::MailboxTake {
        mailbox: [7; 16],
        slot: 0,
        wait_ms: 3_000,
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.request(&Request::Challenge).await
    };
    let (first, second) = tokio::join!(waiting, second);
    assert!(
        matches!(first, Ok(Response::Mailbox { msg: None })),
        "{first:?}"
    );
    let e = second.unwrap_err();
    assert!(
        matches!(&e, NetError::Relay { code: ErrorCode::Limited, reason } if reason.starts_with("limit requests-in-flight:")),
        "{e}"
    );
    // Free again once the first is answered.
    conn.request(&Request::Challenge).await.unwrap();
    conn.close().await;
}
