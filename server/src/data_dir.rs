//! The relay's data folder: its own, and only one relay's at a time.
//!
//! It holds the TLS private key and every stored envelope, so it is made
//! (or tightened to) mode 0700 and its database files 0600, and a lock file
//! held for the relay's whole run stops a second relay from opening the
//! same database, which two writers with separate in-memory state would
//! corrupt in ways no SQLite lock catches.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The database inside the data folder.
pub const DB_FILE: &str = "relay.db";
/// The lock file held while a relay runs.
pub const LOCK_FILE: &str = "relay.lock";

/// A data-folder failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    #[error("data folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "another relay is running on the data folder {0} (it holds {LOCK_FILE}); stop it first, or give this one its own --data"
    )]
    InUse(String),
    #[error(
        "the data folder {0} holds files that are not the relay's; give the relay a folder of its own (it makes the folder private)"
    )]
    NotTheRelays(String),
}

/// Names a relay keeps in its folder.
pub const RELAY_FILES: [&str; 6] = [
    DB_FILE,
    "relay.db-wal",
    "relay.db-shm",
    LOCK_FILE,
    "relay-cert.der",
    "relay-key.der",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A data folder this process holds the lock of; the lock goes with it.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the folder if needed, makes it private, and takes its lock.
    pub fn lock(path: &Path) -> Result<DataDir, DataDirError> {
        make_private_dir(path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = private_file(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DataDirError::InUse(path.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The folder locked, with its SQLite database file made private: a
    /// relay that keeps its data here rather than in PostgreSQL.
    pub fn lock_with_db(path: &Path) -> Result<DataDir, DataDirError> {
        let dir = DataDir::lock(path)?;
        // Files an older relay made with the default umask.
        for name in [DB_FILE, "relay.db-wal", "relay.db-shm"] {
            let p = path.join(name);
            if p.exists() {
                set_mode(&p, 0o600)?;
            }
        }
        // SQLite gives its -wal and -shm files the mode of the database
        // file, so making that one first with 0600 covers all three.
        private_file(&path.join(DB_FILE))?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }
}

/// Creates `path` (and its parents) with mode 0700 for the last part, or
/// tightens an existing folder to 0700 if it holds nothing but a relay's
/// files: a folder with other things in it is someone else's to set.
pub fn make_private_dir(path: &Path) -> Result<(), DataDirError> {
    if path.exists() {
        let foreign = std::fs::read_dir(path)
            .map_err(io(path))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // A folder that is a mount point of its own has lost+found.
            .any(|name| !RELAY_FILES.contains(&name.as_str()) && name != "lost+found");
        if foreign {
            return Err(DataDirError::NotTheRelays(path.display().to_string()));
        }
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(io(path))?;
    set_mode(path, 0o700)
}

/// Creates a new file, mode 0600; an existing file (or a symlink planted
/// in its place) is an error.
pub fn new_private_file(path: &Path) -> Result<File, DataDirError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(io(path))
}

/// Opens (creating if absent, mode 0600) a file without truncating it.
pub fn private_file(path: &Path) -> Result<File, DataDirError> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(io(path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_folder_is_private_and_locked_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("relay");
        let held = DataDir::lock_with_db(&path).unwrap();
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&held.db()), 0o600);
        assert!(matches!(DataDir::lock(&path), Err(DataDirError::InUse(_))));
        drop(held);
        DataDir::lock(&path).expect("free again once the first is gone");
    }

    #[test]
    fn a_folder_with_other_things_in_it_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::write(tmp.path().join("payroll.xlsx"), b"").unwrap();
        assert!(matches!(
            DataDir::lock(tmp.path()),
            Err(DataDirError::NotTheRelays(_))
        ));
        assert_eq!(mode(tmp.path()), 0o750);
    }

    #[test]
    fn an_older_relays_open_files_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = tmp.path().join(DB_FILE);
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _held = DataDir::lock_with_db(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
}
