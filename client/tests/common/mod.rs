//! What the CLI tests share: a real relay on a loopback port, and the
//! `casebook` binary run against a home folder as a person would run it.
// Each test file uses a different part of this.
#![allow(dead_code)]

pub mod browser;
pub mod damage;
pub mod page;

use std::path::Path;
use std::process::{Command, Output};

pub const PASS: &str = "a long enough passphrase";

pub struct Relay {
    pub handle: casebook_relay::Handle,
    _data: tempfile::TempDir,
}

impl Relay {
    /// The relay's data folder, for a test that changes what it stores.
    #[allow(dead_code)]
    pub fn data(&self) -> &Path {
        self._data.path()
    }
}

pub async fn relay() -> Relay {
    relay_with(casebook_relay::limits::Limits::default()).await
}

/// A relay on a new port over the data in `data` (kept by the caller).
///
/// The data folder's lock (`flock`) is shared with any process this test
/// binary forks in the instant before that child's `exec` closes it, and
/// the tests running beside this one fork `casebook` all the time: a
/// relay restarted over the same folder retries while it reads "in use".
pub async fn relay_in(data: &Path) -> casebook_relay::Handle {
    relay_at(data, "127.0.0.1:0".parse().unwrap()).await
}

/// The same at `addr`, which a relay just stopped may still hold for an
/// instant: retried as the data folder's lock is.
async fn relay_at(data: &Path, addr: std::net::SocketAddr) -> casebook_relay::Handle {
    for _ in 0..50 {
        match casebook_relay::start(casebook_relay::Config::new(addr, data)).await {
            Err(
                casebook_relay::StartError::Data(casebook_relay::data_dir::DataDirError::InUse(_))
                | casebook_relay::StartError::Bind(..),
            ) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            started => return started.unwrap(),
        }
    }
    panic!("the data folder or the port stayed taken");
}

impl Relay {
    /// Stops the relay, lets `edit` change what its data folder holds, and
    /// starts it again at the same address, as its operator editing the
    /// disk would (the relay keeps what it verified in memory meanwhile).
    pub async fn edited_while_stopped(self, edit: impl FnOnce(&Path)) -> Relay {
        let addr = self.handle.addr;
        self.handle.shutdown().await;
        edit(self._data.path());
        let handle = relay_at(self._data.path(), addr).await;
        Relay {
            handle,
            _data: self._data,
        }
    }
}

pub async fn relay_with(limits: casebook_relay::limits::Limits) -> Relay {
    let data = tempfile::tempdir().unwrap();
    let mut config = casebook_relay::Config::new("127.0.0.1:0".parse().unwrap(), data.path());
    config.limits = limits;
    let handle = casebook_relay::start(config).await.unwrap();
    Relay {
        handle,
        _data: data,
    }
}

/// `casebook init` of a first device in `home` against `relay`.
/// `init --name NAME --relay ... --relay-fingerprint ...` against `relay`.
pub fn init_args(relay: &Relay, name: &str) -> Vec<String> {
    let addr = relay.handle.addr.to_string();
    let fp = casebook_relay::format_fingerprint(&relay.handle.fingerprint);
    [
        "init",
        "--name",
        name,
        "--relay",
        &addr,
        "--relay-fingerprint",
        &fp,
    ]
    .map(String::from)
    .to_vec()
}

/// The recovery words shown (once) on stderr by `init` or `device
/// new-recovery-words`: the indented line after the heading.
pub fn shown_words(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines().skip_while(|l| !l.contains("recovery words"));
    lines
        .find(|l| l.starts_with("    "))
        .expect("the words are shown")
        .trim()
        .to_string()
}

pub fn init_at(home: &Path, relay: &Relay, name: &str) {
    let args = init_args(relay, name);
    ok(home, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

pub fn new_case(home: &Path, name: &str) -> String {
    ok(home, &["case", "new", name]).trim().to_string()
}

/// Makes `other` (known as `name`) a verified contact of `home`, from the
/// card and safety number `other`'s `whoami` prints, as two people would.
pub fn befriend(home: &Path, other: &Path, name: &str) {
    let me: serde_json::Value = serde_json::from_str(&ok(other, &["--json", "whoami"])).unwrap();
    ok(
        home,
        &["contact", "add", name, me["card"].as_str().unwrap()],
    );
    ok(
        home,
        &[
            "contact",
            "verify",
            name,
            me["safety_number"].as_str().unwrap(),
        ],
    );
}

/// `share CASE --with WITH --role ROLE` for a consultation on a signed
/// release, then `extra`.
pub fn share_args<'a>(
    case: &'a str,
    with: &'a str,
    role: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "share",
        case,
        "--with",
        with,
        "--role",
        role,
        "--purpose",
        "consultation",
        "--consent",
        "signed release",
    ];
    args.extend_from_slice(extra);
    args
}

pub fn casebook(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_casebook"));
    c.arg("--home")
        .arg(home)
        .env("CASEBOOK_PASSPHRASE", PASS)
        .env_remove("CASEBOOK_HOME");
    c
}

pub fn run(home: &Path, args: &[&str]) -> Output {
    casebook(home).args(args).output().unwrap()
}

pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "casebook {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fails(home: &Path, args: &[&str], says: &str) {
    let out = run(home, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "casebook {args:?} should fail");
    assert!(
        err.contains(says),
        "casebook {args:?}: {err:?} does not say {says:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `casebook ui --no-browser` on `home` (with `extra` arguments), and the
/// address with its one-time token that it printed on its first line. The
/// passphrase is left out of its environment: the page asks for it.
pub fn start_ui(home: &Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = casebook(home)
        .args(["ui", "--no-browser"])
        .args(extra)
        .env_remove("CASEBOOK_PASSPHRASE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (child, first.trim().to_string())
}
