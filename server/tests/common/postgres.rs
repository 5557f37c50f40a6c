//! A PostgreSQL server of a test's own: `initdb` into a temporary folder,
//! started with `pg_ctl` on a free port on 127.0.0.1, stopped and removed
//! when the value drops. As root it runs under the `postgres` user (the
//! server refuses root). Where Debian's `postgresql` is not installed the
//! test says so and skips; with `CI=true` (where `.ci/run` installs it) it
//! fails instead.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
    /// Server settings beyond the port and socket (TLS).
    extra: String,
}

/// The folder holding `initdb` and `pg_ctl`: on the PATH, or Debian's
/// newest under /usr/lib/postgresql.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl TestPostgres {
    /// Starts a server, or returns `None` (having said why) where
    /// PostgreSQL is not installed outside CI.
    pub fn start() -> Option<TestPostgres> {
        Self::start_with(None)
    }

    /// A server that takes TCP connections only over TLS, with this
    /// certificate and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<TestPostgres> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<TestPostgres> {
        let Some(bin) = bin_dir() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is missing in CI: .ci/run installs postgresql");
            }
            eprintln!(
                "SKIPPED: PostgreSQL is not installed (apt-get install postgresql); \
                 the PostgreSQL tests did not run"
            );
            return None;
        };
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().expect("a temporary folder");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown the server's folder to postgres");
        }
        let mut pg = TestPostgres {
            bin,
            dir,
            port: 0,
            as_postgres,
            extra: String::new(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "casebook",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        if let Some((cert, key)) = tls {
            pg.use_tls(cert, key);
        }
        pg.start_server();
        Some(pg)
    }

    /// Writes the certificate and key into the data folder (the key
    /// private to the server's user, as PostgreSQL demands) and lets TCP
    /// clients in over TLS only.
    fn use_tls(&mut self, cert: &str, key: &str) {
        let data = self.data();
        std::fs::write(data.join("server.crt"), cert).unwrap();
        std::fs::write(data.join("server.key"), key).unwrap();
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        let ssl_only: String = rules
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&hba, ssl_only).unwrap();
        let mut perms = Command::new("chmod");
        perms.arg("600").arg(data.join("server.key"));
        assert!(perms.status().unwrap().success());
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap();
            assert!(status.success());
        }
        self.extra = "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key".to_string();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, to run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        }
    }

    /// Runs one of the server's programs; it must succeed.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("the PostgreSQL program runs");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server on a free port, or on the one it had (so
    /// addresses handed out stay good across a restart).
    fn start_server(&mut self) {
        // A port taken between choosing and binding: choose again.
        for _ in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on {}",
                self.port,
                self.dir.path().display(),
                self.extra
            );
            let data = self.data();
            let log = self.dir.path().join("server.log");
            let status = self
                .command("pg_ctl")
                .args([
                    "-D",
                    path(&data),
                    "-l",
                    path(&log),
                    "-o",
                    &opts,
                    "-w",
                    "start",
                ])
                .output()
                .expect("pg_ctl runs");
            if status.status.success() {
                return;
            }
            self.port = 0;
        }
        panic!(
            "the PostgreSQL server did not start: {}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Stops the server as a crash would (no shutdown checkpoint: what
    /// was committed must come back from the WAL), then starts it again.
    pub fn crash_and_restart(&mut self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        );
        self.start_server();
    }

    /// The address of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://casebook@127.0.0.1:{}/{db}", self.port)
    }

    /// Makes a new empty database and returns its address.
    pub async fn create_db(&self, db: &str) -> String {
        // Over the Unix socket, which a TLS-only server still takes plain.
        let admin = format!(
            "host={} port={} user=casebook dbname=postgres",
            self.dir.path().display(),
            self.port
        );
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .expect("create the database");
        self.url(db)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", path(&data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}
