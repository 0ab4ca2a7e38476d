//! The public HTTP API (`/v1`, `/healthz`) and, with the simulated linker, the phone's `/sim`
//! routes.
//!
//! - `error`: [`ApiError`], the one place where failures become a code, and codes a status.
//! - `json`: the JSON body extractor whose rejections use that same error shape.
//! - `auth`: the bearer-token extractor [`Authenticated`] and its scope check; `limit`: the
//!   failed-authentication limit per client address.
//! - `connect`, `numbers`, `messages`, `webhooks`, `health`, `sim`: one area each, each with
//!   `router()`.
//! - `responses`: answers several routes document alike; `openapi`: the document's base and
//!   the route that serves it.
//! - `params`: values several routes parse alike; `sse`: what every event stream's response
//!   carries.
//!
//! [`routes`] assembles every route in one place; [`layers`] adds what every route shares (body
//! limit, tracing, panics caught into a 500 that says nothing internal).

mod auth;
mod connect;
mod error;
mod health;
mod json;
pub mod limit;
mod messages;
mod numbers;
mod openapi;
mod params;
mod responses;
mod sim;
pub mod sse;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes as described;

pub use auth::Authenticated;
pub use error::{ApiError, status_of};
pub use json::ApiJson;

use crate::channels::Channels;
use crate::cluster::Cluster;
use crate::linker::SimulatedLinker;
use crate::pairing::PairingEngine;
use crate::store::Store;
use crate::webhooks::Webhooks;

/// Request bodies larger than this get 413 `PAYLOAD_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every `/v1` handler can reach; cheap to clone. It knows no linker: pairing goes through
/// the engine, channels through [`Channels`].
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: PairingEngine,
    pub channels: Channels,
    pub webhooks: Webhooks,
    /// This server's part in a cluster (Postgres); `None` on a server on its own.
    pub cluster: Option<Cluster>,
    /// Failed authentications per client address.
    pub auth_failures: Arc<limit::AuthFailures>,
}

/// Every `/v1` route with its description.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(connect::router())
        .merge(numbers::router())
        .merge(messages::router())
        .merge(webhooks::router())
        .routes(described!(openapi::document))
}

/// The OpenAPI document of `/v1`, as `GET /v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    v1().into_openapi()
}

/// Every API route with its state, without a fallback (so that other routes can be merged).
/// The `/sim` routes exist only when `sim` is the running linker.
pub fn routes(state: AppState, sim: Option<SimulatedLinker>) -> Router {
    let (v1, document) = v1().split_for_parts();
    // Serializing a document built from our own types cannot fail; an empty object would only
    // make the document route useless, never the API.
    let document = serde_json::to_vec(&document).unwrap_or_else(|_| b"{}".to_vec());
    let mut router = Router::new()
        .merge(health::router())
        .merge(v1.layer(Extension(openapi::Document(document.into()))))
        .with_state(state.clone());
    if let Some(sim) = sim {
        router = router.merge(sim::router(sim, state.channels, state.cluster));
    }
    router.method_not_allowed_fallback(error::method_not_allowed)
}

/// The layers every route shares: body limit, panics caught into a bare 500, request traces.
pub fn layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
}

/// The API alone, with JSON 404s: what tests and the in-process widget host call.
pub fn app(state: AppState, sim: Option<SimulatedLinker>) -> Router {
    layers(routes(state, sim).fallback(not_found))
}

/// The JSON 404 of an unknown route, as a handler (for routers that end in other services).
pub async fn not_found() -> ApiError {
    ApiError::NoSuchRoute
}
