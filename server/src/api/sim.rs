//! The simulated phone's routes. They stand for a person's phone, not for an API user, so they
//! take no token; they exist only when the server runs with `--linker simulated`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keebai_protocol::ErrorCode;
use keebai_protocol::sim::{SimMessages, SimScanRequest, SimUnlinkRequest};
use serde::Deserialize;

use super::json::ApiJson;
use super::{ApiError, AppState};
use crate::domain::{ChannelId, PhoneNumber};
use crate::linker::{ScanError, SimulatedLinker};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sim/scan", post(scan))
        .route("/sim/unlink", post(unlink))
        .route("/sim/messages", get(messages))
}

fn sim(state: &AppState) -> Result<&SimulatedLinker, ApiError> {
    // The routes are only mounted when the simulator runs; this guards against a wiring mistake.
    state
        .sim
        .as_ref()
        .ok_or_else(|| ApiError::NotFound(ErrorCode::NotFound, "No such route.".into()))
}

fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidId, format!("`channel_id`: {e}.")))
}

/// 202: the session whose current QR this is goes on to the outcome's events.
async fn scan(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SimScanRequest>,
) -> Result<StatusCode, ApiError> {
    let phone = PhoneNumber::parse(&body.phone_number).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidPhoneNumber, format!("`phone_number`: {e}."))
    })?;
    match sim(&state)?.scan(&body.qr, phone, body.push_name, body.outcome) {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(ScanError::Expired) => Err(ApiError::Conflict(
            ErrorCode::QrExpired,
            "This QR code is no longer the session's current code (it rotated, was used, or the session ended).".into(),
        )),
        Err(ScanError::Unknown) => {
            Err(ApiError::NotFound(ErrorCode::QrNotFound, "No session ever showed this QR code.".into()))
        }
    }
}

/// 204: the channel is now `disconnected`, as when a person removes the linked device.
async fn unlink(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SimUnlinkRequest>,
) -> Result<StatusCode, ApiError> {
    sim(&state)?;
    let id = channel_id(&body.channel_id)?;
    if state.channels.mark_unlinked(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::ChannelNotFound)
    }
}

#[derive(Deserialize)]
struct MessagesQuery {
    channel_id: Option<String>,
}

async fn messages(
    State(state): State<AppState>,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<SimMessages>, ApiError> {
    let sim = sim(&state)?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(ErrorCode::InvalidRequest, e.body_text()))?;
    let raw = query.channel_id.ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "The `channel_id` query parameter is required.",
        )
    })?;
    Ok(Json(SimMessages { data: sim.messages(&channel_id(&raw)?) }))
}
