//! The simulated phone's routes. They stand for a person's phone, not for an API user, so they
//! take no token; they exist only when the server runs with `--linker simulated`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keebai_protocol::ErrorCode;
use keebai_protocol::sim::{
    MESSAGES_PATH, SCAN_PATH, SimMessages, SimScanRequest, SimUnlinkRequest, UNLINK_PATH,
};
use serde::Deserialize;

use super::error::ApiError;
use super::json::ApiJson;
use super::params::channel_id;
use crate::channels::Channels;
use crate::domain::PhoneNumber;
use crate::linker::{ScanError, SimulatedLinker};

/// What the phone's routes reach: the simulated linker, and the channels it unlinks.
#[derive(Clone)]
struct Phone {
    sim: SimulatedLinker,
    channels: Channels,
}

pub fn router(sim: SimulatedLinker, channels: Channels) -> Router {
    Router::new()
        .route(SCAN_PATH, post(scan))
        .route(UNLINK_PATH, post(unlink))
        .route(MESSAGES_PATH, get(messages))
        .with_state(Phone { sim, channels })
}

/// 202: the session whose current QR this is goes on to the outcome's events.
async fn scan(
    State(phone): State<Phone>,
    ApiJson(body): ApiJson<SimScanRequest>,
) -> Result<StatusCode, ApiError> {
    let number = PhoneNumber::parse(&body.phone_number).map_err(|e| {
        ApiError::refused(ErrorCode::InvalidPhoneNumber, format!("`phone_number`: {e}."))
    })?;
    match phone.sim.scan(&body.qr, number, body.push_name, body.outcome) {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(ScanError::Expired) => Err(ApiError::refused(
            ErrorCode::QrExpired,
            "This QR code is no longer the session's current code (it rotated, was used, or the session ended).",
        )),
        Err(ScanError::Unknown) => {
            Err(ApiError::refused(ErrorCode::QrNotFound, "No session ever showed this QR code."))
        }
    }
}

/// 204: the channel is now `disconnected`, as when a person removes the linked device.
async fn unlink(
    State(phone): State<Phone>,
    ApiJson(body): ApiJson<SimUnlinkRequest>,
) -> Result<StatusCode, ApiError> {
    let id = channel_id(&body.channel_id)?;
    if phone.channels.unlink_simulated(&id).await? {
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
    State(phone): State<Phone>,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<SimMessages>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::refused(ErrorCode::InvalidRequest, e.body_text()))?;
    let raw = query.channel_id.ok_or_else(|| {
        ApiError::refused(
            ErrorCode::InvalidRequest,
            "The `channel_id` query parameter is required.",
        )
    })?;
    Ok(Json(SimMessages { data: phone.sim.messages(&channel_id(&raw)?) }))
}
