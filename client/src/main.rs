//! `casebook`: session notes on this device, synced end-to-end encrypted
//! through a relay. Data goes to stdout (or JSON with `--json`), messages
//! and progress to stderr; any failure exits non-zero with what to do.

mod cli;
mod record_cmds;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use record_cmds::{CaseCmd, NoteCmd, NoteFields, PrivateCmd};

/// End-to-end encrypted session notes, synced between your devices.
#[derive(Parser, Debug)]
#[command(name = "casebook", version, about, long_about = None)]
pub struct Cli {
    /// This device's folder (default: $CASEBOOK_HOME, else ~/.casebook).
    #[arg(long, global = true, env = "CASEBOOK_HOME")]
    home: Option<PathBuf>,
    /// Print data as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Read the passphrase from the first line of this file (else
    /// $CASEBOOK_PASSPHRASE, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Set up this device as the first of a new account.
    Init {
        /// Your name as it appears on notes you write and sign.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        relay: RelayArgs,
        /// Set up without reaching the relay (the account is registered at
        /// the first sync). Otherwise the relay is checked first, and a
        /// wrong address or fingerprint leaves nothing behind.
        #[arg(long)]
        offline: bool,
    },
    /// Open casebook in your browser: a page served by this machine to
    /// this machine only, locked until you give the passphrase.
    Ui(ui::UiArgs),
    /// Case files.
    #[command(subcommand)]
    Case(CaseCmd),
    /// Session notes.
    #[command(subcommand)]
    Note(NoteCmd),
    /// Psychotherapy notes, kept in each case's separate private document.
    #[command(subcommand)]
    Private(PrivateCmd),
    /// Find notes by their words.
    Search {
        /// Words to find, in any order.
        text: String,
        /// Include psychotherapy (private) notes.
        #[arg(long)]
        private: bool,
        /// Show at most this many hits, the best first (each shown hit's
        /// case is recorded in the audit trail).
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Show every hit.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// This account's devices: pair, list, revoke.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Send local changes and fetch other devices' changes.
    Sync {
        /// Stay connected and apply changes as they land.
        #[arg(long)]
        watch: bool,
    },
    /// Restore the account on a fresh device from the recovery words.
    Recover {
        #[command(flatten)]
        relay: RelayArgs,
        /// Read the recovery words from this file (else
        /// $CASEBOOK_RECOVERY_WORDS, else a prompt).
        #[arg(long, value_name = "FILE")]
        words_file: Option<PathBuf>,
        /// Your name as it appears on notes you write on this device
        /// (asked for when not given).
        #[arg(long)]
        name: Option<String>,
    },
    /// What this device did, newest first (kept encrypted like everything else).
    Audit {
        /// `verify`: check the hash chain for deleted, changed or reordered entries.
        #[command(subcommand)]
        action: Option<AuditCmd>,
        /// Only entries about this case.
        #[arg(long)]
        case: Option<String>,
        /// Only entries on or after this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only entries on or before this date (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// How many entries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Backs this device up to one sealed file, checks a backup, or
    /// restores one into a new home.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Cases due for disposal under their retention period (--all: every
    /// case with its due date); --set-default sets the account's period.
    Retention {
        /// Every case this account owns, not only those due.
        #[arg(long)]
        all: bool,
        /// Set the account's retention period, in years after the last
        /// session (7 until set).
        #[arg(long, value_name = "YEARS")]
        set_default: Option<u32>,
    },
    /// Writes a case out for a records request or a disclosure: a PDF to
    /// read, a FHIR R4 document to import elsewhere, or both. Psychotherapy
    /// notes are left out unless asked for; every export is audited.
    Export(ExportArgs),
    /// The accounting of disclosures: every share granted and every export
    /// made to someone, newest first.
    Disclosures {
        /// Only disclosures on or after this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only disclosures on or before this date (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Only this case.
        #[arg(long)]
        case: Option<String>,
    },
    /// This device at a glance: unsent and held edits, the last sync, the
    /// relay, shares that end within a week.
    Status,
    /// Edits held back because this account may no longer write their case
    /// (`status` lists them): save them to a file, or discard them.
    #[command(subcommand)]
    Held(HeldCmd),
    /// The passphrase that unlocks this device.
    #[command(subcommand)]
    Passphrase(PassphraseCmd),
    /// Prints a shell completion script: `casebook completions bash > ...`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff): `casebook man | man -l -`.
    Man,
    /// This account's name, safety number and card (for a colleague's `contact add`).
    Whoami {
        /// Set the name this device writes and signs notes under.
        #[arg(long, value_name = "NAME")]
        set_name: Option<String>,
    },
    /// The relay this home talks to.
    #[command(subcommand)]
    Relay(RelayCmd),
    /// Colleagues to share with.
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Share a case with a verified contact.
    Share {
        case: String,
        /// The contact's name.
        #[arg(long = "with")]
        with: String,
        /// read, comment or write.
        #[arg(long)]
        role: String,
        /// Why it is shared, e.g. "consultation".
        #[arg(long)]
        purpose: String,
        /// The consent it rests on, e.g. "signed release 2026-11-18".
        #[arg(long)]
        consent: String,
        /// When the share ends: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).
        #[arg(long)]
        expires: Option<String>,
        /// Also share the case's psychotherapy (private) notes.
        #[arg(long)]
        include_private: bool,
    },
    /// Take a share back: the colleague gets nothing written after this.
    Unshare {
        case: String,
        #[arg(long = "with")]
        with: String,
    },
    /// Cases other practitioners shared with you; with CASE, who one of yours is shared with.
    Shared {
        case: Option<String>,
        /// Shares that ended or expired too.
        #[arg(long)]
        all: bool,
    },
    /// Run the main job end to end on loopback: a relay, a laptop and a
    /// tablet, offline edits, sync, and proof the relay holds no plaintext.
    #[cfg(feature = "demo")]
    Demo,
}

/// Where the relay is.
#[derive(Args, Debug, Clone)]
pub struct RelayArgs {
    /// A name for this device, shown in `device list` on every device of
    /// the account (default: this machine's host name).
    #[arg(long)]
    device_name: Option<String>,
    /// The relay's address, HOST:PORT.
    #[arg(long)]
    relay: String,
    /// The fingerprint `casebook-relay serve` printed (sha256:...).
    #[arg(long, value_name = "sha256:HEX")]
    relay_fingerprint: String,
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Writes a backup of this device's home to a new FILE, sealed under a
    /// backup passphrase (or, with --with-recovery-words, the account's
    /// recovery words). Keep it away from the device.
    Create {
        file: PathBuf,
        #[command(flatten)]
        secret: BackupSecretArgs,
        /// Seal it under the account's recovery words instead of a backup
        /// passphrase.
        #[arg(long)]
        with_recovery_words: bool,
    },
    /// Opens and checks a backup, every byte of it, without restoring it.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        secret: BackupSecretArgs,
    },
    /// Restores a backup into --home, which must not hold a home yet; the
    /// home then opens with this device's passphrase as it was at the
    /// backup. Sync afterwards: it takes back what it had sent since.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        secret: BackupSecretArgs,
    },
}

