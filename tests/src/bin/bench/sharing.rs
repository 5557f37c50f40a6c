//! Sharing: `share` to the colleague's `case show` working, and revoking a
//! case shared with 20 members.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};

use super::{PASS, RelayProc, Words, pct, sync};

/// Makes `n` practitioner accounts, registered on the relay and verified
/// as contacts of `owner`.
async fn colleagues(
    owner: &mut Home,
    dir: &Path,
    addr: &str,
    fp: [u8; 32],
    n: usize,
) -> Result<Vec<(String, Home)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("Dr. Colleague {i:02}");
        let (mut h, _) = Home::init(&dir.join(format!("colleague-{i}")), PASS, &name, addr, fp)?;
        sync(&mut h).await?;
        let (_, _, safety, card) = h.whoami();
        owner.contacts().add(&name, &card)?;
        owner.contacts().verify(&name, &safety)?;
        out.push((name, h));
    }
    Ok(out)
}

/// 5: `share` on the owner's device to the colleague's `case show` working,
/// the colleague watching; 6: revoking a case shared with 20 members.
async fn sharing(addr: &str, fp: [u8; 32], rounds: usize) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir()?;
    let (mut owner, _) = Home::init(&dir.path().join("owner"), PASS, "Dr. Owner", addr, fp)?;
    let mut team = colleagues(&mut owner, dir.path(), addr, fp, 20).await?;
    let mut cases = Vec::new();
    for i in 0..rounds {
        let case = owner.create_case(&format!("Shared {i}"), "2026-11-20")?;
        let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
        input.fields = vec![("subjective".into(), Words(i as u64 + 7).text(400))];
        owner.edit_case(&case, "note", |c| {
            Ok(c.add_note(input, "n1", "Dr. Owner")?)
        })?;
        cases.push(case);
    }
    sync(&mut owner).await?;
    let conn = owner.connect().await?;

    let (name, mut chen) = team.remove(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let relay = chen.connect().await?;
        chen.watch(
            &relay,
            async {
                let _ = stop_rx.await;
            },
            &mut |e| {
                if let casebook::sync::WatchEvent::Synced(r) = e
                    && r.docs_updated > 0
                {
                    let _ = tx.send(Instant::now());
                }
            },
        )
        .await?;
        relay.close().await;
        anyhow::Ok(chen)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    let read = casebook::sharing::parse_role("read")?;
    let mut samples = Vec::new();
    for case in &cases {
        let t0 = Instant::now();
        owner
            .share(
                &conn,
                case,
                &name,
                read,
                "consultation",
                "signed release",
                None,
                false,
            )
            .await?;
        owner.sync(&conn, &mut |_| {}).await?;
        let seen = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("the colleague did not see a share within 10 s")?
            .context("watcher ended")?;
        samples.push(seen.duration_since(t0));
    }
    let _ = stop_tx.send(());
    let chen = watcher.await??;
    for case in &cases {
        chen.docs()
            .read_case(case, |c| c.note("n1").context("the shared note"))??;
    }
    samples.sort();
    let (p50, p99) = (pct(&samples, 0.5), pct(&samples, 0.99));

    // One case shared with 20 members, one of them revoked.
    let case = cases[0];
    for (n, _) in &team {
        owner
            .share(
                &conn,
                &case,
                n,
                read,
                "case conference",
                "clinic policy",
                None,
                false,
            )
            .await?;
    }
    owner.sync(&conn, &mut |_| {}).await?;
    let t0 = Instant::now();
    owner.unshare(&case, &team[0].0)?;
    owner.sync(&conn, &mut |_| {}).await?;
    let revoke = t0.elapsed().as_secs_f64() * 1000.0;
    if owner.shares(&case)?.len() != 19 {
        bail!("the revocation did not leave 19 members");
    }
    conn.close().await;
    Ok((p50, p99, revoke))
}

/// The sharing rows: share to visible, and revoking a case of 20 members.
pub(crate) fn sharing_rows(
    rt: &tokio::runtime::Runtime,
    tmp: &Path,
    quick: bool,
) -> Result<Vec<(String, String, String)>> {
    eprintln!("== sharing");
    let relay = RelayProc::start(&tmp.join("relay-sharing"))?;
    let (sp50, sp99, revoke) =
        rt.block_on(sharing(&relay.addr, relay.fp, if quick { 10 } else { 40 }))?;
    relay.stop()?;
    Ok(vec![
        (
            "share to the colleague's case show, p50 / p99".into(),
            format!("{sp50:.1} / {sp99:.1} ms"),
            "p50 ≤ 200 ms".into(),
        ),
        (
            "revoke a case shared with 20 members (one rotation, 19 key envelopes)".into(),
            format!("{revoke:.1} ms"),
            "≤ 100 ms".into(),
        ),
    ])
}
