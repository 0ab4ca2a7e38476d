use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(keebai_protocol::HEALTH_PATH, get(healthz))
}

/// 200 while the server is serving. Liveness only: a store that is briefly unwritable shows in
/// the routes that need it (503), not here.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