/// Where a backup's secret comes from when not typed at a prompt.
#[derive(Args, Debug)]
pub struct BackupSecretArgs {
    /// Read the backup passphrase from this file (else
    /// CASEBOOK_BACKUP_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub backup_passphrase_file: Option<PathBuf>,
    /// Read the recovery words from this file (else
    /// CASEBOOK_RECOVERY_WORDS, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub words_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum HeldCmd {
    /// Write the case as this device holds it, held edits included, to a
    /// new Markdown file (readable by you only), then stop holding them.
    Save { case: String, file: PathBuf },
    /// Drop the held edits.
    Discard { case: String },
}

#[derive(Subcommand, Debug)]
enum PassphraseCmd {
    /// Unlocks with the current passphrase, then seals this device's home
    /// under a new one (prompted twice, or from CASEBOOK_NEW_PASSPHRASE or
    /// --new-passphrase-file).
    Change {
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum RelayCmd {
    /// Prints the relay's address and the fingerprint this home pins.
    Show,
    /// Moves this home to its relay's new address or re-issued certificate
    /// (checked first; nothing queued is lost).
    Set {
        /// The relay's address, HOST:PORT.
        addr: String,
        /// The fingerprint `casebook-relay serve` printed (sha256:...).
        #[arg(long, value_name = "sha256:HEX")]
        fingerprint: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Check the audit trail's hash chain.
    Verify,
}

#[derive(Subcommand, Debug)]
enum ContactCmd {
    /// Add a colleague from the card their `casebook whoami` printed.
    Add { name: String, card: String },
    /// Every contact.
    List,
    /// Mark a contact verified after comparing safety numbers in person or by phone.
    Verify { name: String, safety_number: String },
}

#[derive(Subcommand, Debug)]
enum DeviceCmd {
    /// Pair a new device: prints a code on the first line, then waits for
    /// `casebook device join CODE` on the new device.
    Add {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// On the new device: finish pairing with the code `device add` printed.
    Join {
        code: String,
        #[command(flatten)]
        relay: RelayArgs,
    },
    /// The account's devices: name, kind, when added, when last seen.
    List,
    /// Give a device of this account a name every device shows.
    Rename { device: String, name: String },
    /// Revoke a device: the relay refuses it, and later changes are sealed
    /// under keys it never had.
    Revoke {
        device: String,
        /// Required to revoke the recovery key: new recovery words are
        /// issued in the same step (the old ones stop working).
        #[arg(long)]
        recovery_key: bool,
    },
    /// Issue new recovery words and revoke the old ones (lost or seen by
    /// someone else). The new words are shown once.
    NewRecoveryWords,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASEBOOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,automerge=off"));
    // Colour only on a terminal, and never with NO_COLOR set (no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cli::RefusedFromRelay>() || e.is::<cli::IncompleteFromRelay>() => {
            let (code, exit, hint) = match e.is::<cli::RefusedFromRelay>() {
                true => (
                    "refused_from_relay",
                    cli::REFUSED_EXIT,
                    "the relay, or whoever can change what it stores, served data this device does not accept; tell whoever runs it",
                ),
                false => (
                    "incomplete_from_relay",
                    cli::INCOMPLETE_EXIT,
                    "the relay lost or withholds changes another device made (was it restored from an older backup?); tell whoever runs it, and keep every device: what is missing may still be on one",
                ),
            };
            match json {
                true => cli::term::json_err(
                    &serde_json::json!({ "error": {
                        "code": code, "message": e.to_string(), "causes": [], "hint": hint,
                    }})
                    .to_string(),
                ),
                false => {
                    cli::term::err(&format!("error: {e}"));
                    cli::term::err(&format!("hint: {hint}"));
                }
            }
            ExitCode::from(exit)
        }
        Err(e) if json => {
            let core = e.downcast_ref::<casebook::Error>();
            let v = serde_json::json!({ "error": {
                "code": cli::error_code(core),
                "message": e.to_string(),
                "causes": cli::causes(&e),
                "hint": core.and_then(cli::hint),
            }});
            cli::term::json_err(&v.to_string());
            ExitCode::FAILURE
        }
        Err(e) => {
            // Reasons can carry a relay's or another device's words.
            cli::term::err(&format!("error: {e}"));
            for cause in cli::causes(&e) {
                cli::term::err(&format!("  because: {cause}"));
            }
            if let Some(h) = e.downcast_ref::<casebook::Error>().and_then(cli::hint) {
                cli::term::err(&format!("hint: {h}"));
            }
            ExitCode::FAILURE
        }
    }
}

/// `casebook export CASE ...`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["pdf", "fhir"])))]
pub struct ExportArgs {
    /// Case id (or prefix) or client name.
    pub case: String,
    /// Write a PDF here (a new file).
    #[arg(long, value_name = "FILE")]
    pub pdf: Option<PathBuf>,
    /// Write a FHIR R4 document bundle (JSON) here (a new file).
    #[arg(long, value_name = "FILE")]
    pub fhir: Option<PathBuf>,
    /// Include the psychotherapy notes (left out of a records request
    /// unless you mean to include them).
    #[arg(long)]
    pub include_private: bool,
    /// Only these notes: ids or prefixes, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
    pub notes: Vec<String>,
    /// Only notes on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only notes on or before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only these parts: note sections (subjective, plan, risk, ...) and
    /// profile, addenda, comments; comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SECTION,SECTION")]
    pub sections: Vec<String>,
    /// Disclose to this person or organisation: the export goes into the
    /// accounting of disclosures (needs --purpose and --consent).
    #[arg(long, value_name = "RECIPIENT", requires_all = ["purpose", "consent"])]
    pub to: Option<String>,
    /// Why it is disclosed (with --to).
    #[arg(long, requires = "to")]
    pub purpose: Option<String>,
    /// The consent or authority it rests on (with --to).
    #[arg(long, requires = "to")]
    pub consent: Option<String>,
}
