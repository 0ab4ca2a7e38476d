//! keebai QR connect widget: a Leptos (CSR) component that starts a pairing session through the
//! widget host, shows each QR on a `<canvas>`, and follows the session to its end.
//!
//! - `machine`: the logic, a plain state machine (tested natively).
//! - `paint`: the QR as modules, and a canvas layout that stays sharp at any pixel ratio.
//! - `wire`: the server's JSON, read from the browser's `JSON.parse`.

pub mod component;
pub mod machine;
pub mod mount;
pub mod paint;
pub mod wire;

pub use component::{QrConnect, QrConnectView};
