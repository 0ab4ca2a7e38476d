//! The one way a store method talks to its tables: a statement with the store's device bound as
//! `$1`, run on the store's pool, its error mapped with [`db_err`]. Each trait method then
//! states only its SQL and the parameters from `$2` on.

use std::future::Future;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{FromRow, PgPool, Postgres};
use wacore::store::error::Result;

use crate::{PostgresStore, db_err};

impl PostgresStore {
    /// `sql` with this store's device bound as `$1`, for [`PostgresStore::execute`].
    pub(crate) fn query(&self, sql: &'static str) -> Query<'_, Postgres, PgArguments> {
        sqlx::query(sql).bind(&*self.device)
    }

    /// `sql` with this store's device bound as `$1`, its rows read as `O`.
    pub(crate) fn query_as<O>(&self, sql: &'static str) -> QueryAs<'_, Postgres, O, PgArguments>
    where
        O: for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_as(sql).bind(&*self.device)
    }

    /// `sql` with this store's device bound as `$1`, its rows read as their one column.
    pub(crate) fn query_scalar<O>(
        &self,
        sql: &'static str,
    ) -> QueryScalar<'_, Postgres, O, PgArguments>
    where
        (O,): for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_scalar(sql).bind(&*self.device)
    }

    /// Runs `query`, returning the number of rows it affected.
    pub(crate) async fn execute(&self, query: Query<'_, Postgres, PgArguments>) -> Result<u64> {
        Ok(query.execute(&self.pool).await.map_err(db_err)?.rows_affected())
    }

    /// The first row of `query`, if any.
    pub(crate) async fn fetch_optional<Q: Rows>(&self, query: Q) -> Result<Option<Q::Row>> {
        query.optional(&self.pool).await.map_err(db_err)
    }

    /// The first row of `query`, which must return one.
    pub(crate) async fn fetch_one<Q: Rows>(&self, query: Q) -> Result<Q::Row> {
        query.one(&self.pool).await.map_err(db_err)
    }

    /// Every row of `query`.
    pub(crate) async fn fetch_all<Q: Rows>(&self, query: Q) -> Result<Vec<Q::Row>> {
        query.all(&self.pool).await.map_err(db_err)
    }
}

/// A query whose rows are read as `Row`: sqlx's [`QueryAs`] and [`QueryScalar`], which share no
/// trait of their own for fetching.
pub(crate) trait Rows {
    type Row;

    fn optional(
        self,
        pool: &PgPool,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send;

    fn one(self, pool: &PgPool) -> impl Future<Output = sqlx::Result<Self::Row>> + Send;

    fn all(self, pool: &PgPool) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send;
}

/// [`Rows`] for a sqlx query type whose fetch methods read rows as `O`, under `bounds`.
macro_rules! rows_impl {
    ($query:ident where $($bounds:tt)*) => {
        impl<'q, O> Rows for $query<'q, Postgres, O, PgArguments>
        where
            $($bounds)*
        {
            type Row = O;

            async fn optional(self, pool: &PgPool) -> sqlx::Result<Option<O>> {
                self.fetch_optional(pool).await
            }

            async fn one(self, pool: &PgPool) -> sqlx::Result<O> {
                self.fetch_one(pool).await
            }

            async fn all(self, pool: &PgPool) -> sqlx::Result<Vec<O>> {
                self.fetch_all(pool).await
            }
        }
    };
}

rows_impl!(QueryAs where O: for<'r> FromRow<'r, PgRow> + Send + Unpin);
rows_impl!(QueryScalar where (O,): for<'r> FromRow<'r, PgRow>, O: Send + Unpin);
