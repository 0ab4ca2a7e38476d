//! This server's row in `instances`: its lease, renewed on a timer, and the fence that fires when
//! it could not be renewed in time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::sync::lock;

/// The fence of this server's sessions: cancelled when the lease could not be renewed for
/// `fence_after`, replaced by a fresh token once it is renewed again.
pub(super) struct Lease {
    fence: Mutex<CancellationToken>,
}

impl Lease {
    pub(super) fn new() -> Self {
        Self { fence: Mutex::new(CancellationToken::new()) }
    }

    /// The current fence (see [`crate::pairing::Peers::fence`]).
    pub(super) fn fence(&self) -> CancellationToken {
        lock(&self.fence).clone()
    }
}

/// Seconds as Postgres takes them for `make_interval`.
pub(super) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Creates or renews this server's lease, until `now() + ttl` on the database's clock.
pub(super) async fn register(pool: &PgPool, me: &str, ttl: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instances (id, lease_until) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
    )
    .bind(me)
    .bind(seconds(ttl))
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes this server's row at a clean stop: its sessions ended already, and the others need
/// not wait for the lease to lapse.
pub(super) async fn leave(pool: &PgPool, me: &str) {
    let left = sqlx::query("DELETE FROM instances WHERE id = $1").bind(me).execute(pool).await;
    if let Err(error) = left {
        tracing::warn!(%error, "could not remove this server from the cluster's instances");
    }
}

/// Renews the lease every `renew_every`. When no renewal succeeded for `fence_after`, fires the
/// fence: this server's sessions end, and it starts none until a renewal succeeds again.
pub(super) async fn keep(inner: Arc<Inner>) {
    let config = &inner.config;
    let mut renewed = Instant::now();
    let mut fenced = false;
    let mut ticks = tokio::time::interval(config.renew_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = inner.stop.cancelled() => return,
        }
        let renewal = tokio::time::timeout(
            config.renew_every,
            register(&inner.pool, &inner.me, config.lease_ttl),
        )
        .await;
        match renewal {
            Ok(Ok(())) => {
                renewed = Instant::now();
                if fenced {
                    fenced = false;
                    *lock(&inner.lease.fence) = CancellationToken::new();
                    tracing::info!("cluster lease renewed again; this server takes new sessions");
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "could not renew this server's cluster lease"),
            Err(_) => tracing::warn!("renewing this server's cluster lease timed out"),
        }
        if !fenced && renewed.elapsed() >= config.fence_after {
            fenced = true;
            lock(&inner.lease.fence).cancel();
            tracing::error!(
                "this server could not renew its cluster lease for {} s: its sessions end with \
                 `owner_lost` and it starts none until the database answers again",
                config.fence_after.as_secs()
            );
        }
    }
}
