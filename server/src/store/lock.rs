//! One server per data directory.
//!
//! SQLite keeps its data in one file and the whatsapp linker its devices beside it; two servers
//! on one data directory would both resume the same channels and both think they own every
//! pairing session. `serve` therefore holds an exclusive lock on `<data-dir>/keebai.lock` for
//! its whole life. The kernel drops the lock when the process ends, however it ends (`kill -9`
//! included), so a crash never leaves a stale lock behind. `token` subcommands do not take it:
//! they may run beside a serving process.
//!
//! On Postgres, until cluster mode (several servers sharing one database, each channel owned by
//! one of them through a lease) is built, one server serves a database: [`DatabaseLock`].

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sqlx::Connection;

use super::{Pool, Store, StoreError};

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
         stop it first, or give this one its own --data-dir (on Postgres also its own \
         --database-url: several servers on one database are not supported yet)"
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

/// The Postgres advisory lock key of a serving keebai-server ("keebai" in ASCII).
const SERVING_KEY: i64 = 0x6b65_6562_6169;

/// Held while a server serves a Postgres database: a session-level advisory lock on a
/// connection of its own, which Postgres releases when that connection ends, however the
/// process ends.
#[derive(Debug)]
pub struct DatabaseLock {
    connection: sqlx::PgConnection,
}

/// Why a database could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseLockError {
    /// Another server serves this database.
    #[error(
        "another keebai-server with the whatsapp linker is already serving this database \
         (--database-url); several such servers on one database need the device keys in \
         Postgres, which are not built yet: stop the other one first"
    )]
    Held,
    /// The database could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Takes the database for this process when it is Postgres (`None` on SQLite, whose data
    /// directory's [`DataDirLock`] does the job). Only the whatsapp linker takes it: its device
    /// keys live in files of one server's data directory, so one server runs its channels.
    pub async fn lock_for_serving(&self) -> Result<Option<DatabaseLock>, DatabaseLockError> {
        let Pool::Postgres(pool) = self.pool() else { return Ok(None) };
        let mut connection = pool.acquire().await.map_err(StoreError::from)?.detach();
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(SERVING_KEY)
            .fetch_one(&mut connection)
            .await
            .map_err(StoreError::from)?;
        if !taken {
            let _ = connection.close().await;
            return Err(DatabaseLockError::Held);
        }
        Ok(Some(DatabaseLock { connection }))
    }
}

impl DatabaseLock {
    /// Lets the database go now (dropping the lock does too, when its connection closes).
    pub async fn release(self) {
        let _ = self.connection.close().await;
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
