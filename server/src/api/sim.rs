//! The simulated phone's routes. They stand for a person's phone, not for an API user, so they
//! take no token; they exist only when the server runs with `--linker simulated`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keebai_protocol::ErrorCode;
use keebai_protocol::sim::{
    ENTER_CODE_PATH, LIVE_PATH, MESSAGES_PATH, SCAN_PATH, SimEnterCodeRequest, SimLive,
    SimMessages, SimScanRequest, SimUnlinkRequest, UNLINK_PATH,
};
use serde::Deserialize;

use super::error::ApiError;
use super::json::ApiJson;
use super::params::{channel_id, phone_number};
use crate::channels::Channels;
use crate::cluster::Cluster;
use crate::domain::{PhoneNumber, code_key};
use crate::linker::{CodeError, ScanError, SimulatedLinker};

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
/// The kind of request that carries a typed pairing code to the server whose session gave it.
const SIM_ENTER_CODE: &str = "sim_enter_code";

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
    if let Some(cluster) = &cluster {
        let sim = sim.clone();
        cluster.serve(
            SIM_ENTER_CODE,
            std::sync::Arc::new(move |body: String| {
                let outcome = serde_json::from_str::<SimEnterCodeRequest>(&body)
                    .map_err(|_| CodeError::NotFound)
                    .and_then(|body| enter_here(&sim, body));
                Box::pin(std::future::ready(code_reply(outcome)))
            }),
        );
    }
    let mut router = Router::new()
        .route(ENTER_CODE_PATH, post(enter_code))
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
    phone_number("phone_number", &body.phone_number)?;
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

fn enter_here(sim: &SimulatedLinker, body: SimEnterCodeRequest) -> Result<(), CodeError> {
    // The number was checked by the server that took the request.
    let number = PhoneNumber::parse(&body.phone_number).map_err(|_| CodeError::NotFound)?;
    sim.enter_code(&body.code, number, body.push_name, body.outcome)
}

/// A typed code's outcome as another server's reply.
fn code_reply(outcome: Result<(), CodeError>) -> String {
    match outcome {
        Ok(()) => "\"accepted\"".to_owned(),
        Err(CodeError::NotFound) => "\"not_found\"".to_owned(),
        Err(CodeError::Wrong { left }) => format!("{{\"wrong\":{left}}}"),
    }
}

/// 202: the phone typed its session's current code, which goes on as after a scan. A wrong
/// code is 409 `WRONG_CODE` (after the third, the session fails with `code_rejected`); a number
/// no session asked a code for is 404 `CODE_NOT_FOUND`. In a cluster, a code that another
/// server's session gave is typed there.
async fn enter_code(
    State(phone): State<Phone>,
    ApiJson(body): ApiJson<SimEnterCodeRequest>,
) -> Result<StatusCode, ApiError> {
    phone_number("phone_number", &body.phone_number)?;
    let mut outcome = enter_here(&phone.sim, body.clone());
    if let (Err(CodeError::NotFound), Some(cluster)) = (&outcome, &phone.cluster) {
        outcome = enter_elsewhere(cluster, &body).await?;
    }
    match outcome {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(CodeError::NotFound) => Err(ApiError::refused(
            ErrorCode::CodeNotFound,
            "No session asked for a pairing code for this phone number.",
        )),
        Err(CodeError::Wrong { left: 0 }) => Err(ApiError::refused(
            ErrorCode::WrongCode,
            "Wrong code, for the third time: the code is no longer valid.",
        )),
        Err(CodeError::Wrong { left }) => {
            Err(ApiError::refused(ErrorCode::WrongCode, format!("Wrong code; {left} more tries.")))
        }
    }
}

/// Carries a phone's action to the server whose session offered `offer` (a QR, or a pairing
/// code without its dash): that server's reply, or `None` when no other server's session
/// offered it.
async fn to_owner(
    cluster: &Cluster,
    offer: &str,
    kind: &str,
    body: &impl serde::Serialize,
) -> Result<Option<String>, ApiError> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%error, kind, "could not carry the simulated phone's action to another server");
        ApiError::unavailable("The server that runs this session did not answer; try again.")
    };
    let owner = cluster.owner_of_qr(offer).await.map_err(|e| unavailable(&e))?;
    let Some(owner) = owner.filter(|owner| owner != cluster.instance_id()) else {
        return Ok(None);
    };
    let request = serde_json::to_string(body).map_err(|e| unavailable(&e))?;
    let reply = cluster.call(&owner, kind, request).await.map_err(|e| unavailable(&e))?;
    Ok(Some(reply))
}

/// Carries a typed code to the server that runs the session which gave it.
async fn enter_elsewhere(
    cluster: &Cluster,
    body: &SimEnterCodeRequest,
) -> Result<Result<(), CodeError>, ApiError> {
    let typed = code_key(&body.code);
    let Some(reply) = to_owner(cluster, &typed, SIM_ENTER_CODE, body).await? else {
        return Ok(Err(CodeError::NotFound));
    };
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
    Ok(match (reply.as_str(), reply.get("wrong").and_then(serde_json::Value::as_u64)) {
        (Some("accepted"), _) => Ok(()),
        (_, Some(left)) => Err(CodeError::Wrong { left: u32::try_from(left).unwrap_or(0) }),
        _ => Err(CodeError::NotFound),
    })
}

/// Carries a scan to the server that runs the session which showed the code.
async fn scan_elsewhere(
    cluster: &Cluster,
    body: &SimScanRequest,
) -> Result<Result<(), ScanError>, ApiError> {
    let Some(reply) = to_owner(cluster, &body.qr, SIM_SCAN, body).await? else {
        return Ok(Err(ScanError::Unknown));
    };
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
