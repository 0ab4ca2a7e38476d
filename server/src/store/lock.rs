//! One server per data directory.
//!
//! SQLite keeps its data in one file and the whatsapp linker its devices beside it; two servers
//! on one data directory would both resume the same channels and both think they own every
//! pairing session. `serve` therefore holds an exclusive lock on `<data-dir>/keebai.lock` for
//! its whole life. The kernel drops the lock when the process ends, however it ends (`kill -9`
//! included), so a crash never leaves a stale lock behind. `token` subcommands do not take it:
//! they may run beside a serving process.
//!
//! On Postgres several servers share one database (cluster mode, `crate::cluster`), each with
//! its own data directory, which it still locks.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "keebai.lock";

/// Held while a server serves a data directory; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why a data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process serves this data directory.
    #[error(
        "another keebai-server is already serving the data directory {dir} (it holds {lock}); \
         stop it first, or give this one its own --data-dir (servers that share a Postgres \
         database each have their own)"
    )]
    Held { dir: PathBuf, lock: PathBuf },
    /// The lock file could not be opened or locked.
    #[error("could not lock {lock}")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes the data directory, creating it and the lock file if needed, or says who has it.
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io { lock: path.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => {
                Err(LockError::Held { dir: data_dir.to_path_buf(), lock: path })
            }
            Err(TryLockError::Error(source)) => Err(LockError::Io { lock: path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();

        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(refused, LockError::Held { .. }), "{refused:?}");
        let message = refused.to_string();
        assert!(message.contains("already serving"), "{message}");
        assert!(message.contains(&dir.path().display().to_string()), "{message}");

        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
