//! `casebook demo`: the main job end to end, on loopback, in a temporary
//! folder: a relay, a laptop and a tablet paired with a code, edits to the
//! same note on both while offline, sync, the merged note from each device,
//! and a scan of every file the relay and the devices wrote for the words of
//! the note and the client's name.

use crate::cli::term::{say, tell};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use casebook::Home;
use casebook::notes::{NoteFormat, NoteInput};
use casebook_relay::{Config, format_fingerprint};

use super::print::Out;

const PASS: &[u8] = b"demo passphrase, not a real one";
const CLIENT: &str = "Jordan Avery";
const SECRET: &str = "sleep diary";

fn step(s: &str) {
    tell!("\n== {s}");
}

async fn sync(home: &mut Home, who: &str) -> Result<()> {
    let relay = home.connect().await?;
    let r = home.sync(&relay, &mut |_| {}).await?;
    relay.close().await;
    tell!("   {who}: sent {}, received {}", r.pushed, r.received);
    if !r.refused.is_empty() {
        bail!("{who} refused envelopes: {:?}", r.refused);
    }
    Ok(())
}

fn files_with(dir: &Path, needle: &[u8]) -> (usize, u64, Vec<String>) {
    let (mut files, mut bytes, mut hits) = (0, 0u64, Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                files += 1;
                bytes += b.len() as u64;
                if b.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    (files, bytes, hits)
}

fn show(
    home: &mut Home,
    case: &casebook_shared::ids::DocId,
    who: &str,
) -> Result<Vec<(String, String)>> {
    let note = home
        .docs()
        .read_case(case, |c| c.notes().into_iter().next())?
        .context("the note is missing")?;
    say!("--- the note as the {who} shows it ---");
    for (k, v) in &note.fields {
        if !v.is_empty() {
            say!("{k}: {v}");
        }
    }
    Ok(note.fields)
}

/// Runs the demo.
pub async fn run(_out: &Out) -> Result<()> {
    let root = tempfile::tempdir().context("cannot make a temporary folder")?;
    let data = root.path().join("relay");
    step("starting a relay on loopback, its SQLite store in a temporary folder");
    let relay = casebook_relay::start(Config::new(
        "127.0.0.1:0".parse().expect("a literal address"),
        data.clone(),
    ))
    .await?;
    let addr = relay.addr.to_string();
    tell!(
        "   relay at {addr}, fingerprint {}",
        format_fingerprint(&relay.fingerprint)
    );

    step("setting up the laptop (account, device keys, recovery words)");
    let (mut laptop, _words) = Home::init(
        &root.path().join("laptop"),
        PASS,
        "Dr. Rivera",
        &addr,
        relay.fingerprint,
    )?;
    let case = laptop.create_case(CLIENT, "2026-11-20")?;
    let mut input = NoteInput::new("2026-11-20", NoteFormat::Soap);
    input.fields = vec![
        (
            "subjective".into(),
            "Jordan reports sleeping badly since the move.".into(),
        ),
        (
            "assessment".into(),
            "Adjustment difficulties; no risk indicators today.".into(),
        ),
        ("plan".into(), format!("Keep a {SECRET}.")),
    ];
    laptop.edit_case(&case, "note added", |c| {
        Ok(c.add_note(input, "n1", "Dr. Rivera")?)
    })?;
    tell!("   case {} opened with one SOAP note", case.short());
    sync(&mut laptop, "laptop").await?;

    step("pairing the tablet with a short code (SPAKE2 through the relay)");
    let conn = laptop.connect().await?;
    let code = casebook::pairing::new_code();
    tell!("   code: {code}");
    let tablet_dir = root.path().join("tablet");
    let (added, joined) = tokio::join!(
        laptop.pair_add(&conn, &code, Duration::from_secs(60)),
        casebook::pairing::join(&tablet_dir, PASS, &code, &addr, relay.fingerprint)
    );
    added?;
    conn.close().await;
    let mut tablet = joined?;
    sync(&mut tablet, "tablet").await?;

    step("both devices edit the same note while offline");
    laptop.edit_case(&case, "note edited", |c| {
        Ok(c.edit_note(
            "n1",
            &[(
                "subjective".into(),
                "Jordan reports sleeping badly since the move in October.".into(),
            )],
        )?)
    })?;
    tell!("   laptop: adds \"in October\" to the subjective field");
    tablet.edit_case(&case, "note edited", |c| {
        Ok(c.edit_note(
            "n1",
            &[
                (
                    "subjective".into(),
                    "Client: Jordan reports sleeping badly since the move.".into(),
                ),
                (
                    "plan".into(),
                    format!("Keep a {SECRET}; review it in two weeks."),
                ),
            ],
        )?)
    })?;
    tell!("   tablet: prefixes \"Client:\" to the same field and extends the plan");

    step("syncing both");
    sync(&mut laptop, "laptop").await?;
    sync(&mut tablet, "tablet").await?;
    sync(&mut laptop, "laptop").await?;
    let a = show(&mut laptop, &case, "laptop")?;
    let b = show(&mut tablet, &case, "tablet")?;
    if a != b {
        bail!("the two devices disagree after sync");
    }
    say!("both devices show the same note, with every edit.");

    step("sharing the case with a colleague (Dr. Chen, another account), role comment");
    let chen_dir = root.path().join("chen");
    let (mut chen, _) = Home::init(&chen_dir, PASS, "Dr. Chen", &addr, relay.fingerprint)?;
    sync(&mut chen, "Dr. Chen").await?;
    let (_, _, safety, card) = chen.whoami();
    laptop.contacts().add("Dr. Chen", &card)?;
    laptop.contacts().verify("Dr. Chen", &safety)?;
    tell!("   safety numbers compared: {safety}");
    let conn = laptop.connect().await?;
    laptop
        .share(
            &conn,
            &case,
            "Dr. Chen",
            casebook::sharing::parse_role("comment")?,
            "consultation",
            "signed release 2026-11-18",
            None,
            false,
        )
        .await?;
    laptop.sync(&conn, &mut |_| {}).await?;
    conn.close().await;
    sync(&mut chen, "Dr. Chen").await?;
    let seen = chen.docs().read_case(&case, |c| c.notes().len())?;
    tell!("   Dr. Chen sees the case ({seen} note), not its psychotherapy notes");
    chen.comment_note(&case, "n1", "Consider a sleep-hygiene handout.")?;
    sync(&mut chen, "Dr. Chen").await?;
    sync(&mut laptop, "laptop").await?;
    let comments = laptop
        .docs()
        .read_case(&case, |c| c.note("n1").map(|n| n.comments))?;
    say!(
        "the laptop shows Dr. Chen's comment: {:?}",
        comments
            .and_then(|c| c.first().map(|r| r.text.clone()))
            .unwrap_or_default()
    );
    laptop.unshare(&case, "Dr. Chen")?;
    laptop.edit_case(&case, "note edited", |c| {
        Ok(c.edit_note(
            "n1",
            &[("assessment".into(), "Written after the share ended.".into())],
        )?)
    })?;
    sync(&mut laptop, "laptop").await?;
    sync(&mut chen, "Dr. Chen").await?;
    let after = chen.docs().read_case(&case, |c| {
        c.note("n1").map(|n| n.field("assessment").to_string())
    })?;
    if after.as_deref() == Some("Written after the share ended.") {
        bail!("the colleague still received changes after the share ended");
    }
    say!(
        "after unshare, Dr. Chen's copy stays as it was: {:?}",
        after.unwrap_or_default()
    );

    step("looking for the note's words and the client's name in every file");
    relay.shutdown().await;
    drop(laptop);
    drop(tablet);
    drop(chen);
    let mut leaked = false;
    for (what, dir) in [
        ("relay data", data.as_path()),
        ("laptop home", &root.path().join("laptop")),
        ("tablet home", &tablet_dir),
        ("Dr. Chen's home", &chen_dir),
    ] {
        for needle in [SECRET, CLIENT] {
            let (files, bytes, hits) = files_with(dir, needle.as_bytes());
            say!(
                "{what}: {files} files, {bytes} bytes; {:?} found in {} of them",
                needle,
                hits.len()
            );
            leaked |= !hits.is_empty();
        }
    }
    if leaked {
        bail!("plaintext was found on disk");
    }
    say!("no file holds the note's words or the client's name.");
    Ok(())
}
