//! keebai QR connect widget: a Leptos (CSR) component that starts a pairing session through the
//! widget host, shows each QR on a `<canvas>` (or, for a phone number, a pairing code), and
//! follows the session to its end, in the person's language.
//!
//! - `machine`: the logic, a plain state machine (tested natively).
//! - `i18n`: every text, in English, Spanish and Brazilian Portuguese, and the host's overrides.
//! - `paint`: the QR as modules, and a canvas layout that stays sharp at any pixel ratio.
//! - `wire`: the server's JSON, read from the browser's `JSON.parse`.

pub mod component;
pub mod i18n;
pub mod machine;
pub mod mount;
pub mod paint;
pub mod wire;

pub use component::{QrConnect, QrConnectView};
