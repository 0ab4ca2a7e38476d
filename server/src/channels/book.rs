//! [`ChannelBook`]: the one writer of channel rows and their status (and of the webhooks that
//! report its changes).

use keebai_protocol::ChannelStatus;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::channel::{Channel, LinkerKind, Unlinked};
use crate::domain::{self, AccountId, ChannelId, ChannelName, PhoneNumber};
use crate::store::{Store, StoreError, on_pool};
use crate::webhooks::{Event, Outbox};

/// The channels table. Every change of a channel row goes through here: linking (new or
/// again), unlinking (for any [`Unlinked`] cause), and nothing else. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ChannelBook {
    store: Store,
}

/// A device that just linked, to be recorded as a connected channel.
#[derive(Debug)]
pub struct NewLink<'a> {
    pub account: AccountId,
    /// The id a new channel gets (the linker may have named device state after it).
    pub proposed: &'a ChannelId,
    pub name: &'a ChannelName,
    pub phone: &'a PhoneNumber,
    pub push_name: &'a str,
    pub linker: LinkerKind,
}

/// The columns `channel` reads, as a macro so that queries stay `'static` literals (sqlx only
/// takes audited SQL, and `concat!` keeps it literal).
macro_rules! columns {
    () => {
        "id, account_id, name, phone_number, push_name, linker, status, created_at"
    };
}

/// A row of [`columns!`], in that order.
type ChannelRow = (String, i64, String, String, String, String, String, String);

fn channel(row: ChannelRow) -> Result<Channel, sqlx::Error> {
    fn bad(what: &str, value: &str) -> sqlx::Error {
        sqlx::Error::Decode(format!("a stored channel has a bad {what}: `{value}`").into())
    }
    let (id, account, name, phone, push_name, linker, status, created_at) = row;
    Ok(Channel {
        id: ChannelId::parse(&id).map_err(|_| bad("id", &id))?,
        account: AccountId(account),
        name,
        phone_number: PhoneNumber::parse(&phone).map_err(|_| bad("phone number", &phone))?,
        push_name,
        linker: LinkerKind::parse(&linker).ok_or_else(|| bad("linker", &linker))?,
        status: match status.as_str() {
            "connected" => ChannelStatus::Connected,
            "disconnected" => ChannelStatus::Disconnected,
            _ => return Err(bad("status", &status)),
        },
        created_at: OffsetDateTime::parse(&created_at, &Rfc3339)
            .map_err(|_| bad("creation time", &created_at))?,
    })
}

