//! [`Linker`](crate::pairing::Linker) implementations.
//!
//! - `simulated`: the declared test and demo device ("simulated phone"), selected explicitly with
//!   `--linker simulated`, never as a fallback.
//! - `whatsapp` (whatsapp-rust) is the default linker; until it lands, asking for it stops the
//!   server at start with a clear message.

pub mod simulated;

pub use simulated::{ScanError, SimConfig, SimulatedLinker};
