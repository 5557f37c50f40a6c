//! 6. Backing up a home of N cases of 20 notes and restoring it, against
//!    copying the store file on the same disk in the same run.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use casebook::Home;
use casebook::backup::{self, SecretKind};
use casebook::notes::{NoteFormat, NoteInput};
use casebook::store::KdfParams;

use super::{PASS, Words};

pub struct Figures {
    pub store_mb: f64,
    pub backup_s: f64,
    pub restore_s: f64,
    pub copy_s: f64,
    pub file_mb: f64,
}

pub fn backup_restore(dir: &Path, cases: usize) -> Result<Figures> {
    let (mut home, _) = Home::init(&dir.join("home"), PASS, "Dr. Bench", "127.0.0.1:9", [0; 32])?;
    let mut words = Words(0x6A09_E667_F3BC_C908);
    for i in 0..cases {
        let case = home.create_case(&format!("Client {i:04}"), "2026-01-05")?;
        home.edit_case(&case, "notes", |c| {
            for n in 0..20 {
                let mut input = NoteInput::new(
                    format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
                    NoteFormat::Soap,
                );
                for f in ["subjective", "objective", "assessment", "plan"] {
                    input.fields.push((f.to_string(), words.text(200)));
                }
                c.add_note(input, &format!("n{n:02}"), "Dr. Bench")?;
            }
            Ok(())
        })?;
        if (i + 1) % 100 == 0 {
            eprint!("\r   home: {} cases", i + 1);
        }
    }
    eprintln!();
    let db = dir.join("home").join("casebook.db");
    let store_mb = std::fs::metadata(&db)?.len() as f64 / 1e6;
    let t0 = Instant::now();
    std::fs::copy(&db, dir.join("copy.db"))?;
    std::fs::File::open(dir.join("copy.db"))?.sync_all()?;
    let copy_s = t0.elapsed().as_secs_f64();

    let secret = b"a backup passphrase";
    let file = dir.join("home.backup");
    let t0 = Instant::now();
    {
        let f = std::fs::File::create(&file)?;
        let mut w = std::io::BufWriter::new(&f);
        home.backup(&mut w, SecretKind::Passphrase, secret, KdfParams::default())?;
        drop(w);
        f.sync_all()?;
    }
    let backup_s = t0.elapsed().as_secs_f64();
    let file_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    let t0 = Instant::now();
    let mut input = std::io::BufReader::new(std::fs::File::open(&file)?);
    backup::restore(&dir.join("restored"), &mut input, |kind| {
        backup::secret_bytes(kind, "a backup passphrase")
    })?;
    let restore_s = t0.elapsed().as_secs_f64();
    Ok(Figures {
        store_mb,
        backup_s,
        restore_s,
        copy_s,
        file_mb,
    })
}
