//! The one test harness of keebai QR connect: a server to test against, a client of its API, and
//! a reader of its event streams. The server's integration tests, the CLI's tests, the
//! end-to-end tests and the benches all use it.
//!
//! - [`app`]: the server in this process ([`TestApp`], from [`spawn_app`]): simulated linker,
//!   port 0, a temp data dir, a token of account `acme` with every scope, and the
//!   [`AppState`](keebai_server::api::AppState) for looking inside.
//! - [`process`]: the real `keebai-server` binary as a child process ([`ServerBinary`],
//!   [`ServerProcess`]): tokens minted with its `token create`, stopped with SIGTERM.
//! - [`api`]: [`Api`], one method per endpoint, for either kind of server; [`assert_error`].
//! - [`sse`]: [`SseReader`], a session's Server-Sent Events as
//!   [`StreamEvent`](keebai_protocol::StreamEvent)s, each wait bounded.
//! - [`stalled`]: [`StalledSubscriber`], a raw client of a stream that stops reading.
//! - [`wait`]: [`eventually`], for conditions nothing announces.
//! - [`postgres`]: [`fresh_database`], a database of its own for each Postgres test.
//!
//! Every wait has a bound, so a bug fails a test instead of hanging it.

pub mod api;
pub mod app;
pub mod postgres;
pub mod process;
pub mod sse;
pub mod stalled;
pub mod wait;

pub use api::{Api, assert_error};
pub use app::{
    TestApp, spawn_app, spawn_app_in, spawn_app_with, spawn_fast_rotating_app, spawn_postgres_app,
};
pub use postgres::{OwnPostgres, fresh_database};
pub use process::{Exit, Serve, ServerBinary, ServerProcess};
pub use sse::{EVENT_TIMEOUT, SseReader};
pub use stalled::StalledSubscriber;
pub use wait::eventually;

/// The simulated phone's number in tests.
pub const PHONE: &str = "+56912345678";

/// The account of a [`TestApp`]'s default token.
pub const ACCOUNT: &str = "acme";
