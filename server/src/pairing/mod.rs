//! The pairing engine: owns every pairing session's life and fans its events out to subscribers.
//!
//! - `linker`: the [`Linker`] trait, the boundary to whatever does the WhatsApp side of one
//!   pairing attempt (the real client, or the simulated phone); the [`Attempt`] it is handed,
//!   the [`LinkerEvent`]s it reports, and its one hand-over of a linked device
//!   ([`Attempt::linked`], answered with the saved channel).
//! - `state`: a session's replayable state ([`SessionState`]) and the rules for what a new or
//!   resuming subscriber is sent.
//! - `session`: the task that drives one session: the window, attempts, deadlines, and the
//!   channel, recorded through [`crate::channels::ChannelBook`].
//! - `config`: [`PairingConfig`], the window, replay and link timings and the per-account cap.
//! - `registry`: what the engine and the session tasks share (the sessions by id, live counts).
//! - `peers`: [`Peers`], the other servers of a cluster as the engine sees them: where the events
//!   of a session that runs here are published, and how a session that runs elsewhere is
//!   replayed ([`Replica`]) or cancelled. Absent on a server on its own.
//! - `answers`: what the engine answers ([`PairingError`], [`CodeGranted`]), a leaf that the
//!   engine, the drivers, the registry and the peers share.
//! - `engine`: [`PairingEngine`], the public face: create, subscribe, cancel, shutdown. It owns
//!   every task it starts, session drivers and attempts alike, and waits for them when stopped.
//!
//! A session's state lives in a `tokio::sync::watch` channel: the driver writes, each subscriber
//! reads at its own pace. A slow subscriber therefore never delays the driver or other subscribers;
//! it may skip QR codes that were replaced meanwhile, never `connecting` or a terminal event.

mod answers;
mod config;
mod engine;
mod linker;
mod peers;
mod registry;
mod session;
mod state;

pub use answers::{CodeGranted, MAX_CODE_NUMBERS, PairingError};
pub use config::PairingConfig;
pub use engine::{EventStream, PairingEngine, SessionInfo, WeakEngine};
pub use linker::{Attempt, Control, Gone, Linker, LinkerEvent, Report};
pub use peers::{Peers, Replica};
pub use state::SessionState;

#[cfg(test)]
mod tests;
