//! The relay as a service: systemd readiness and watchdog, SIGHUP, and a
//! log a collector can read.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::{BIN, RelayProcess};

fn messages(sock: &UnixDatagram, until: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.iter().any(|m: &String| m.contains(until)) {
        let n = sock.recv(&mut buf).expect("a notification in time");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn it_tells_systemd_it_is_ready_alive_and_stopping_and_shrugs_off_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let relay = RelayProcess::spawn(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(tmp.path().join("data"))
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "200000"),
    );
    let first = messages(&sock, "WATCHDOG=1");
    assert!(first[0].contains("READY=1"), "{first:?}");
    // SIGHUP would end a process that does not handle it.
    // SAFETY: kill(2) on our own child's pid, which we have not reaped.
    unsafe {
        libc::kill(relay.child.id() as i32, libc::SIGHUP);
    }
    messages(&sock, "WATCHDOG=1");
    messages(&sock, "WATCHDOG=1");
    let out = relay.stop();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("SIGHUP: nothing to reopen"));
    messages(&sock, "STOPPING=1");
}

#[test]
fn the_log_is_json_lines_when_asked_and_never_coloured_when_piped() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(&tmp.path().join("a"), &["--log-format", "json"]);
    let out = relay.stop();
    let err = common::stderr(&out);
    assert!(err.lines().count() >= 3, "{err}");
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(err.contains("relay listening"));

    let relay = RelayProcess::start(&tmp.path().join("b"), &[]);
    let err = common::stderr(&relay.stop());
    assert!(err.contains("relay listening"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped log: {err:?}"
    );
}

const UNIT: &str = include_str!("../../dist/casebook-relay.service");

/// `systemd-analyze verify` on the unit, with its ExecStart pointed at the
/// binary under test: no error and no warning (a bad value is only a
/// warning to systemd).
#[test]
fn the_unit_file_verifies_and_its_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = UNIT.replace("/usr/local/bin/casebook-relay", BIN);
    let path = tmp.path().join("casebook-relay.service");
    std::fs::write(&path, &unit).unwrap();
    match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success() && said.trim().is_empty(), "{said}");
        }
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("systemd-analyze is missing in CI: .ci/run installs systemd")
        }
        Err(_) => eprintln!("SKIPPED: systemd-analyze is not installed; the unit was not verified"),
    }
    // The command line it runs is one this relay takes.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let data = tmp.path().join("state");
    let exec = exec.replace("/var/lib/casebook-relay", data.to_str().unwrap());
    let mut words = exec.split_whitespace();
    let relay = RelayProcess::spawn(
        Command::new(words.next().unwrap())
            .args(words)
            .env("CASEBOOK_RELAY_LISTEN", "127.0.0.1:0"),
    );
    relay.stop();
}
