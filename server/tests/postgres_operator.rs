//! An operator's first steps with PostgreSQL, through the real binary:
//! `serve --store` refuses a database without the relay's schema and says
//! what to run; `migrate` makes it once and then has nothing to do; the
//! relay then serves; a schema newer than the relay is refused; the
//! database's password never shows in what the relay prints.

mod common;
#[path = "common/postgres.rs"]
mod pg;

use common::{BIN, RelayProcess, run, stderr};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn migrate_then_serve_and_refuse_what_is_not_ours() {
    let Some(server) = pg::TestPostgres::start() else {
        return;
    };
    server.create_db("relay").await;
    // Trust authentication ignores the password; it is there to be hidden.
    let url = format!(
        "postgres://casebook:s3cret-pw@127.0.0.1:{}/relay",
        server.port
    );
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap().to_string();
    let serve = |extra: &[&str]| -> Vec<String> {
        ["serve", "--listen", "127.0.0.1:0", "--data", &data_arg]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };

    let refused = run(&serve(&["--store", &url]));
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains("no relay schema yet") && said.contains("casebook-relay migrate"),
        "{said}"
    );
    assert!(!said.contains("s3cret-pw"), "{said}");

    let made = std::process::Command::new(BIN)
        .arg("migrate")
        .env("CASEBOOK_RELAY_STORE", &url)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(
        stdout(&made).contains("from version 0 to 3"),
        "{}",
        stdout(&made)
    );
    let again = run(&["migrate".into(), "--store".into(), url.clone()]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );

    let mut cmd = std::process::Command::new(BIN);
    cmd.args(serve(&[])).env("CASEBOOK_RELAY_STORE", &url);
    let relay = RelayProcess::spawn(&mut cmd);
    assert!(relay.addr.starts_with("127.0.0.1:"));
    let out = relay.stop();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret-pw"));
    assert!(
        !data.path().join("relay.db").exists(),
        "the data folder holds no SQLite database"
    );

    // A relay older than its database's schema does not touch it.
    let (db, conn) = tokio_postgres::connect(&server.url("relay"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.batch_execute("UPDATE casebook_schema SET version = 99")
        .await
        .unwrap();
    let newer = run(&serve(&["--store", &url]));
    assert!(!newer.status.success());
    assert!(
        stderr(&newer).contains("newer than this relay knows"),
        "{}",
        stderr(&newer)
    );
    let older_migrate = run(&["migrate".into(), "--store".into(), url.clone()]);
    assert!(!older_migrate.status.success());
    let version: i32 = db
        .query_one("SELECT version FROM casebook_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "a refused migration changes nothing");

    // Nor does `--help` show it from the environment.
    let help = std::process::Command::new(BIN)
        .args(["serve", "--help"])
        .env("CASEBOOK_RELAY_STORE", &url)
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(!stdout(&help).contains("s3cret-pw"), "{}", stdout(&help));

    let bad = run(&serve(&["--store", "mysql://nope"]));
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not a PostgreSQL address"),
        "{}",
        stderr(&bad)
    );
}

/// A database server that takes TCP clients over TLS only: the relay
/// reaches it with the authority's certificate (`--store-ca`), verifying
/// the server; without it, or trusting another authority, it cannot; an
/// address that asks for TLS without saying whom to trust is refused with
/// a message that says what to give.
#[tokio::test]
async fn the_database_over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let Some(server) = pg::TestPostgres::start_tls(&server_cert.pem(), &server_key.serialize_pem())
    else {
        return;
    };
    server.create_db("relay").await;
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let stranger = files.path().join("stranger.pem");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(&stranger, other.cert.pem()).unwrap();
    let url = server.url("relay");
    let ca_arg = ca.to_str().unwrap();

    let plain = run(&["migrate", "--store", &url]);
    assert!(
        !plain.status.success(),
        "a TLS-only server took a plain connection"
    );
    let wants_tls = run(&["migrate", "--store", &format!("{url}?sslmode=require")]);
    assert!(!wants_tls.status.success());
    assert!(
        stderr(&wants_tls).contains("--store-ca"),
        "{}",
        stderr(&wants_tls)
    );
    let wrong = run(&[
        "migrate",
        "--store",
        &url,
        "--store-ca",
        stranger.to_str().unwrap(),
    ]);
    assert!(
        !wrong.status.success(),
        "a server the given authority did not sign was trusted"
    );
    let not_pem = run(&["migrate", "--store", &url, "--store-ca", BIN]);
    assert!(!not_pem.status.success());
    assert!(
        stderr(&not_pem).contains("--store-ca"),
        "{}",
        stderr(&not_pem)
    );

    let made = run(&["migrate", "--store", &url, "--store-ca", ca_arg]);
    assert!(made.status.success(), "{}", stderr(&made));
    let data = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--store", &url, "--store-ca", ca_arg]);
    let relay = RelayProcess::spawn(&mut cmd);
    let out = relay.stop();
    assert!(out.status.success(), "{}", stderr(&out));
}
