//! The widget host ("your backend"): the browser-facing routes a dashboard's page talks to, on
//! the page's own origin. They carry no API token and accept none: the host holds the PAT
//! server-side and calls the API with it, so the token never reaches the browser.
//!
//! - `api_client`: how the host reaches the API, either in process (the API's axum `Router` as a
//!   tower `Service`: no socket, same code path) or a remote keebai API over HTTP (reqwest).
//! - `bindings`: which browser started which session (an HttpOnly cookie), so that one browser
//!   cannot watch or cancel another's session.
//! - `pat`: the host's token: `--pat`/`KEEBAI_PAT`, or one minted at first start and kept in
//!   `<data-dir>/host.pat` (mode 0600).
//! - `routes`: `/widget/sessions`, `/widget/sessions/{id}/stream`, `/widget/numbers`.
//! - `pages`: the built dashboard (`dist/`) with its security headers.

mod api_client;
mod bindings;
mod pages;
mod pat;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use api_client::ApiClient;
pub use bindings::Bindings;
pub use pages::{PageService, content_security_policy, not_found_service, pages};
pub use pat::{HOST_PAT_FILE, load_or_mint_pat};

/// What the host routes share; cheap to clone.
#[derive(Clone)]
pub struct HostState {
    pub api: ApiClient,
    pub bindings: Arc<Bindings>,
}

impl HostState {
    /// `binding_ttl` should cover a session's whole life (window and replay).
    pub fn new(api: ApiClient, binding_ttl: Duration) -> Self {
        Self { api, bindings: Arc::new(Bindings::new(binding_ttl)) }
    }
}

/// The `/widget` routes.
pub fn router(state: HostState) -> Router {
    routes::router().with_state(state)
}
