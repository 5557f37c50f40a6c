//! Runs the real `casebook-relay` binary for the operator tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_casebook-relay");

/// A relay process, killed when dropped.
pub struct RelayProcess {
    pub child: Child,
    pub addr: String,
    pub fingerprint: String,
    stdout: BufReader<ChildStdout>,
}

impl RelayProcess {
    /// Starts `casebook-relay serve --data DATA ARGS...` on a free loopback
    /// port and waits for its two lines (address, fingerprint).
    pub fn start(data: &Path, args: &[&str]) -> RelayProcess {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").arg("--data").arg(data);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        Self::spawn(cmd.args(args))
    }

    /// Spawns a prepared command and waits for the two lines.
    pub fn spawn(cmd: &mut Command) -> RelayProcess {
        let mut child = cmd
            .env("RUST_LOG", "casebook_relay=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the relay binary runs");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = |what: &str| {
            let mut l = String::new();
            stdout
                .read_line(&mut l)
                .expect("reading the relay's stdout");
            l.trim()
                .strip_prefix(what)
                .unwrap_or_else(|| panic!("expected {what:?}, got {l:?}"))
                .to_string()
        };
        let addr = line("listening on ");
        let fingerprint = line("fingerprint ");
        RelayProcess {
            child,
            addr,
            fingerprint,
            stdout,
        }
    }

    /// Asks it to stop (SIGTERM) and waits for it.
    pub fn stop(mut self) -> Output {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut out);
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("true runs"),
        );
        child.wait_with_output().expect("the relay exits")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the relay binary to the end with these arguments.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "casebook_relay=info")
        .output()
        .expect("the relay binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
