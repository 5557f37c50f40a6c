//! `casebook-relay`: run a relay, print its certificate fingerprint, back
//! it up and restore it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use casebook_relay::limits::Limits;
use casebook_relay::state::Capacity;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The casebook relay: stores end-to-end encrypted changes it cannot read.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// How to write the log on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CASEBOOK_RELAY_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Lines for people (coloured only on a terminal).
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the relay until Ctrl-C or SIGTERM.
    Serve {
        /// Address (or host name) and UDP port to listen on.
        #[arg(long, default_value = "127.0.0.1:4433", env = "CASEBOOK_RELAY_LISTEN")]
        listen: String,
        /// Folder for the database and the certificate (the relay's alone).
        #[arg(long, env = "CASEBOOK_RELAY_DATA")]
        data: PathBuf,
        /// Keep the data in this PostgreSQL database instead of SQLite in
        /// --data (which then holds only the certificate), for example
        /// postgres://casebook@localhost/casebook. Give it in the
        /// environment, not on the command line, if it holds a password.
        #[arg(
            long,
            env = "CASEBOOK_RELAY_STORE",
            hide_env_values = true,
            value_name = "POSTGRES_URL"
        )]
        store: Option<String>,
        /// Reach the database over TLS, trusting this PEM certificate (the
        /// authority that signed the database server's certificate).
        #[arg(
            long,
            requires = "store",
            env = "CASEBOOK_RELAY_STORE_CA",
            value_name = "PEM_FILE"
        )]
        store_ca: Option<PathBuf>,
        /// A DER certificate to use instead of the self-signed one (with --key).
        #[arg(long, requires = "key", env = "CASEBOOK_RELAY_CERT")]
        cert: Option<PathBuf>,
        /// The PKCS#8 DER private key of --cert.
        #[arg(long, requires = "cert", env = "CASEBOOK_RELAY_KEY")]
        key: Option<PathBuf>,
        /// Serve Prometheus metrics, /healthz and /readyz over HTTP on this
        /// loopback address (off unless given).
        #[arg(long, env = "CASEBOOK_RELAY_ADMIN")]
        admin: Option<SocketAddr>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Accounts whose verified logs the relay holds in memory at most
        /// (others are read from the store when needed).
        #[arg(long, default_value_t = Capacity::default().accounts, env = "CASEBOOK_RELAY_CACHE_ACCOUNTS")]
        cache_accounts: usize,
        /// Documents whose verified access logs the relay holds in memory at most.
        #[arg(long, default_value_t = Capacity::default().docs, env = "CASEBOOK_RELAY_CACHE_DOCUMENTS")]
        cache_documents: usize,
    },
    /// Creates or upgrades the relay's tables in a PostgreSQL database
    /// (before the first `serve --store`, and after each upgrade of the relay).
    Migrate {
        /// The database, as for `serve --store`.
        #[arg(
            long,
            env = "CASEBOOK_RELAY_STORE",
            hide_env_values = true,
            value_name = "POSTGRES_URL"
        )]
        store: String,
        /// As for `serve --store-ca`.
        #[arg(long, env = "CASEBOOK_RELAY_STORE_CA", value_name = "PEM_FILE")]
        store_ca: Option<PathBuf>,
    },
    /// Prints the fingerprint clients pin.
    Fingerprint {
        #[arg(long, env = "CASEBOOK_RELAY_DATA")]
        data: PathBuf,
    },
    /// Copies a relay's database and certificate into one file, while it runs.
    Backup {
        /// The relay's data folder.
        #[arg(long, env = "CASEBOOK_RELAY_DATA")]
        data: PathBuf,
        /// The backup file to make (never overwritten; it holds the relay's
        /// private key, so keep it as safe as the data folder).
        #[arg(long)]
        to: PathBuf,
    },
    /// Puts a backup into an empty or absent data folder.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The data folder to fill.
        #[arg(long, env = "CASEBOOK_RELAY_DATA")]
        data: PathBuf,
    },
}

