//! The casebook benchmark: a relay in its own process on loopback, clients
//! in this one, and a table of what was measured.
//!
//! `cargo build --release -p casebook -p casebook-tests && ./target/release/bench [--cases N --quick --export-only --backup-only --latency-only --postgres --postgres-only --watchers-only [N] --scale-only --ui-only]`
//!
//! 1. edit-to-visible latency: one device edits and syncs, the other runs
//!    `watch` and sees the change;
//! 2. relay ingest: 50 devices upload 1 KiB envelopes concurrently; the
//!    relay process's CPU time per envelope; and the raw group-committed
//!    SQLite insert rate of the same blobs on the same disk;
//! 3. a fresh device's first sync of N cases of 20 notes (default 1,000), in
//!    its own process so its peak memory is its own;
//! 4. bytes the relay stores over the plaintext bytes of those notes;
//! 5. exporting a case of 100 notes to PDF and to FHIR;
//! 6. backing up and restoring a home of N cases;
//! 7. the web page (`casebook ui`, run beside this binary) over the same
//!    home: the case list, a search, opening a case, a keystroke's save;
//! 8. with `--postgres` (or `--postgres-only`): the ingest on a relay over
//!    PostgreSQL, on one node and on two, beside PostgreSQL's own rate for
//!    the same rows (a server this benchmark starts itself).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};

mod backup;
mod export;
mod ingest;
mod latency;
mod postgres;
mod scale;
mod sharing;
mod ui;
mod watchers;

use ingest::{ingest, raw_sqlite};
use latency::latency;
use sharing::sharing_rows;

const PASS_TEXT: &str = "benchmark passphrase";
const PASS: &[u8] = PASS_TEXT.as_bytes();

/// The relay, in a child process of this binary.
struct RelayProc {
    child: Child,
    addr: String,
    fp: [u8; 32],
}

impl RelayProc {
    fn start(data: &Path) -> Result<RelayProc> {
        Self::start_on(data, None, None)
    }

    /// A relay over the PostgreSQL database `store` (or SQLite in `data`),
    /// with the certificate in `cert_from`'s data folder if given (another
    /// node of the same relay).
    fn start_on(data: &Path, store: Option<&str>, cert_from: Option<&Path>) -> Result<RelayProc> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("__relay").arg(data);
        if let Some(url) = store {
            cmd.arg(url);
            if let Some(dir) = cert_from {
                cmd.arg(dir);
            }
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("relay stdout")?).read_line(&mut line)?;
        let (addr, fp) = line.trim().split_once(' ').context("relay did not start")?;
        Ok(RelayProc {
            child,
            addr: addr.to_string(),
            fp: hex::decode(fp)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("fingerprint"))?,
        })
    }

    /// User + system CPU seconds the relay process has used.
    fn cpu(&self) -> Result<f64> {
        cpu_seconds(self.child.id())
    }

    fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn relay_child(data: &str, store: Option<&String>, cert_from: Option<&String>) -> Result<()> {
    // The relay's warnings and errors reach the benchmark's stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // The benchmark uploads far faster than a person; no rate limit.
        let mut config = casebook_relay::Config::new("127.0.0.1:0".parse()?, data);
        config.limits.uploads_per_second = u32::MAX;
        // Room for the many-devices run's watchers.
        config.limits.connections = 20_000;
        config.store = store.cloned();
        config.cert = cert_from.map(|d| {
            let d = Path::new(d);
            (d.join("relay-cert.der"), d.join("relay-key.der"))
        });
        let h = casebook_relay::start(config).await?;
        println!("{} {}", h.addr, hex::encode(h.fingerprint));
        std::io::stdout().flush()?;
        // Runs until the parent closes stdin.
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await?;
        h.shutdown().await;
        Ok(())
    })
}

/// Deterministic clinical-sounding text.
struct Words(u64);

