//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Nothing secret reaches a log line: tokens are `SecretString`s (their `Debug` prints
//! `[REDACTED]`), request traces carry method and path only, and no header is logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
