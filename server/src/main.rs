//! `casebook-relay`: run a relay, or print its certificate fingerprint.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The casebook relay: stores end-to-end encrypted changes it cannot read.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the relay until Ctrl-C or SIGTERM.
    Serve {
        /// Address (or host name) and UDP port to listen on.
        #[arg(long, default_value = "127.0.0.1:4433")]
        listen: String,
        /// Folder for the database and the certificate.
        #[arg(long)]
        data: PathBuf,
        /// A DER certificate to use instead of the self-signed one (with --key).
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// The PKCS#8 DER private key of --cert.
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
    },
    /// Prints the fingerprint clients pin (making the certificate if needed).
    Fingerprint {
        #[arg(long)]
        data: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "casebook_relay=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
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
        Command::Serve {
            listen,
            data,
            cert,
            key,
        } => {
            let listen = resolve(&listen).await?;
            let handle = casebook_relay::start(casebook_relay::Config {
                listen,
                data,
                cert: cert.zip(key),
            })
            .await
            .context("starting the relay")?;
            println!("listening on {}", handle.addr);
            println!(
                "fingerprint {}",
                casebook_relay::format_fingerprint(&handle.fingerprint)
            );
            shutdown_signal().await;
            eprintln!("stopping: finishing open requests");
            handle.shutdown().await;
            eprintln!("stopped");
        }
    }
    Ok(())
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler works on unix");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