impl Words {
    const LIST: [&'static str; 24] = [
        "client",
        "reports",
        "sleep",
        "anxiety",
        "work",
        "family",
        "session",
        "discussed",
        "coping",
        "strategies",
        "mood",
        "improved",
        "stress",
        "week",
        "goals",
        "reviewed",
        "homework",
        "breathing",
        "exercise",
        "partner",
        "conflict",
        "agreed",
        "plan",
        "progress",
    ];

    fn text(&mut self, chars: usize) -> String {
        let mut s = String::with_capacity(chars + 16);
        while s.len() < chars {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(Self::LIST[(self.0 % 24) as usize]);
        }
        s.push('.');
        s
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn sync(home: &mut Home) -> Result<casebook::sync::SyncReport> {
    let relay = home.connect().await?;
    let r = home.sync(&relay, &mut |_| {}).await?;
    relay.close().await;
    Ok(r)
}

/// 3 and 4: a writer with `cases` cases of 20 notes; returns its recovery
/// words and the plaintext bytes of the notes.
async fn big_account(
    dir: &Path,
    addr: &str,
    fp: [u8; 32],
    cases: usize,
) -> Result<(String, usize, f64)> {
    let (mut w, words) = Home::init(&dir.join("writer"), PASS, "Dr. Bench", addr, fp)?;
    let mut words_gen = Words(0x9E37_79B9_7F4A_7C15);
    let mut plain = 0usize;
    let fields = [
        "subjective",
        "objective",
        "assessment",
        "plan",
        "interventions",
        "client_response",
        "goals",
        "homework",
    ];
    let t0 = Instant::now();
    for i in 0..cases {
        let case = w.create_case(&format!("Client {i:04}"), "2026-01-05")?;
        let mut notes = Vec::new();
        for n in 0..20 {
            let mut input = NoteInput::new(
                format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
                NoteFormat::Soap,
            );
            for f in fields {
                let t = words_gen.text(200);
                plain += t.len();
                input.fields.push((f.to_string(), t));
            }
            notes.push((format!("n{n:02}"), input));
        }
        w.edit_case(&case, "notes", |c| {
            for (id, input) in notes {
                c.add_note(input, &id, "Dr. Bench")?;
            }
            Ok(())
        })?;
        if (i + 1) % 100 == 0 {
            eprint!("\r   writer: {} cases", i + 1);
        }
    }
    let r = sync(&mut w).await?;
    eprintln!(
        "\r   writer: {cases} cases written and synced in {:.1} s ({} sent, {} snapshots)",
        t0.elapsed().as_secs_f64(),
        r.pushed,
        r.snapshots_out
    );
    Ok((words.to_string(), plain, t0.elapsed().as_secs_f64()))
}

/// The first sync, in its own process: prints seconds to usable and peak MB.
fn first_sync_child(addr: &str, fp: &str, words: &str, dir: &str) -> Result<()> {
    let fp: [u8; 32] = hex::decode(fp)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("fp"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let t0 = Instant::now();
        let mut home =
            casebook::devices::recover(Path::new(dir), PASS, words, "Dr. Bench", addr, fp).await?;
        let joined = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let report = sync(&mut home).await?;
        let cases = home.docs().cases()?;
        let Some((id, _)) = cases.get(cases.len() / 2) else {
            bail!("no cases arrived");
        };
        let notes = home.docs().read_case(id, |c| c.notes().len())?;
        let usable = t1.elapsed().as_secs_f64();
        println!(
            "{joined:.3} {usable:.3} {} {notes} {} {:.1}",
            cases.len(),
            report.snapshots_in,
            peak_rss_mb()
        );
        Ok(())
    })
}

fn relay_bytes(data: &Path) -> Result<(u64, u64)> {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let q = |sql: &str| -> Result<u64> {
        Ok(conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0) as u64)
    };
    let blobs = q("SELECT SUM(length(bytes)) FROM envelopes")?
        + q("SELECT SUM(length(bytes)) FROM snapshots")?
        + q("SELECT SUM(length(entry)) FROM access_entries")?
        + q("SELECT SUM(length(entry)) FROM account_entries")?;
    let pages = q("PRAGMA page_count")?;
    let free = q("PRAGMA freelist_count")?;
    let idx = q("SELECT COUNT(*) FROM envelopes")?;
    eprintln!("   relay.db: {pages} pages, {free} free; {idx} envelope rows");
    for e in std::fs::read_dir(data)?.flatten() {
        eprintln!(
            "   {}: {} bytes",
            e.file_name().to_string_lossy(),
            e.metadata()?.len()
        );
    }
    let files: u64 = std::fs::read_dir(data)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("relay.db"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    Ok((blobs, files))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("__relay") => return relay_child(&args[2], args.get(3), args.get(4)),
        Some("__first-sync") => return first_sync_child(&args[2], &args[3], &args[4], &args[5]),
        _ => {}
    }
    let quick = args.iter().any(|a| a == "--quick");
    let cases: usize = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 50 } else { 1000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tmp = tempfile::tempdir()?;
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // `--scale-only`: start-up and memory over 100 and 100,000 documents.
    if args.iter().any(|a| a == "--scale-only") {
        eprintln!("== relay start-up over 100 documents, then 100,000");
        let small = scale::scale(&rt, &tmp.path().join("relay-small"), 10, 10)?;
        let large = scale::scale(&rt, &tmp.path().join("relay-large"), 10_000, 10)?;
        rows.extend(scale::rows(&small, &large));
        return print_table(rows);
    }

    // `--watchers-only [N]`: N devices (10,000 unless given) watching one node.
    if let Some(i) = args.iter().position(|a| a == "--watchers-only") {
        let n = args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(10_000);
        rows.extend(watcher_rows(
            &rt,
            tmp.path(),
            n,
            if quick { 50 } else { 300 },
        )?);
        return print_table(rows);
    }

    // `--ui-only`: the web page over a home of N cases.
    if args.iter().any(|a| a == "--ui-only") {
        eprintln!("== the page over {cases} cases");
        let relay = RelayProc::start(&tmp.path().join("relay-ui"))?;
        rt.block_on(big_account(tmp.path(), &relay.addr, relay.fp, cases))?;
        rows.extend(ui::ui_rows(&tmp.path().join("writer"), PASS_TEXT, cases)?);
        relay.stop()?;
        return print_table(rows);
    }

    if args.iter().any(|a| a == "--postgres-only") {
        rows.extend(postgres::ingest_rows(
            &rt,
            tmp.path(),
            if quick { 100 } else { 400 },
        )?);
        return print_table(rows);
    }

    // `--latency-only`: edit to visible alone, for working on it;
    // `--ingest-only`: the relay's ingest alone (with `--postgres`, on
    // both backends).
    let latency_only = args.iter().any(|a| a == "--latency-only");
    let ingest_only = args.iter().any(|a| a == "--ingest-only");
    if !latency_only && !ingest_only {
        eprintln!("== export");
        let (pdf, fhir, read, size) = export::export(tmp.path(), 100)?;
        rows.push((
            "export a case of 100 SOAP notes (1.9 kB of text each), median of 5".into(),
            format!(
                "PDF {:.0} ms ({:.0} kB), FHIR {:.0} ms; reading the case in full {:.0} ms (PDF {:.1}× that)",
                pdf * 1e3,
                size as f64 / 1e3,
                fhir * 1e3,
                read * 1e3,
                pdf / read
            ),
            "PDF ≤ 1 s".into(),
        ));

        if args.iter().any(|a| a == "--export-only") {
            return print_table(rows);
        }

        eprintln!("== backup of {cases} cases");
        let b = backup::backup_restore(&tmp.path().join("backup"), cases)?;
        rows.push((
            format!("backup, then restore, of a home of {cases} cases × 20 notes ({:.1} MB store)", b.store_mb),
            format!(
                "backup {:.2} s ({:.1} MB file), restore {:.2} s, each with one Argon2id; copying the store file {:.2} s",
                b.backup_s, b.file_mb, b.restore_s, b.copy_s
            ),
            "≤ 5 s each".into(),
        ));
        if args.iter().any(|a| a == "--backup-only") {
            return print_table(rows);
        }
    }

    if !ingest_only {
        eprintln!("== latency");
        let data = tmp.path().join("relay-latency");
        let relay = RelayProc::start(&data)?;
        let l = rt.block_on(latency(&relay.addr, relay.fp, if quick { 50 } else { 300 }))?;
        relay.stop()?;
        rows.extend(l.rows());
        if latency_only {
            return print_table(rows);
        }
        rows.extend(sharing_rows(&rt, tmp.path(), quick)?);
    }

    eprintln!("== ingest");
    let data = tmp.path().join("relay-ingest");
    let relay = RelayProc::start(&data)?;
    // 60,000 envelopes: about two seconds, long enough that the relay's
    // CPU time (counted in 10 ms ticks) and the machine's noise average out.
    let per = if quick { 100 } else { 1200 };
    let (rate, cpu_us, size, blobs) = rt.block_on(ingest(&[&relay], 50, per, 32))?;
    relay.stop()?;
    rows.push((
        format!("ingest, 50 devices, {size}-byte envelopes"),
        format!("{rate:.0} /s, relay CPU {cpu_us:.0} µs each"),
        "≥ 5,000 /s".into(),
    ));
    let raw = raw_sqlite(tmp.path(), &blobs, 1024)?;
    rows.push((
        "raw SQLite group commit, same blobs, 1,024 per tx".into(),
        format!("{raw:.0} /s"),
        "the limit".into(),
    ));
    let (one, batch) = ingest::signature_check();
    rows.push((
        "Ed25519 check per signature, 32 of one device over 1 KiB: one by one (strict) / one batch"
            .into(),
        format!("{one:.1} / {batch:.1} µs"),
        String::new(),
    ));
    if args.iter().any(|a| a == "--postgres") {
        rows.extend(postgres::ingest_rows(&rt, tmp.path(), per)?);
    }
    if ingest_only {
        return print_table(rows);
    }

    eprintln!("== first sync of {cases} cases");
    let data = tmp.path().join("relay-big");
    let relay = RelayProc::start(&data)?;
    let (words, plain, _) = rt.block_on(big_account(tmp.path(), &relay.addr, relay.fp, cases))?;
    let out = Command::new(std::env::current_exe()?)
        .args(["__first-sync", &relay.addr, &hex::encode(relay.fp), &words])
        .arg(tmp.path().join("fresh"))
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("first sync failed");
    }
    let line = String::from_utf8(out.stdout)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    rows.push((
        format!(
            "first sync of {} cases × {} notes (recovery {} s before it)",
            f[2], f[3], f[0]
        ),
        format!("{} s to listed + one open, {} from snapshots", f[1], f[4]),
        "≤ 10 s".into(),
    ));
    rows.push((
        "first sync, client peak memory".into(),
        format!("{} MB", f[5]),
        "≤ 300 MB".into(),
    ));
    eprintln!("== the page over {cases} cases");
    rows.extend(ui::ui_rows(&tmp.path().join("writer"), PASS_TEXT, cases)?);
    relay.stop()?;
    let (blobs, files) = relay_bytes(&data)?;
    rows.push((
        format!(
            "relay bytes / note plaintext ({:.1} MB)",
            plain as f64 / 1e6
        ),
        format!(
            "{:.2} (stored blobs); {:.2} (database files)",
            blobs as f64 / plain as f64,
            files as f64 / plain as f64
        ),
        "≤ 1.25".into(),
    ));

    print_table(rows)
}

/// Many devices watching one relay node.
fn watcher_rows(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    devices: usize,
    edits: usize,
) -> Result<Vec<(String, String, String)>> {
    eprintln!("== {devices} devices watching one node");
    let relay = RelayProc::start(&dir.join("relay-watchers"))?;
    let w = rt.block_on(watchers::watchers(&relay, devices, edits))?;
    relay.stop()?;
    Ok(w.rows())
}

fn print_table(rows: Vec<(String, String, String)>) -> Result<()> {
    println!("| measure | result | target |");
    println!("|---|---|---|");
    for (a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
    Ok(())
}
