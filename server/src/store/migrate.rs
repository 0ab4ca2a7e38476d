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
    pub webhooks: usize,
}

type AccountRow = (i64, String, String);
type TokenRow = (String, i64, String, String, String, Option<String>);
type ChannelRow = (String, i64, String, String, String, String, String, String, String, String);
type MessageRow = (String, String, String, i64, String, String);
type EndpointRow =
    (String, i64, String, String, Option<String>, String, Option<String>, Option<i64>, i64);
type EventRow = (String, i64, String, String, i64);
type DeliveryRow = (i64, String, String, String, String, i64, Option<i64>, i64, i64);
type AttemptRow = (i64, i64, Option<i64>, i64, Option<String>);

impl Store {
    /// Copies every account, token, channel, message record and webhook (endpoints, outbox,
    /// deliveries) of this (SQLite) store into
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

        let endpoints: Vec<EndpointRow> = sqlx::query_as(
            "SELECT id, account_id, url, events, description, secret, previous_secret,
                    previous_until, created_ms FROM webhook_endpoints",
        )
        .fetch_all(source)
        .await
        .map_err(read)?;
        let events: Vec<EventRow> =
            sqlx::query_as("SELECT id, account_id, type, body, created_ms FROM webhook_events")
                .fetch_all(source)
                .await
                .map_err(read)?;
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT seq, id, endpoint_id, event_id, state, failures, first_try_ms, next_ms,
                    created_ms FROM webhook_deliveries ORDER BY seq",
        )
        .fetch_all(source)
        .await
        .map_err(read)?;
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT delivery_seq, at_ms, status, latency_ms, error FROM webhook_attempts",
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
                 CASE WHEN EXISTS (SELECT 1 FROM messages) THEN 'messages' END,
                 CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints) THEN 'webhooks' END)",
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
        // Webhooks: endpoints with their secrets, and the outbox with its deliveries (a pending
        // one is sent by the cluster; claims are not copied) and their tries.
        for (id, account, url, events, description, secret, previous, until, created) in &endpoints
        {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, account_id, url, events, description, secret,
                     previous_secret, previous_until, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(account)
            .bind(url)
            .bind(events)
            .bind(description)
            .bind(secret)
            .bind(previous)
            .bind(until)
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        for (id, account, kind, body, created) in &events {
            sqlx::query(
                "INSERT INTO webhook_events (id, account_id, type, body, created_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(account)
            .bind(kind)
            .bind(body)
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        for (seq, id, endpoint, event, state, failures, first, next, created) in &deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (seq, id, endpoint_id, event_id, state, failures,
                     first_try_ms, next_ms, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(seq)
            .bind(id)
            .bind(endpoint)
            .bind(event)
            .bind(state)
            .bind(failures)
            .bind(first)
            .bind(next)
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(read)?;
        }
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('webhook_deliveries', 'seq'),
                           (SELECT COALESCE(max(seq), 0) + 1 FROM webhook_deliveries), false)",
        )
        .execute(&mut *tx)
        .await
        .map_err(read)?;
        for (delivery, at, status, latency, error) in &attempts {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_seq, at_ms, status, latency_ms, error)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(delivery)
            .bind(at)
            .bind(status)
            .bind(latency)
            .bind(error)
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
            webhooks: endpoints.len(),
        })
    }
}
