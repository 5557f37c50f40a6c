//! Files casebook writes outside its store, in the clear by the person's
//! choice (an export, held edits saved): each a new file, never one written
//! over, readable by this user alone.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a new file at `path` with mode 0600, synced to disk.
/// Fails if anything is already there.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
