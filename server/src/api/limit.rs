//! Failed-authentication limiting per client address.
//!
//! Each client IP may fail authentication `per_minute` times a minute (a burst of that many,
//! refilled evenly; GCRA through `governor`). A failure over that blocks the address: until
//! the limiter would accept its next failure, *every* request from it that needs a token gets
//! 429 `TOO_MANY_AUTH_FAILURES` with `Retry-After`, a valid token included, so a blocked client
//! learns nothing about the tokens it tries. Clients that authenticate are never counted.
//!
//! The address is the TCP peer's: behind a reverse proxy every client shares the proxy's
//! address (X-Forwarded-For is not trusted, since any client can send it). Calls that come
//! from inside the process (the widget host's embedded mode) carry no address and are not
//! limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Addresses tracked before the limiter forgets those that have recovered.
const PRUNE_ABOVE: usize = 10_000;

pub struct AuthFailures<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    blocked: Mutex<HashMap<IpAddr, C::Instant>>,
    clock: C,
}

impl AuthFailures {
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AuthFailures<C> {
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        let limiter = RateLimiter::new(
            Quota::per_minute(per_minute),
            DefaultKeyedStateStore::default(),
            clock.clone(),
        );
        Self { limiter, blocked: Mutex::default(), clock }
    }

    /// `Err(retry after)` while `ip` is blocked.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&ip) {
            Some(until) if *until > now => Err(until.duration_since(now).into()),
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication; `Err(retry after)` when it went over the limit, which
    /// blocks `ip` for that long.
    pub fn fail(&self, ip: IpAddr) -> Result<(), Duration> {
        let Err(not_until) = self.limiter.check_key(&ip) else { return Ok(()) };
        let now = self.clock.now();
        let wait: Duration = not_until.wait_time_from(now);
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() > PRUNE_ABOVE {
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        blocked.insert(ip, now + wait.into());
        Err(wait)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_client_over_its_failures_is_blocked_until_the_next_one_would_be_allowed() {
        let clock = FakeRelativeClock::default();
        let limits = AuthFailures::with_clock(NonZeroU32::new(6).unwrap(), clock.clone());
        for _ in 0..6 {
            assert_eq!(limits.check(A), Ok(()));
            assert_eq!(limits.fail(A), Ok(()));
        }
        // Six a minute: one more every 10 s.
        let wait = limits.fail(A).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(limits.check(A), Err(Duration::from_secs(10)));
        // Other clients are not affected.
        assert_eq!(limits.check(B), Ok(()));
        assert_eq!(limits.fail(B), Ok(()));

        clock.advance(Duration::from_secs(4));
        assert_eq!(limits.check(A), Err(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert_eq!(limits.check(A), Ok(()));
        // One failure refilled, not a new burst.
        assert_eq!(limits.fail(A), Ok(()));
        assert!(limits.fail(A).is_err());
    }
}
