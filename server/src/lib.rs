//! keebai QR connect server: the v1 pairing API over SQLite or Postgres, the pairing engine and
//! its linkers.
//!
//! Layers, outermost first (each only calls the ones below it):
//! - [`host`]: the widget host ("your backend"): `/widget/*` with a server-held token, pages.
//! - [`api`]: HTTP routes (assembled in one place), auth, the error shape.
//! - [`linker`]: the two linkers, `whatsapp` (whatsapp-rust) and `simulated`; each implements
//!   both [`pairing::Linker`] (attempts) and [`channels::LiveChannels`] (channels at run time).
//! - [`pairing`]: pairing sessions, their event streams and the tasks that run them.
//! - [`channels`]: the only owner of channel rows and status; sending on a channel.
//! - [`store`]: SQLite or Postgres through sqlx (pools, migrations, tokens, messages, locks).
//! - [`domain`]: values parsed at the boundary (ids, phone numbers, names, scopes, times).
//! - [`webhooks`] (being built): Standard Webhooks signing and safe targets.
//!
//! A pairing: `api` asks [`pairing::PairingEngine`] for a session; its driver runs linker
//! attempts as tasks it owns; a linked device is handed over once
//! ([`pairing::Attempt::linked`]), recorded through [`channels::ChannelBook::link`], and then
//! served by the linker's [`channels::LiveChannels`].
//!
//! [`startup::App`] wires them and stops them in order (HTTP, pairing, live channels, store);
//! [`config::Cli`] is the command line.

pub mod api;
pub mod channels;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod host;
pub mod linker;
pub mod migrate;
pub mod pairing;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod webhooks;

pub use startup::App;
