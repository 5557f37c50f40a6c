//! Edit to visible: a laptop edits a note and syncs, a tablet watching
//! sees it; when each stage ends, and a bare round trip beside it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};

use super::{PASS, pct, sync};

/// Where an edit's time goes, each stage's end measured from the start of
/// the edit, at p50 over the run.
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) n: usize,
    /// Ends of: local save, upload acknowledged (relay's durable commit),
    /// the watcher told, fetched, applied and saved (visible).
    pub(crate) stages: [f64; 5],
    /// A request and its answer on the same connection, p50.
    pub(crate) round_trip: f64,
}

impl Latency {
    /// The table's rows: the latency, and where it goes.
    pub(crate) fn rows(&self) -> [(String, String, String); 2] {
        let s = self.stages;
        [
            (
                "edit to visible, p50 / p99".into(),
                format!(
                    "{:.1} / {:.1} ms ({} edits; QUIC round trip p50 {:.2} ms)",
                    self.p50, self.p99, self.n, self.round_trip
                ),
                "≤ 3 / ≤ 15 ms".into(),
            ),
            (
                "where it goes (p50 of each stage's end, from the edit)".into(),
                format!(
                    "saved (made durable as it uploads) {:.1}, relay acknowledged {:.1}, watcher told {:.1}, fetched {:.1}, applied and saved {:.1} ms",
                    s[0], s[1], s[2], s[3], s[4]
                ),
                String::new(),
            ),
        ]
    }
}

/// 1: a laptop edits a note and syncs; a tablet watching sees it.
pub(crate) async fn latency(addr: &str, fp: [u8; 32], rounds: usize) -> Result<Latency> {
    use casebook::sync::{Progress, WatchEvent};
    let dir = tempfile::tempdir()?;
    let (mut laptop, _) = Home::init(&dir.path().join("laptop"), PASS, "Dr. Bench", addr, fp)?;
    // As the web page does: each edit is sent as soon as it is saved, and
    // made durable while its upload travels.
    laptop.set_sends_at_once(true);
    let case = laptop.create_case("Latency Case", "2026-11-20")?;
    let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
    input.fields = vec![("subjective".into(), "start".into())];
    laptop.edit_case(&case, "note", |c| {
        Ok(c.add_note(input, "n1", "Dr. Bench")?)
    })?;
    sync(&mut laptop).await?;
    let conn = laptop.connect().await?;
    let code = casebook::pairing::new_code();
    let tablet_dir = dir.path().join("tablet");
    let (a, b) = tokio::join!(
        laptop.pair_add(&conn, &code, Duration::from_secs(60)),
        casebook::pairing::join(&tablet_dir, PASS, &code, addr, fp)
    );
    a?;
    let mut tablet = b?;
    sync(&mut tablet).await?;

    // The watcher reports when it is told, when it has fetched, and when
    // what it fetched is applied and saved.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u8, Instant)>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let relay = tablet.connect().await?;
        tablet
            .watch(
                &relay,
                async {
                    let _ = stop_rx.await;
                },
                &mut |e| {
                    let stage = match e {
                        WatchEvent::Notified => 2,
                        WatchEvent::Progress(Progress::Fetched { .. }) => 3,
                        WatchEvent::Progress(Progress::Visible { .. }) => 4,
                        _ => return,
                    };
                    let _ = tx.send((stage, Instant::now()));
                },
            )
            .await?;
        relay.close().await;
        anyhow::Ok(tablet)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    let mut samples = Vec::with_capacity(rounds);
    let mut stages: [Vec<Duration>; 5] = Default::default();
    let mut text = String::from("start");
    for i in 0..rounds {
        text.push_str(&format!(" {i}"));
        let t0 = Instant::now();
        let t = text.clone();
        laptop.edit_case(&case, "edit", |c| {
            Ok(c.edit_note("n1", &[("subjective".into(), t)])?)
        })?;
        let saved = Instant::now();
        let mut acked = None;
        laptop
            .sync(&conn, &mut |p| {
                if let Progress::Pushed { done, total } = p
                    && done == total
                    && acked.is_none()
                {
                    acked = Some(Instant::now());
                }
            })
            .await?;
        let mut at: [Option<Instant>; 5] = [Some(saved), acked, None, None, None];
        while at[4].is_none() {
            let (stage, when) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("the tablet did not see an edit within 10 s")?
                .context("watcher ended")?;
            // The first of each after this edit; later rounds (the audit's
            // echo) come after visible and are drained below.
            let slot = &mut at[stage as usize];
            if slot.is_none() {
                *slot = Some(when);
            }
        }
        let visible = at[4].expect("set above");
        samples.push(visible.duration_since(t0));
        for (k, when) in at.iter().enumerate() {
            stages[k].push(when.unwrap_or(visible).duration_since(t0));
        }
        // Let the rounds this edit set off finish before the next one.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while rx.try_recv().is_ok() {}
    }
    let mut trips = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        conn.request(&casebook_shared::frames::Request::Challenge)
            .await?;
        trips.push(t.elapsed());
    }
    trips.sort();
    let _ = stop_tx.send(());
    let tablet = watcher.await??;
    let got = tablet.docs().read_case(&case, |c| {
        c.note("n1").map(|n| n.field("subjective").to_string())
    })?;
    if got.as_deref() != Some(text.as_str()) {
        bail!("the tablet ended with {got:?}");
    }
    conn.close().await;
    samples.sort();
    let mut ends = [0.0; 5];
    for (k, s) in stages.iter_mut().enumerate() {
        s.sort();
        ends[k] = pct(s, 0.5);
    }
    Ok(Latency {
        p50: pct(&samples, 0.5),
        p99: pct(&samples, 0.99),
        n: samples.len(),
        stages: ends,
        round_trip: pct(&trips, 0.5),
    })
}