impl ChannelBook {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store the book writes to (for the pairing engine's own webhook events).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Records a freshly linked device as a connected channel. Re-linking a number the account
    /// already has keeps its channel id (and creation time) and refreshes the rest. The
    /// webhook (`channel.connected`, or `channel.reconnected` for a number linked before) is
    /// queued in the same transaction.
    pub async fn link(&self, new: NewLink<'_>) -> Result<Channel, StoreError> {
        let now = domain::now();
        // In an explicit transaction: SQLite makes a RETURNING statement's changes on its first
        // step, but commits (in autocommit mode) only when the statement ends, and an error there
        // (an unwritable or full disk) is not reported to `fetch_one`, which stops after the row.
        // That reported a channel `connected` that was never stored; `commit` reports it.
        let (linked, queued): (Channel, bool) = on_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            let row: ChannelRow = sqlx::query_as(concat!("INSERT INTO channels (id, account_id, name, phone_number, push_name, linker, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'connected', $7, $7)
                 ON CONFLICT (account_id, phone_number) DO UPDATE SET
                     name = excluded.name, push_name = excluded.push_name, linker = excluded.linker,
                     status = 'connected', updated_at = excluded.updated_at
                 RETURNING ", columns!(), ""))
            .bind(new.proposed.as_str())
            .bind(new.account.0)
            .bind(new.name.as_str())
            .bind(new.phone.as_str())
            .bind(new.push_name)
            .bind(new.linker.as_str())
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
            // The channel's webhook, in the same transaction: a number linked before keeps its
            // channel id, so another id than the proposed one means linked again.
            let linked = channel(row)?;
            let again = linked.id != *new.proposed;
            let event = Event::channel_linked(again, &linked.id, &linked.phone_number);
            let queued = tx.enqueue(new.account, &event).await?;
            tx.commit().await?;
            (linked, queued)
        });
        if queued {
            self.store.wake_outbox();
        }
        Ok(linked)
    }

    /// The channel shows `disconnected` from now on, whatever its account (the phone side knows
    /// only the channel), and the change is reported by webhook (`channel.disconnected`) when it
    /// was connected. `false` when no channel has that id.
    pub async fn unlink(&self, id: &ChannelId, why: Unlinked) -> Result<bool, StoreError> {
        let (found, queued) = on_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            // Only a change from `connected` is reported (and logged) once.
            let changed: Option<(i64, String)> = sqlx::query_as(
                "UPDATE channels SET status = 'disconnected', updated_at = $1
                 WHERE id = $2 AND status = 'connected' RETURNING account_id, phone_number",
            )
            .bind(domain::now())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match changed {
                Some((account, phone)) => {
                    let phone =
                        PhoneNumber::parse(&phone).map_err(|e| sqlx::Error::Decode(e.into()))?;
                    let event =
                        Event::channel_disconnected(id, &phone, why.code(), &why.to_string());
                    (Some(true), tx.enqueue(AccountId(account), &event).await?)
                }
                None => {
                    let exists: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM channels WHERE id = $1")
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                    (exists.map(|_| false), false)
                }
            };
            tx.commit().await?;
            outcome
        });
        if queued {
            self.store.wake_outbox();
        }
        if found == Some(true) {
            tracing::info!(channel = %id, why = %why, "channel disconnected");
        }
        Ok(found.is_some())
    }
    /// The account's channels, oldest first.
    pub async fn list(&self, account: AccountId) -> Result<Vec<Channel>, StoreError> {
        let rows: Vec<ChannelRow> = on_pool!(self.store, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM channels WHERE account_id = $1 ORDER BY created_at, id"
            ))
            .bind(account.0)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(channel).collect::<Result<_, _>>()?)
    }

    /// One of the account's channels; `None` for unknown ids and for other accounts' channels.
    pub async fn get(
        &self,
        account: AccountId,
        id: &ChannelId,
    ) -> Result<Option<Channel>, StoreError> {
        let row: Option<ChannelRow> = on_pool!(self.store, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM channels WHERE id = $1 AND account_id = $2"
            ))
            .bind(id.as_str())
            .bind(account.0)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(channel).transpose()?)
    }

    /// Every channel id of a linker, connected or not (to tell device files from leftovers).
    pub async fn ids(&self, linker: LinkerKind) -> Result<Vec<ChannelId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.store, |pool| {
            sqlx::query_as("SELECT id FROM channels WHERE linker = $1")
                .bind(linker.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(id,)| {
                ChannelId::parse(&id).map_err(|e| StoreError::Other(sqlx::Error::Decode(e.into())))
            })
            .collect()
    }

    /// Every connected channel of a linker, oldest first, for reconnecting at start.
    pub async fn connected(&self, linker: LinkerKind) -> Result<Vec<Channel>, StoreError> {
        let rows: Vec<ChannelRow> = on_pool!(self.store, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM channels WHERE status = 'connected' AND linker = $1 ORDER BY created_at"
            ))
            .bind(linker.as_str())
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(channel).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Scopes;

    /// A book on a fresh store with one account.
    pub(crate) async fn book_with_account() -> (tempfile::TempDir, ChannelBook, AccountId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        let account = store.authenticate(&token.secret).await.unwrap().unwrap().account;
        (dir, ChannelBook::new(store), account)
    }

    /// Links `phone` to `account` as a new channel of `linker`.
    pub(crate) async fn link(
        book: &ChannelBook,
        account: AccountId,
        phone: &str,
        push_name: &str,
        linker: LinkerKind,
    ) -> Channel {
        book.link(NewLink {
            account,
            proposed: &ChannelId::generate(),
            name: &ChannelName::default_name(),
            phone: &PhoneNumber::parse(phone).unwrap(),
            push_name,
            linker,
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn relinking_a_number_reuses_its_channel_id_and_reconnects_it() {
        let (_dir, book, account) = book_with_account().await;
        let first = link(&book, account, "+56912345678", "Lucio", LinkerKind::Simulated).await;
        assert!(book.unlink(&first.id, Unlinked::Simulated).await.unwrap());

        let name = ChannelName::parse("Ventas").unwrap();
        let again = book
            .link(NewLink {
                account,
                proposed: &ChannelId::generate(),
                name: &name,
                phone: &first.phone_number,
                push_name: "Lucio B",
                linker: LinkerKind::Simulated,
            })
            .await
            .unwrap();

        assert_eq!(again.id, first.id);
        assert_eq!(again.created_at, first.created_at);
        assert_eq!(again.status, ChannelStatus::Connected);
        assert_eq!(again.name, "Ventas");
        assert_eq!(again.push_name, "Lucio B");
        assert_eq!(book.list(account).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn channels_are_invisible_to_other_accounts() {
        let (_dir, book, account) = book_with_account().await;
        let other = book.store.create_token("other", Scopes::all()).await.unwrap();
        let other = book.store.authenticate(&other.secret).await.unwrap().unwrap().account;
        let ch = link(&book, account, "+56912345678", "", LinkerKind::Simulated).await;
        assert!(book.get(other, &ch.id).await.unwrap().is_none());
        assert!(book.list(other).await.unwrap().is_empty());
        assert_eq!(book.get(account, &ch.id).await.unwrap(), Some(ch));
    }

    #[tokio::test]
    async fn unlinking_an_unknown_channel_changes_nothing() {
        let (_dir, book, account) = book_with_account().await;
        let ch = link(&book, account, "+56912345678", "", LinkerKind::Whatsapp).await;
        assert!(!book.unlink(&ChannelId::generate(), Unlinked::NotLoggedIn).await.unwrap());
        assert_eq!(book.connected(LinkerKind::Whatsapp).await.unwrap(), vec![ch.clone()]);
        assert!(book.connected(LinkerKind::Simulated).await.unwrap().is_empty());
        assert_eq!(book.ids(LinkerKind::Whatsapp).await.unwrap(), vec![ch.id]);
    }
}
