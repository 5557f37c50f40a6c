//! A relay that dies mid-sync is an error within seconds, and nothing the
//! device was sending is lost: it goes at the next sync.

use std::time::Duration;

use casebook::net::NetError;
use casebook_tests::udp_proxy::UdpProxy;
use casebook_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_gone_silent_is_an_error_in_seconds_and_the_edit_waits() {
    let relay = TestRelay::start().await;
    let proxy = UdpProxy::start(relay.handle.addr, relay.handle.fingerprint).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut laptop = init(dirs.0.path(), &proxy, "Dr. Rivera");
    sync(&mut laptop).await;

    let conn = laptop.connect().await.expect("connect");
    let case = laptop.create_case("Jordan Avery", "2026-11-20").unwrap();
    proxy.go_silent();
    // QUIC's default idle timeout would leave it waiting half a minute
    // (41 s was measured); the client allows 6 s, and the guard sits well
    // above that and well below the default.
    let round = tokio::time::timeout(Duration::from_secs(20), laptop.sync(&conn, &mut |_| {}))
        .await
        .expect("the client gave up on a silent relay by itself");
    let e = round.expect_err("nothing answered");
    assert!(matches!(e, casebook::Error::Net(NetError::Io(_))), "{e}");
    drop(conn);

    proxy.resume();
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs.1.path(), &relay).await;
    sync(&mut tablet).await;
    assert!(
        tablet
            .list_cases(false)
            .unwrap()
            .iter()
            .any(|c| c.id == case),
        "the case made while the relay was silent reached the tablet"
    );
}
