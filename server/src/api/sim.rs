//! The simulated phone's routes. They stand for a person's phone, not for an API user, so they
//! take no token; they exist only when the server runs with `--linker simulated`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keebai_protocol::ErrorCode;
use keebai_protocol::sim::{
    LIVE_PATH, MESSAGES_PATH, SCAN_PATH, SimLive, SimMessages, SimScanRequest, SimUnlinkRequest,
    UNLINK_PATH,
};
use serde::Deserialize;

use super::error::ApiError;
use super::json::ApiJson;
use super::params::channel_id;
use crate::channels::Channels;
use crate::cluster::Cluster;
use crate::domain::PhoneNumber;
use crate::linker::{ScanError, SimulatedLinker};

/// What the phone's routes reach: the simulated linker, the channels it unlinks, and in a
/// cluster the other servers, whose sessions' codes it may scan too.
#[derive(Clone)]
struct Phone {
    sim: SimulatedLinker,
    channels: Channels,
    cluster: Option<Cluster>,
}

/// The kind of request that carries a scan to the server whose session showed the code.
const SIM_SCAN: &str = "sim_scan";

pub fn router(sim: SimulatedLinker, channels: Channels, cluster: Option<Cluster>) -> Router {
    if let Some(cluster) = &cluster {
        let sim = sim.clone();
        cluster.serve(
            SIM_SCAN,
            std::sync::Arc::new(move |body: String| {
                let outcome = serde_json::from_str::<SimScanRequest>(&body)
                    .map_err(|_| ScanError::Unknown)
                    .and_then(|body| scan_here(&sim, body));
                let reply = match outcome {
                    Ok(()) => "\"accepted\"",
                    Err(ScanError::Expired) => "\"expired\"",
                    Err(ScanError::Unknown) => "\"unknown\"",
                };
                Box::pin(std::future::ready(reply.to_owned()))
            }),
        );
    }
    let mut router = Router::new()
        .route(SCAN_PATH, post(scan))
        .route(UNLINK_PATH, post(unlink))
        .route(MESSAGES_PATH, get(messages));
    if sim.live().is_some() {
        router = router.route(LIVE_PATH, get(live));
    }
    router.with_state(Phone { sim, channels, cluster })
}

fn scan_here(sim: &SimulatedLinker, body: SimScanRequest) -> Result<(), ScanError> {
    // The number was checked by the server that took the request.
    let number = PhoneNumber::parse(&body.phone_number).map_err(|_| ScanError::Unknown)?;
    sim.scan(&body.qr, number, body.push_name, body.outcome)
}

/// 202: the session whose current QR this is goes on to the outcome's events. In a cluster, a
/// code that another server's session showed is scanned there.
async fn scan(
    State(phone): State<Phone>,
    ApiJson(body): ApiJson<SimScanRequest>,
) -> Result<StatusCode, ApiError> {
    PhoneNumber::parse(&body.phone_number).map_err(|e| {
        ApiError::refused(ErrorCode::InvalidPhoneNumber, format!("`phone_number`: {e}."))
    })?;
    let mut outcome = scan_here(&phone.sim, body.clone());
    if let (Err(ScanError::Unknown), Some(cluster)) = (&outcome, &phone.cluster) {
        outcome = scan_elsewhere(cluster, &body).await?;
    }
    match outcome {
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

/// Carries a scan to the server that runs the session which showed the code.
async fn scan_elsewhere(
    cluster: &Cluster,
    body: &SimScanRequest,
) -> Result<Result<(), ScanError>, ApiError> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%error, "could not carry a simulated scan to another server");
        ApiError::unavailable("The server that runs this session did not answer; try again.")
    };
    let owner = cluster.owner_of_qr(&body.qr).await.map_err(|e| unavailable(&e))?;
    let Some(owner) = owner.filter(|owner| owner != cluster.instance_id()) else {
        return Ok(Err(ScanError::Unknown));
    };
    let request = serde_json::to_string(body).map_err(|e| unavailable(&e))?;
    let reply = cluster.call(&owner, SIM_SCAN, request).await.map_err(|e| unavailable(&e))?;
    Ok(match serde_json::from_str::<String>(&reply).as_deref() {
        Ok("accepted") => Ok(()),
        Ok("expired") => Err(ScanError::Expired),
        _ => Err(ScanError::Unknown),
    })
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
    Ok(Json(SimMessages { data: phone.sim.messages(&channel_id(&raw)?).await? }))
}

/// Cluster mode: the simulated channels this server keeps live.
async fn live(State(phone): State<Phone>) -> Json<SimLive> {
    let live = phone.sim.live().unwrap_or_default();
    Json(SimLive { data: live.iter().map(ToString::to_string).collect() })
}
