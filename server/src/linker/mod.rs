//! [`Linker`](crate::pairing::Linker) implementations.
//!
//! - `simulated`: the declared test and demo device ("simulated phone"), selected explicitly with
//!   `--linker simulated`, never as a fallback.
//! - `whatsapp`: the real linker, a WhatsApp linked device through whatsapp-rust (the default).

pub mod simulated;
pub mod whatsapp;

pub use simulated::{ScanError, SimConfig, SimulatedLinker};
pub use whatsapp::{WhatsappConfig, WhatsappLinker};
