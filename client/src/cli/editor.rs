//! `--edit`: the note as Markdown in the person's editor.
//!
//! The draft is plaintext while the editor has it open, so it goes to a
//! memory-backed folder where there is one (/dev/shm), readable only by this
//! user, and is overwritten before it is removed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

fn draft_dir() -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Opens `$VISUAL` / `$EDITOR` (else `vi`) on `text`; returns what was saved.
pub fn edit(text: &str) -> Result<String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let mut file = tempfile::Builder::new()
        .prefix("casebook-note-")
        .suffix(".md")
        .tempfile_in(draft_dir())
        .context("cannot make a draft file for the editor")?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    let path = file.path().to_path_buf();
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(&path)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}; set $EDITOR"))?;
    let result = std::fs::read_to_string(&path).context("cannot read the draft back");
    // Overwrite before the file goes.
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = std::fs::write(&path, vec![0u8; meta.len() as usize]);
    }
    drop(file);
    if !status.success() {
        bail!("the editor exited with {status}; nothing was saved");
    }
    result
}
