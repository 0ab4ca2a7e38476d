//! `keebai-server migrate --to postgres://…`: copies a one-server install (SQLite) into an
//! empty Postgres database, so that the same data serves a cluster.

use super::{Pool, Store, StoreError};

/// Why a migration did not happen. Nothing was written in any case: the copy is one
/// transaction.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the source must be the SQLite store of a data directory")]
    SourceNotSqlite,
    #[error("the target must be a Postgres database (--to postgres://…)")]
    TargetNotPostgres,
    /// The target already holds tokens, channels or messages: refusing to mix two installs.
    #[error("the target database already holds data ({0}); migrate only into an empty database")]
    TargetNotEmpty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What was copied, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub accounts: usize,
    pub tokens: usize,
    pub channels: usize,
    pub messages: usize,
}

type AccountRow = (i64, String, String);
type TokenRow = (String, i64, String, String, String, Option<String>);
type ChannelRow = (String, i64, String, String, String, String, String, String, String, String);
type MessageRow = (String, String, String, i64, String, String);

impl Store {
    /// Copies every account, token, channel and message record of this (SQLite) store into
    /// `target` (Postgres, migrated, empty), keeping every id. Device files are not part of the
    /// store: they stay in the data directory (see the README).
    pub async fn copy_into(&self, target: &Store) -> Result<Copied, MigrateError> {
        let Pool::Sqlite(source) = self.pool() else { return Err(MigrateError::SourceNotSqlite) };
        let Pool::Postgres(target) = target.pool() else {
            return Err(MigrateError::TargetNotPostgres);
        };
        let read = |e: sqlx::Error| MigrateError::Store(e.into());
        let accounts: Vec<AccountRow> =
            sqlx::query_as("SELECT id, name, created_at FROM accounts ORDER BY id")
                .fetch_all(source)
                .await
                .map_err(read)?;
        let tokens: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, account_id, token_hash, scopes, created_at, revoked_at FROM tokens",
        )
        .fetch_all(source)
        .await
        .map_err(read)?;
        let channels: Vec<ChannelRow> = sqlx::query_as(
            "SELECT id, account_id, name, phone_number, push_name, connection_type, linker,
                    status, created_at, updated_at FROM channels",
        )
        .fetch_all(source)
        .await
        .map_err(read)?;
        let messages: Vec<MessageRow> = sqlx::query_as(
            "SELECT id, channel_id, recipient, chars, status, created_at FROM messages",
        )
        .fetch_all(source)
        .await
        .map_err(read)?;

        let mut tx = target.begin().await.map_err(read)?;
        let (held,): (String,) = sqlx::query_as(
            "SELECT concat_ws(', ',
                 CASE WHEN EXISTS (SELECT 1 FROM accounts) THEN 'accounts' END,
                 CASE WHEN EXISTS (SELECT 1 FROM tokens) THEN 'tokens' END,
                 CASE WHEN EXISTS (SELECT 1 FROM channels) THEN 'channels' END,
                 CASE WHEN EXISTS (SELECT 1 FROM messages) THEN 'messages' END)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(read)?;
        if !held.is_empty() {
            return Err(MigrateError::TargetNotEmpty(held));
        }
        for (id, name, created_at) in &accounts {
            sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(created_at)
                .execute(&mut *tx)
                .await
                .map_err(read)?;
        }
        // New accounts continue after the copied ids.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('accounts', 'id'),
                           (SELECT COALESCE(max(id), 0) + 1 FROM accounts), false)",
        )
        .execute(&mut *tx)
        .await
        .map_err(read)?;
        for (id, account, hash, scopes, created_at, revoked_at) in &tokens {
            sqlx::query(
                "INSERT INTO tokens (id, account_id, token_hash, scopes, created_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(account)
            .bind(hash)
            .bind(scopes)
            .bind(created_at)
            .bind(revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        for (id, account, name, phone, push_name, kind, linker, status, created, updated) in
            &channels
        {
            sqlx::query(
                "INSERT INTO channels (id, account_id, name, phone_number, push_name,
                     connection_type, linker, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(account)
            .bind(name)
            .bind(phone)
            .bind(push_name)
            .bind(kind)
            .bind(linker)
            .bind(status)
            .bind(created)
            .bind(updated)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        for (id, channel, recipient, chars, status, created_at) in &messages {
            sqlx::query(
                "INSERT INTO messages (id, channel_id, recipient, chars, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(channel)
            .bind(recipient)
            .bind(chars)
            .bind(status)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        tx.commit().await.map_err(read)?;
        Ok(Copied {
            accounts: accounts.len(),
            tokens: tokens.len(),
            channels: channels.len(),
            messages: messages.len(),
        })
    }
}
