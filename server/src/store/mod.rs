//! The SQLite store (`<data-dir>/keebai.db`, WAL, `synchronous=FULL`), through sqlx with the
//! migrations of `server/migrations` embedded in the binary.
//!
//! - `tokens`: accounts and their personal access tokens (hashes only).
//! - `messages`: what was sent on a channel (metadata, not text).
//!
//! The channels table's SQL lives with its only owner, [`crate::channels::ChannelBook`], which
//! runs it on this pool.
//!
//! Durability: every write is a committed transaction with `synchronous=FULL` before the caller
//! answers 2xx, so an answer the client saw survives `kill -9` (and power loss) of the server.

mod messages;
mod tokens;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use tokens::{NewToken, Principal, TokenInfo};

/// The store's file name inside the data directory.
pub const DB_FILE: &str = "keebai.db";

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// 503: the database cannot be written or read right now (read-only file, full disk, locked).
    /// Such errors clear by themselves once the file is usable again.
    #[error("the store is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// 500: anything else (a bug or a corrupt file).
    #[error("store error")]
    Other(#[source] sqlx::Error),
    /// The data directory or the migrations could not be set up at start.
    #[error("could not open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: anyhow::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // SQLite primary result codes that describe the environment, not the query:
        // BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
        // (https://www.sqlite.org/rescode.html); extended codes keep the primary in the low byte.
        let transient = match &error {
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14)),
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            _ => false,
        };
        if transient { Self::Unavailable(error) } else { Self::Other(error) }
    }
}

/// A handle on the database; cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

/// Whether a connection goes back to the pool: not if SQLite opened it read-only. When it cannot
/// open the file for writing (a read-only mount, an immutable file), SQLite silently opens it
/// read-only instead. Such a connection still serves reads while the fault lasts, but pooled it
/// would fail writes at random long after the file is writable again; closed, the next request
/// opens a new one.
async fn can_write(connection: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is an open connection that we hold locked; sqlite3_db_readonly only
    // reads its state, and "main" is a NUL-terminated literal.
    let read_only = unsafe {
        libsqlite3_sys::sqlite3_db_readonly(handle.as_raw_handle().as_ptr(), c"main".as_ptr())
    };
    Ok(read_only == 0)
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/keebai.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |source: anyhow::Error| StoreError::Open { path: path.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.into()))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| open_err(e.into()))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|connection, _| Box::pin(can_write(connection)))
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.into()))?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| open_err(e.into()))?;
        Ok(Self { pool })
    }

    /// The pool, for the modules that own their tables' SQL (`channels`).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (and checkpoints the WAL) before the process ends.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_twice_keeps_data_and_applies_migrations_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", crate::domain::Scopes::all()).await.unwrap();
        store.close().await;

        let reopened = Store::open(dir.path()).await.unwrap();
        let tokens = reopened.list_tokens().await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].id, token.info.id);
    }
}
