//! The store: SQLite (`<data-dir>/keebai.db`, WAL, `synchronous=FULL`, the default) or Postgres
//! (`--database-url postgres://…`), through sqlx, with each backend's migrations
//! (`server/migrations/{sqlite,postgres}`) embedded in the binary.
//!
//! - `tokens`: accounts and their personal access tokens (hashes only).
//! - `messages`: what was sent on a channel (metadata, not text).
//! - `lock`: one serving process per data directory, and (until cluster mode) per database.
//!
//! The channels table's SQL lives with its only owner, [`crate::channels::ChannelBook`], which
//! runs it through [`on_pool!`].
//!
//! Both backends run the same SQL text: it is written in the dialect both speak, with `$1…`
//! parameters (which sqlx binds on SQLite too), and [`on_pool!`] type-checks each query against
//! each driver. Only the migrations differ (`sqlx::Any` cannot carry what cluster mode needs:
//! `now()`, `SKIP LOCKED`, `NOTIFY`). Rows are read as tuples, so one decoder serves both.
//!
//! Durability: every write is a committed transaction (with `synchronous=FULL` on SQLite) before
//! the caller answers 2xx, so an answer the client saw survives `kill -9` (and power loss) of the
//! server.

mod lock;
mod messages;
mod migrate;
mod tokens;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use lock::{DataDirLock, LOCK_FILE, LockError};
pub use migrate::{Copied, MigrateError};
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
    /// The Postgres database could not be reached or migrated at start. The URL is not part of
    /// the message: it may hold a password.
    #[error("could not open the Postgres database (--database-url)")]
    Connect(#[source] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                    postgres_transient(&code)
                } else {
                    sqlite_transient(&code)
                }
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            _ => false,
        };
        if transient { Self::Unavailable(error) } else { Self::Other(error) }
    }
}

/// SQLite primary result codes that describe the environment, not the query: BUSY 5, LOCKED 6,
/// NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14 (https://www.sqlite.org/rescode.html);
/// extended codes keep the primary in the low byte.
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14))
}

/// Postgres SQLSTATEs that describe the server's state, not the query
/// (https://www.postgresql.org/docs/15/errcodes-appendix.html): connection exceptions (08),
/// serialization failures and deadlocks (40001, 40P01), insufficient resources (53), operator
/// intervention such as a shutdown or a cancelled statement (57), system errors (58), and a
/// read-only transaction on a standby (25006).
fn postgres_transient(code: &str) -> bool {
    ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "25006")
}

/// A handle on the database; cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Rung after a commit that queued webhook deliveries: wakes this process's sender
    /// (`webhooks::Sender`), which otherwise polls the outbox every second.
    outbox: std::sync::Arc<tokio::sync::Notify>,
}

/// The backend's connection pool.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is: the body is
/// expanded once per backend and type-checked against each driver, so the same SQL text and the
/// same decoding serve both.
///
/// ```ignore
/// let n = on_pool!(store, |pool| sqlx::query("…").execute(pool).await?.rows_affected());
/// ```
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Opens a transaction that will write, on either backend's pool (inside [`on_pool!`]).
///
/// On SQLite it is `BEGIN IMMEDIATE`, which takes the write lock at once (waiting up to the busy
/// timeout for another writer): a deferred transaction that reads first and writes later fails
/// with `SQLITE_BUSY` at once, without waiting, when another connection wrote in between. On
/// Postgres it is a plain `BEGIN`.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Which backend a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file in the data directory; one serving process.
    Sqlite,
    /// A Postgres database.
    Postgres,
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
    /// The store the settings ask for: Postgres when a database URL is given, else SQLite in
    /// the data directory.
    pub async fn open_configured(
        data_dir: &Path,
        database_url: Option<&SecretString>,
    ) -> Result<Self, StoreError> {
        match database_url {
            Some(url) => Self::connect(url).await,
            None => Self::open(data_dir).await,
        }
    }

    /// Connects to a Postgres database (`postgres://user:password@host:port/db`) and brings its
    /// schema up to date. The database must exist; the user needs the right to create tables.
    pub async fn connect(url: &SecretString) -> Result<Self, StoreError> {
        let connect_err = |source: anyhow::Error| StoreError::Connect(source);
        // Neither message quotes the URL: it may hold a password.
        let url = url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(connect_err(anyhow::anyhow!(
                "--database-url must be a postgres:// URL (SQLite, the default, needs none)"
            )));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| connect_err(anyhow::anyhow!("--database-url is not a valid URL")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| connect_err(e.into()))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| connect_err(e.into()))?;
        Ok(Self::with(Pool::Postgres(pool)))
    }

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
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|e| open_err(e.into()))?;
        Ok(Self::with(Pool::Sqlite(pool)))
    }

    fn with(pool: Pool) -> Self {
        Self { pool, outbox: Default::default() }
    }

    /// Wakes the webhook sender: call after committing a transaction that queued deliveries.
    pub(crate) fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// Resolves after the next [`Store::wake_outbox`] (or at once if one came since the last
    /// wait).
    pub(crate) async fn outbox_woken(&self) {
        self.outbox.notified().await;
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The pool, for the modules that own their tables' SQL (`channels`), through [`on_pool!`].
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The Postgres pool, for cluster mode; `None` on SQLite.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// Closes every connection (and checkpoints SQLite's WAL) before the process ends.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
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
