//! Waiting for a condition the test cannot be told about, in real time and bounded.

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds; panics naming `what` after `within`.
pub async fn eventually(what: &str, within: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
