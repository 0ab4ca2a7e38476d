//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! whatsapp-rust logs through `log` (bridged here) and retries forever without network, so its
//! records are kept at `warn` unless `RUST_LOG` asks for more.
//!
//! Nothing secret reaches a log line: tokens are `SecretString`s (their `Debug` prints
//! `[REDACTED]`), request traces carry method and path only, and no header is logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,tower_http=info,sqlx=warn,whatsapp_rust=warn,wacore=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
