//! The data folder is the relay's alone: one relay at a time, private
//! modes, nothing made before the socket is bound, host names to listen on.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{RelayProcess, run, stderr};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_second_relay_on_the_same_data_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("relay");
    let first = RelayProcess::start(&data, &[]);
    let second = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("another relay is running on the data folder"),
        "{}",
        stderr(&second)
    );
    let out = first.stop();
    assert!(out.status.success(), "{}", stderr(&out));
    // Once the first has stopped, the folder is free again.
    RelayProcess::start(&data, &[]).stop();
}

#[test]
fn the_folder_and_every_file_in_it_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("relay");
    let relay = RelayProcess::start(&data, &[]);
    assert_eq!(mode(&data), 0o700);
    let names: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for f in [
        "relay.db",
        "relay.db-wal",
        "relay-key.der",
        "relay-cert.der",
        "relay.lock",
    ] {
        assert!(names.contains(&data.join(f)), "{f} missing from {names:?}");
    }
    for f in &names {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    relay.stop();
}

#[test]
fn a_port_in_use_leaves_nothing_behind() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("relay");
    let out = run(&["serve", "--listen", &port, "--data", data.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "a failed start made {}", data.display());
}

#[test]
fn a_host_name_is_a_listen_address_and_a_missing_port_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(tmp.path(), &["--listen", "localhost:0"]);
    assert!(relay.addr.starts_with("127.0.0.1:"), "{}", relay.addr);
    relay.stop();
    let out = run(&[
        "serve",
        "--listen",
        "localhost",
        "--data",
        tmp.path().join("other").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("give HOST:PORT"), "{}", stderr(&out));
}
