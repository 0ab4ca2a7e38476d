//! The two linkers. Each has a pairing side, a [`Linker`](crate::pairing::Linker) that runs
//! attempts, and a run-time side, a [`LiveChannels`](crate::channels::LiveChannels) that keeps
//! the channels it paired and sends on them.
//!
//! - `simulated`: the declared test and demo device ("simulated phone"), selected explicitly with
//!   `--linker simulated`, never as a fallback; both sides are [`SimulatedLinker`].
//! - `whatsapp`: the real linker, a WhatsApp linked device through whatsapp-rust (the default):
//!   [`WhatsappLinker`] pairs, its [`LiveDevices`](whatsapp::LiveDevices) keep channels live.

pub mod simulated;
pub mod whatsapp;

pub use simulated::{CodeError, ScanError, SimConfig, SimulatedLinker};
pub use whatsapp::{WhatsappConfig, WhatsappLinker};
