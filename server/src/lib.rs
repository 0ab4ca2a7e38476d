//! keebai QR connect server: the v1 pairing API over SQLite, the pairing engine and its linkers.
//!
//! Layers, outermost first (each only calls the ones below it):
//! - [`host`]: the widget host ("your backend"): `/widget/*` with a server-held token, pages.
//! - [`api`]: HTTP routes, auth, the error shape.
//! - [`pairing`]: pairing sessions and their event streams; the [`pairing::Linker`] trait.
//! - [`channels`]: paired channels at run time (send, unlink).
//! - [`linker`]: `Linker` implementations (the simulated phone; whatsapp-rust to come).
//! - [`store`]: SQLite through sqlx.
//! - [`domain`]: values parsed at the boundary (ids, phone numbers, names, scopes).
//!
//! [`startup::App`] wires them; [`config::Cli`] is the command line.

pub mod api;
pub mod channels;
pub mod config;
pub mod domain;
pub mod host;
pub mod linker;
pub mod pairing;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;

pub use startup::App;
