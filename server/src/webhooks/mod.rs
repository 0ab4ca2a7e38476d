//! Signed webhooks (issue #15), being built: the pieces that decide what is safe to send and
//! how it is signed come first; endpoints, the outbox and delivery build on them.
//!
//! - [`signing`]: Standard Webhooks signatures and `whsec_` secrets.
//! - [`target`]: which URLs and addresses a webhook may reach (server-side request forgery).
//! - [`deliver`]: one signed POST and its outcome (status, latency, the start of the answer).
//! - [`retry`]: when a failed delivery is tried again (back-off with jitter, 24 hours).

pub mod deliver;
pub mod retry;
pub mod signing;
pub mod target;
