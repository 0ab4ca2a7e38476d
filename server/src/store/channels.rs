use keebai_protocol::ChannelStatus;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Store, StoreError};
use crate::domain::{self, AccountId, ChannelId, ChannelName, PhoneNumber};

/// A paired channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    pub id: ChannelId,
    pub account: AccountId,
    pub name: String,
    pub phone_number: String,
    pub push_name: String,
    /// Which linker paired it (`simulated` or `whatsapp`); only that linker can send on it.
    pub linker: String,
    pub status: ChannelStatus,
    pub created_at: String,
}

/// The columns `record` reads, as a macro so that queries stay `'static` literals (sqlx only
/// takes audited SQL, and `concat!` keeps it literal).
macro_rules! columns {
    () => {
        "id, account_id, name, phone_number, push_name, linker, status, created_at"
    };
}

fn record(row: SqliteRow) -> Result<ChannelRecord, sqlx::Error> {
    let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::Decode(e);
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(ChannelRecord {
        id: ChannelId::parse(&id).map_err(|e| decode(e.into()))?,
        account: AccountId(row.try_get("account_id")?),
        name: row.try_get("name")?,
        phone_number: row.try_get("phone_number")?,
        push_name: row.try_get("push_name")?,
        linker: row.try_get("linker")?,
        status: match status.as_str() {
            "connected" => ChannelStatus::Connected,
            "disconnected" => ChannelStatus::Disconnected,
            other => return Err(decode(format!("unknown channel status `{other}`").into())),
        },
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Records a freshly linked device as a connected channel. Re-linking a number the account
    /// already has keeps its channel id (and creation time) and refreshes the rest.
    ///
    /// `proposed` is the id a new channel gets (the linker may have named device state after it).
    pub async fn upsert_linked_channel(
        &self,
        account: AccountId,
        proposed: &ChannelId,
        name: &ChannelName,
        phone: &PhoneNumber,
        push_name: &str,
        linker: &str,
    ) -> Result<ChannelRecord, StoreError> {
        let now = domain::now();
        // In a transaction of its own: SQLite makes a RETURNING statement's changes on its first
        // step, but commits (in autocommit mode) only when the statement ends, and an error there
        // (an unwritable or full disk) is not reported to `fetch_one`, which stops after the row.
        // That reported a channel `connected` that was never stored; `commit` reports it.
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(concat!("INSERT INTO channels (id, account_id, name, phone_number, push_name, linker, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, 'connected', ?, ?)
             ON CONFLICT (account_id, phone_number) DO UPDATE SET
                 name = excluded.name, push_name = excluded.push_name, linker = excluded.linker,
                 status = 'connected', updated_at = excluded.updated_at
             RETURNING ", columns!(), ""))
        .bind(proposed.as_str())
        .bind(account.0)
        .bind(name.as_str())
        .bind(phone.as_str())
        .bind(push_name)
        .bind(linker)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record(row)?)
    }

    /// The account's channels, oldest first.
    pub async fn list_channels(
        &self,
        account: AccountId,
    ) -> Result<Vec<ChannelRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM channels WHERE account_id = ? ORDER BY created_at, id"
        ))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(record).collect::<Result<_, _>>()?)
    }

    /// One of the account's channels; `None` for unknown ids and for other accounts' channels.
    pub async fn get_channel(
        &self,
        account: AccountId,
        id: &ChannelId,
    ) -> Result<Option<ChannelRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM channels WHERE id = ? AND account_id = ?"
        ))
        .bind(id.as_str())
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(record).transpose()?)
    }

    /// Sets a channel's status whatever its account (the phone side knows only the channel).
    /// `false` when no channel has that id.
    pub async fn set_channel_status(
        &self,
        id: &ChannelId,
        status: ChannelStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE channels SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(domain::now())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every channel id of a linker, connected or not (to tell device files from leftovers).
    pub async fn channel_ids(&self, linker: &str) -> Result<Vec<ChannelId>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM channels WHERE linker = ?")
            .bind(linker)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(id,)| {
                ChannelId::parse(&id).map_err(|e| StoreError::Other(sqlx::Error::Decode(e.into())))
            })
            .collect()
    }

    /// Every connected channel of a linker, for reconnecting at start.
    pub async fn connected_channels(&self, linker: &str) -> Result<Vec<ChannelRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM channels WHERE status = 'connected' AND linker = ? ORDER BY created_at"
        ))
        .bind(linker)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(record).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scopes;

    async fn store_with_account() -> (tempfile::TempDir, Store, AccountId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        let account = store.authenticate(&token.secret).await.unwrap().unwrap().account;
        (dir, store, account)
    }

    #[tokio::test]
    async fn relinking_a_number_reuses_its_channel_id_and_reconnects_it() {
        let (_dir, store, account) = store_with_account().await;
        let phone = PhoneNumber::parse("+56912345678").unwrap();
        let first = store
            .upsert_linked_channel(
                account,
                &ChannelId::generate(),
                &ChannelName::default_name(),
                &phone,
                "Lucio",
                "simulated",
            )
            .await
            .unwrap();
        assert!(store.set_channel_status(&first.id, ChannelStatus::Disconnected).await.unwrap());

        let name = ChannelName::parse("Ventas").unwrap();
        let again = store
            .upsert_linked_channel(
                account,
                &ChannelId::generate(),
                &name,
                &phone,
                "Lucio B",
                "simulated",
            )
            .await
            .unwrap();

        assert_eq!(again.id, first.id);
        assert_eq!(again.created_at, first.created_at);
        assert_eq!(again.status, ChannelStatus::Connected);
        assert_eq!(again.name, "Ventas");
        assert_eq!(again.push_name, "Lucio B");
        assert_eq!(store.list_channels(account).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn channels_are_invisible_to_other_accounts() {
        let (_dir, store, account) = store_with_account().await;
        let other = store.create_token("other", Scopes::all()).await.unwrap();
        let other = store.authenticate(&other.secret).await.unwrap().unwrap().account;
        let phone = PhoneNumber::parse("+56912345678").unwrap();
        let ch = store
            .upsert_linked_channel(
                account,
                &ChannelId::generate(),
                &ChannelName::default_name(),
                &phone,
                "",
                "simulated",
            )
            .await
            .unwrap();
        assert!(store.get_channel(other, &ch.id).await.unwrap().is_none());
        assert!(store.list_channels(other).await.unwrap().is_empty());
        assert_eq!(store.get_channel(account, &ch.id).await.unwrap(), Some(ch));
    }
}
