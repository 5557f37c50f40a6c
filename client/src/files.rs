//! Files casebook writes outside its store, in the clear by the person's
//! choice (an export, held edits saved): each a new file, never one written
//! over, readable by this user alone. And the home's own folder, which is
//! this user's alone too.

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

/// Makes `dir` (and any missing parent) and gives it mode 0700, whether it
/// was made now or was there already: the home's folder. Its store is
/// sealed, but a copy of it is what a passphrase can be guessed against
/// offline, so no other user of the machine may read it, nor the files
/// SQLite makes beside it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
