//! The public HTTP API (`/v1`, `/healthz`) and, with the simulated linker, the phone's `/sim`
//! routes.
//!
//! - `error`: [`ApiError`], the one place where failures become a status and a stable code.
//! - `json`: the JSON body extractor whose rejections use that same error shape.
//! - `auth`: the bearer-token extractor [`Authenticated`] and its scope check.
//! - `connect`, `numbers`, `messages`, `health`, `sim`: one area each, each with `router()`.
//!
//! [`app`] merges the areas and adds the layers every route shares (body limit, tracing, panics
//! caught into a 500 that says nothing internal).

mod auth;
mod connect;
mod error;
mod health;
mod json;
pub mod limit;
mod messages;
mod numbers;
pub mod openapi;
mod sim;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use auth::Authenticated;
pub use error::ApiError;
pub use json::ApiJson;

use crate::channels::Channels;
use crate::linker::{SimulatedLinker, WhatsappLinker};
use crate::pairing::PairingEngine;
use crate::store::Store;

/// Request bodies larger than this get 413 `PAYLOAD_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: PairingEngine,
    pub channels: Channels,
    /// Present only with `--linker simulated`; the `/sim` routes exist only then.
    pub sim: Option<SimulatedLinker>,
    /// Present only with `--linker whatsapp`.
    pub whatsapp: Option<WhatsappLinker>,
    /// Failed authentications per client address.
    pub auth_failures: std::sync::Arc<limit::AuthFailures>,
}

/// Every API route with its state, without a fallback (so that other routes can be merged).
pub fn routes(state: AppState) -> Router {
    let (v1, _) = openapi::v1().split_for_parts();
    let mut router = Router::new().merge(health::router()).merge(v1);
    if state.sim.is_some() {
        router = router.merge(sim::router());
    }
    router.method_not_allowed_fallback(error::method_not_allowed).with_state(state)
}

/// The layers every route shares: body limit, panics caught into a bare 500, request traces.
pub fn layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
}

/// The API alone, with JSON 404s: what tests and the in-process widget host call.
pub fn app(state: AppState) -> Router {
    layers(routes(state).fallback(error::not_found))
}

/// A service that answers every request it is given (the host's pages end in one).
pub type PageService = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

/// The JSON 404 as a service, for routers that end in other services.
pub fn not_found_service() -> PageService {
    use tower::ServiceExt;
    tower::util::BoxCloneSyncService::new(
        tower::service_fn(|_request: axum::extract::Request| async {
            Ok::<_, std::convert::Infallible>(error::not_found().await.into_response())
        })
        .map_response(|r| r),
    )
}