/// What one account and one connection may use.
#[derive(Args)]
struct LimitArgs {
    /// Connections this relay node serves at once, all accounts together.
    #[arg(long, default_value_t = Limits::default().connections, env = "CASEBOOK_RELAY_MAX_CONNECTIONS")]
    max_connections: u32,
    /// Connections one account may have open at once, all its devices together.
    #[arg(long, default_value_t = Limits::default().connections_per_account, env = "CASEBOOK_RELAY_MAX_CONNECTIONS_PER_ACCOUNT")]
    max_connections_per_account: u32,
    /// Storage per account, in MiB, for the cases it owns.
    #[arg(long, default_value_t = Limits::default().quota_bytes >> 20, env = "CASEBOOK_RELAY_QUOTA_MIB")]
    quota_mib: u64,
    /// Uploads one account may make per second (twice as many in a burst).
    #[arg(long, default_value_t = Limits::default().uploads_per_second, env = "CASEBOOK_RELAY_MAX_UPLOADS_PER_SECOND")]
    max_uploads_per_second: u32,
    /// Requests one connection may have waiting at once.
    #[arg(long, default_value_t = Limits::default().requests_in_flight, env = "CASEBOOK_RELAY_MAX_REQUESTS_IN_FLIGHT")]
    max_requests_in_flight: u32,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            connections: self.max_connections.max(1),
            connections_per_account: self.max_connections_per_account.max(1),
            quota_bytes: self.quota_mib.saturating_mul(1 << 20),
            uploads_per_second: self.max_uploads_per_second.max(1),
            requests_in_flight: self.max_requests_in_flight.max(1),
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "casebook_relay=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Fingerprint { data } => {
            if !data.join("relay-cert.der").exists() {
                anyhow::bail!(
                    "no relay certificate in {}: run `casebook-relay serve --data {}` first",
                    data.display(),
                    data.display()
                );
            }
            let id = casebook_relay::tls::Identity::load_or_create(&data)?;
            println!("{}", casebook_relay::format_fingerprint(&id.fingerprint()));
        }
        Command::Backup { data, to } => {
            let summary = tokio::task::spawn_blocking(move || {
                casebook_relay::backup::backup(&data, &to).map(|s| (s, to))
            })
            .await?;
            let (summary, to) = summary.context("backing up the relay")?;
            println!("backed up to {}: {summary}", to.display());
        }
        Command::Restore { from, data } => {
            let summary = tokio::task::spawn_blocking(move || {
                casebook_relay::backup::restore(&from, &data).map(|s| (s, data))
            })
            .await?;
            let (summary, data) = summary.context("restoring the relay")?;
            println!("restored into {}: {summary}", data.display());
        }
        Command::Migrate { store, store_ca } => {
            let m = casebook_relay::postgres::migrate(&store, store_ca.as_deref())
                .await
                .context("migrating the relay's database")?;
            if m.from == m.to {
                println!("the relay's schema is at version {}: nothing to do", m.to);
            } else {
                println!(
                    "the relay's schema went from version {} to {}",
                    m.from, m.to
                );
            }
        }
        Command::Serve {
            listen,
            data,
            store,
            store_ca,
            cert,
            key,
            admin,
            limits,
            cache_accounts,
            cache_documents,
        } => {
            let listen = resolve(&listen).await?;
            let mut signals = Signals::install()?;
            let handle = casebook_relay::start(casebook_relay::Config {
                listen,
                data,
                store,
                store_ca,
                follow: true,
                cert: cert.zip(key),
                admin,
                limits: limits.limits(),
                cache: Capacity {
                    accounts: cache_accounts,
                    docs: cache_documents,
                },
            })
            .await
            .context("starting the relay")?;
            println!("listening on {}", handle.addr);
            println!(
                "fingerprint {}",
                casebook_relay::format_fingerprint(&handle.fingerprint)
            );
            if let Some(a) = handle.admin {
                println!("admin http://{a}/metrics");
            }
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            let watchdog = sd_notify::watchdog_enabled().map(|every| tokio::spawn(watchdog(every)));
            signals.stop_requested().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            if let Some(w) = watchdog {
                w.abort();
            }
            tracing::info!("stopping: finishing open requests");
            handle.shutdown().await;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// Tells systemd the relay is alive at half its watchdog interval. The
/// ping comes from the runtime that serves connections, so a relay whose
/// runtime is stuck misses it and is restarted.
async fn watchdog(every: Duration) {
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tick.tick().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

/// `HOST:PORT` to one address to bind: an IPv4 one where the name has
/// both, as clients are most often given `127.0.0.1`.
async fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .with_context(|| {
            format!(
                "--listen {listen:?}: give HOST:PORT, for example 127.0.0.1:4433 or localhost:4433"
            )
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .with_context(|| format!("--listen {listen:?}: the name has no address"))
}

/// Ctrl-C and SIGTERM, listened for from before the relay says it is
/// listening (a signal that came between would end it without a clean
/// stop). SIGHUP, which would otherwise end the process too, is logged and
/// ignored: the relay writes its log to stderr (the journal under
/// systemd) and has no files to reopen.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
                hup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
                int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for a request to stop.
    async fn stop_requested(&mut self) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.int.recv() => return,
                _ = self.term.recv() => return,
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: nothing to reopen (the log goes to stderr); still running");
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
