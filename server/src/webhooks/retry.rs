//! When a failed delivery is tried again: exponential back-off with jitter, for at least 24
//! hours.
//!
//! The first retry comes 5 s after the first failure, and each next one waits twice as long,
//! up to 4 hours between tries; each wait is spread by ±20 % so that the deliveries of many
//! endpoints that failed together (a receiver's outage) do not come back in lockstep. A
//! delivery whose first attempt is 24 hours old or more is not tried again: it is marked
//! failed (and can still be sent again by hand). With the waits unspread that is 18 attempts,
//! the last one 25.7 hours after the first.

use std::time::Duration;

/// The wait after the first failure.
pub const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest wait between two tries.
pub const LONGEST_WAIT: Duration = Duration::from_secs(4 * 60 * 60);
/// How long a delivery is tried, from its first attempt.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// How far a wait is spread, each way.
const SPREAD: f64 = 0.2;

/// When tries come: [`FIRST_WAIT`], doubling up to [`LONGEST_WAIT`], for [`GIVE_UP_AFTER`].
/// Tests shorten the first wait and the whole span (hidden server flags); the product does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first_wait: Duration,
    pub longest_wait: Duration,
    pub give_up_after: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { first_wait: FIRST_WAIT, longest_wait: LONGEST_WAIT, give_up_after: GIVE_UP_AFTER }
    }
}

impl Schedule {
    /// The wait before the next try, after `failures` failed attempts (1 or more). `jitter` is
    /// a uniform sample in `[0, 1)`; `0.5` gives the unspread wait.
    pub fn wait(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        let base = self.first_wait.saturating_mul(1 << doublings).min(self.longest_wait);
        base.mul_f64(1.0 + SPREAD * (2.0 * jitter.clamp(0.0, 1.0) - 1.0))
    }

    /// The wait before the next try of a delivery first attempted `age` ago that has failed
    /// `failures` times, or `None` when it is given up.
    pub fn next_try(&self, age: Duration, failures: u32, jitter: f64) -> Option<Duration> {
        (age < self.give_up_after).then(|| self.wait(failures, jitter))
    }
}

/// A jitter sample from the operating system's random numbers.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    // Without random numbers the wait is simply unspread.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(failures: u32, jitter: f64) -> Duration {
        Schedule::default().wait(failures, jitter)
    }

    fn next_try(age: Duration, failures: u32, jitter: f64) -> Option<Duration> {
        Schedule::default().next_try(age, failures, jitter)
    }

    #[test]
    fn waits_double_from_5_seconds_up_to_4_hours() {
        let waits: Vec<u64> = (1..=14).map(|n| wait(n, 0.5).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 14400, 14400]
        );
        assert_eq!(wait(1_000, 0.5), LONGEST_WAIT, "no overflow however many failures");
    }

    #[test]
    fn jitter_spreads_a_wait_by_a_fifth_each_way() {
        assert_eq!(wait(3, 0.0), Duration::from_secs(16));
        let longest = wait(3, 0.999_999).as_secs_f64();
        assert!((23.99..24.0).contains(&longest), "{longest}");
        for _ in 0..1000 {
            let sample = jitter();
            assert!((0.0..1.0).contains(&sample), "{sample}");
            let spread = wait(5, sample).as_secs_f64();
            assert!((64.0..=96.0).contains(&spread), "{spread}");
        }
    }

    /// Tried for at least 24 hours, then given up: replaying the schedule from the first failure.
    #[test]
    fn a_delivery_is_tried_for_24_hours_then_given_up() {
        let mut age = Duration::ZERO;
        let mut attempts = 1;
        while let Some(wait) = next_try(age, attempts, 0.5) {
            age += wait;
            attempts += 1;
        }
        assert!(age >= GIVE_UP_AFTER, "{age:?}");
        assert_eq!(attempts, 18);
        assert!(age < GIVE_UP_AFTER + LONGEST_WAIT, "{age:?}");
    }
}
