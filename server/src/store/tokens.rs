use super::{Store, StoreError, on_pool};
use crate::domain::{self, AccountId, Scopes, TokenId, random_hex};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every token starts with this, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "kbai_pk_";

/// What `token create` hands out: the public description, and the secret shown exactly once.
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: SecretString,
}

/// A token as `token list` shows it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub account: String,
    pub scopes: Scopes,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Who a request acts for, once its token checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    pub scopes: Scopes,
}

/// SHA-256 of the whole token, hex. Lookups go by this hash through a unique index, so the secret
/// itself is never compared byte by byte (no timing signal about it) and never stored.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Creates the account if it does not exist, and a new token for it.
    pub async fn create_token(
        &self,
        account: &str,
        scopes: Scopes,
    ) -> Result<NewToken, StoreError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(24));
        let id = TokenId::generate();
        let now = domain::now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO accounts (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(account)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tokens (id, account_id, token_hash, scopes, created_at)
                 SELECT $1, id, $2, $3, $4 FROM accounts WHERE name = $5",
            )
            .bind(id.as_str())
            .bind(token_hash(&secret))
            .bind(scopes.to_stored())
            .bind(&now)
            .bind(account)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(NewToken {
            info: TokenInfo {
                id,
                account: account.to_owned(),
                scopes,
                created_at: now,
                revoked_at: None,
            },
            secret: SecretString::from(secret),
        })
    }

    /// Every token, oldest first, without secrets.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<(String, String, String, String, Option<String>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT t.id, a.name, t.scopes, t.created_at, t.revoked_at
                 FROM tokens t JOIN accounts a ON a.id = t.account_id
                 ORDER BY t.created_at, t.id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, account, scopes, created_at, revoked_at)| {
                Ok(TokenInfo {
                    id: TokenId::parse(&id).map_err(|e| sqlx::Error::Decode(e.into()))?,
                    account,
                    scopes: Scopes::from_stored(&scopes),
                    created_at,
                    revoked_at,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Revokes a token; it stops working for the very next request. `false` when no live token
    /// has that id.
    pub async fn revoke_token(&self, id: &TokenId) -> Result<bool, StoreError> {
        let revoked = on_pool!(self, |pool| {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(domain::now())
                .bind(id.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked == 1)
    }

    /// The account and scopes of a live token, or `None` for an unknown or revoked one.
    pub async fn authenticate(
        &self,
        secret: &SecretString,
    ) -> Result<Option<Principal>, StoreError> {
        let secret = secret.expose_secret();
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<(i64, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT account_id, scopes FROM tokens
                 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash(secret))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(account, scopes)| Principal {
            account: AccountId(account),
            scopes: Scopes::from_stored(&scopes),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keebai_protocol::Scope;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_new_token_authenticates_with_its_scopes_until_revoked() {
        let (_dir, store) = store().await;
        let scopes: Scopes = [Scope::ChannelsConnect].into_iter().collect();
        let token = store.create_token("acme", scopes).await.unwrap();
        assert!(token.secret.expose_secret().starts_with("kbai_pk_"));

        let principal = store.authenticate(&token.secret).await.unwrap().unwrap();
        assert_eq!(principal.scopes, scopes);

        assert!(store.revoke_token(&token.info.id).await.unwrap());
        assert_eq!(store.authenticate(&token.secret).await.unwrap(), None);
        assert!(!store.revoke_token(&token.info.id).await.unwrap(), "second revoke is a no-op");
    }

    #[tokio::test]
    async fn tokens_of_one_account_share_it_and_other_accounts_differ() {
        let (_dir, store) = store().await;
        let a1 = store.create_token("a", Scopes::all()).await.unwrap();
        let a2 = store.create_token("a", Scopes::all()).await.unwrap();
        let b = store.create_token("b", Scopes::all()).await.unwrap();
        let account = |t: &NewToken| {
            let store = store.clone();
            let secret = t.secret.clone();
            async move { store.authenticate(&secret).await.unwrap().unwrap().account }
        };
        assert_eq!(account(&a1).await, account(&a2).await);
        assert_ne!(account(&a1).await, account(&b).await);
    }

    #[tokio::test]
    async fn the_secret_is_not_stored_anywhere_in_the_database_file() {
        let (dir, store) = store().await;
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        store.close().await;
        let mut bytes = std::fs::read(dir.path().join(super::super::DB_FILE)).unwrap();
        if let Ok(wal) = std::fs::read(dir.path().join(format!("{}-wal", super::super::DB_FILE))) {
            bytes.extend(wal);
        }
        let secret = token.secret.expose_secret().as_bytes();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret));
        let hash = token_hash(token.secret.expose_secret());
        assert!(bytes.windows(hash.len()).any(|w| w == hash.as_bytes()), "the hash is stored");
    }

    #[tokio::test]
    async fn unknown_and_malformed_tokens_do_not_authenticate() {
        let (_dir, store) = store().await;
        store.create_token("acme", Scopes::all()).await.unwrap();
        for guess in ["", "kbai_pk_", "kbai_pk_0000", "Bearer x", "kbai_sk_abc"] {
            assert_eq!(store.authenticate(&SecretString::from(guess)).await.unwrap(), None);
        }
    }
}
