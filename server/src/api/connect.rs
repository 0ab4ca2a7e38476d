use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use keebai_protocol::{ConnectRequest, ConnectResponse, ErrorCode, Scope, stream_path};
use keebai_protocol::{ErrorBody, EventName};
use keebai_protocol::{PairingCodeRequest, PairingCodeResponse};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::params::phone_number;
use super::responses::{AuthErrors, BodyErrors};
use super::{ApiError, AppState, Authenticated};
use crate::domain::{ChannelName, SessionId};

/// One message of the `text/event-stream` (keep-alive comments aside), as SSE parsers read
/// it. `data` is JSON: a `QrEvent` for `qr`, a `PairingCodeEvent` for `pairing_code`, `{}` for
/// `connecting`, a `ConnectedEvent`, a `FailedEvent` or a `DisconnectedEvent`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only described: `stream` writes these through axum's `Event`.
pub struct StreamMessage {
    event: EventName,
    /// Increasing within the session; send the last one back as `Last-Event-ID` to resume.
    #[schema(pattern = r"^[0-9]+$")]
    id: String,
    /// The event's JSON data (see above).
    data: String,
}

/// Keep-alive comments keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(cancel))
        .routes(routes!(stream))
        .routes(routes!(pairing_code))
}

/// Checks the connect body in the order a caller fixes it: the mode, what QR mode cannot do,
/// then the shape and the name.
fn parse_connect(body: Value) -> Result<ChannelName, ApiError> {
    let bad = |code, message: &str| ApiError::refused(code, message);
    let Value::Object(fields) = &body else {
        return Err(bad(ErrorCode::InvalidRequest, "The body must be a JSON object."));
    };
    match fields.get("mode") {
        None => {
            return Err(bad(ErrorCode::InvalidMode, "`mode` is required; use \"qr\"."));
        }
        Some(Value::String(mode)) if mode == "qr" => {}
        Some(_) => return Err(bad(ErrorCode::InvalidMode, "`mode` must be \"qr\".")),
    }
    if fields.contains_key("pipeline_id") || fields.contains_key("coexistence_enabled") {
        return Err(bad(
            ErrorCode::QrModeCannotUseCoexistenceOrPipeline,
            "QR mode links a device and cannot use `pipeline_id` or `coexistence_enabled`.",
        ));
    }
    let request: ConnectRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidRequest, e.to_string()))?;
    match request.name {
        None => Ok(ChannelName::default_name()),
        Some(name) => ChannelName::parse(&name)
            .map_err(|e| ApiError::refused(ErrorCode::InvalidName, format!("`name` {e}."))),
    }
}

/// Starts a QR pairing session (scope `channels:connect`).
#[utoipa::path(
    post,
    path = keebai_protocol::CONNECT_PATH,
    tag = "pairing",
    request_body = ConnectRequest,
    responses(
        (status = 201, description = "The session: watch `stream_url` for its codes", body = ConnectResponse),
        BodyErrors,
        (status = 401, description = "No valid token (`UNAUTHENTICATED`)", body = ErrorBody),
        (status = 403, description = "The token lacks the scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 429, description = "Too many live sessions for this account (`TOO_MANY_SESSIONS`) or too many failed authentications (`TOO_MANY_AUTH_FAILURES`)", body = ErrorBody),
        (status = 503, description = "The store or the channel is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn create(
    auth: Authenticated,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<ConnectResponse>), ApiError> {
    let account = auth.require(Scope::ChannelsConnect)?;
    let name = parse_connect(body)?;
    let session = state.engine.create(account, name).await?;
    tracing::info!(session = %session.id, "pairing session started");
    Ok((
        StatusCode::CREATED,
        Json(ConnectResponse {
            stream_url: stream_path(session.id.as_str()),
            session_id: session.id.to_string(),
            expires_in: session.expires_in.as_secs(),
        }),
    ))
}

/// A session id that is not even well formed cannot exist: it is reported like a missing one.
fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::SessionNotFound)
}

/// The session's Server-Sent Events (scope `channels:connect`): `qr` (a fresh code about
/// every 20 s), `connecting`, then one terminal event (`connected`, `failed` or
/// `disconnected`) after which the stream closes. Each event has an increasing `id`; send it
/// back as `Last-Event-ID` to resume. Keep-alive comments every 15 s.
#[utoipa::path(
    get,
    path = keebai_protocol::STREAM_ROUTE,
    tag = "pairing",
    params(
        ("session_id" = String, Path, description = "`qrs_` + 32 hex digits"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "Events `qr` (data: QrEvent), `pairing_code` (data: PairingCodeEvent), `connecting` (data: `{}`), `connected` (ConnectedEvent), `failed` (FailedEvent), `disconnected` (DisconnectedEvent)", content_type = "text/event-stream", body = StreamMessage),
        AuthErrors,
        (status = 404, description = "No such session for this account, or it ended over 60 s ago (`SESSION_NOT_FOUND`)", body = ErrorBody),
    ),
)]
async fn stream(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account = auth.require(Scope::ChannelsConnect)?;
    let id = session_id(&raw_id)?;
    // The browser's EventSource resends the last id it saw; anything unparsable means "new".
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let events =
        state.engine.subscribe(account, &id, last_event_id).await?.map(|(event_id, event)| {
            Ok::<_, Infallible>(
                Event::default()
                    .id(event_id.to_string())
                    .event(event.name().as_str())
                    .data(event.data_json()),
            )
        });
    let mut response =
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    super::sse::unbuffered(response.headers_mut());
    Ok(response)
}

/// Links by phone number instead of QR (scope `channels:connect`): WhatsApp notifies the phone
/// of `phone_number`, where the person types the code (Linked devices > Link a device > Link
/// with phone number instead). The session must still wait for a phone (not scanned, not
/// ended). From now on its stream shows `pairing_code` (with this code, then a new one each time
/// one expires) instead of `qr`, and a scan of an earlier QR does nothing. Asking again for the
/// same number answers the current code and sends no new notification; a session may ask for
/// up to 3 numbers.
#[utoipa::path(
    post,
    path = keebai_protocol::PAIRING_CODE_ROUTE,
    tag = "pairing",
    params(("session_id" = String, Path, description = "`qrs_` + 32 hex digits")),
    request_body = PairingCodeRequest,
    responses(
        (status = 200, description = "The code (also on the stream as `pairing_code`)", body = PairingCodeResponse),
        BodyErrors,
        AuthErrors,
        (status = 404, description = "No such session for this account (`SESSION_NOT_FOUND`)", body = ErrorBody),
        (status = 409, description = "The session was scanned already, or ended (`SESSION_NOT_WAITING`)", body = ErrorBody),
        (status = 429, description = "Codes asked for too many numbers in this session, or WhatsApp gives no more codes for now (`TOO_MANY_CODE_REQUESTS`)", body = ErrorBody),
        (status = 503, description = "The server that runs the session did not answer; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn pairing_code(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<PairingCodeRequest>,
) -> Result<Json<PairingCodeResponse>, ApiError> {
    let account = auth.require(Scope::ChannelsConnect)?;
    let id = session_id(&raw_id)?;
    let phone = phone_number("phone_number", &body.phone_number)?;
    let granted = state.engine.request_code(account, &id, phone).await?;
    Ok(Json(PairingCodeResponse { code: granted.code, expires_at: granted.expires_at }))
}

/// Cancels the session (scope `channels:connect`): its stream ends with `failed`
/// `cancelled`. Cancelling a session that already ended is a no-op.
#[utoipa::path(
    delete,
    path = keebai_protocol::SESSION_ROUTE,
    tag = "pairing",
    params(("session_id" = String, Path, description = "`qrs_` + 32 hex digits")),
    responses(
        (status = 204, description = "Cancelled (or already over)"),
        AuthErrors,
        (status = 404, description = "No such session for this account (`SESSION_NOT_FOUND`)", body = ErrorBody),
    ),
)]
async fn cancel(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let account = auth.require(Scope::ChannelsConnect)?;
    state.engine.cancel(account, &session_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn code(body: Value) -> Option<ErrorCode> {
        match parse_connect(body) {
            Ok(_) => None,
            Err(ApiError::Refused(code, _)) => Some(code),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn each_bad_body_gets_its_own_code() {
        assert_eq!(code(json!({"mode": "qr"})), None);
        assert_eq!(code(json!({"mode": "qr", "name": "Ventas"})), None);
        assert_eq!(code(json!([])), Some(ErrorCode::InvalidRequest));
        assert_eq!(code(json!({})), Some(ErrorCode::InvalidMode));
        assert_eq!(code(json!({"mode": "sms"})), Some(ErrorCode::InvalidMode));
        assert_eq!(code(json!({"mode": 1})), Some(ErrorCode::InvalidMode));
        assert_eq!(
            code(json!({"mode": "qr", "pipeline_id": "p"})),
            Some(ErrorCode::QrModeCannotUseCoexistenceOrPipeline)
        );
        assert_eq!(
            code(json!({"mode": "qr", "coexistence_enabled": false})),
            Some(ErrorCode::QrModeCannotUseCoexistenceOrPipeline)
        );
        assert_eq!(code(json!({"mode": "qr", "name": 5})), Some(ErrorCode::InvalidRequest));
        assert_eq!(code(json!({"mode": "qr", "nmae": "x"})), Some(ErrorCode::InvalidRequest));
        assert_eq!(code(json!({"mode": "qr", "name": ""})), Some(ErrorCode::InvalidName));
        assert_eq!(
            code(json!({"mode": "qr", "name": "x".repeat(101)})),
            Some(ErrorCode::InvalidName)
        );
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,120}".prop_map(Value::from),
            Just(Value::from("qr")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("mode".to_owned()),
                        Just("name".to_owned()),
                        Just("pipeline_id".to_owned()),
                        ".{0,8}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the body, parsing answers a name or a 400 with a known code, never a panic,
        /// and accepts exactly the bodies the contract allows.
        #[test]
        fn any_body_is_accepted_only_when_it_follows_the_contract(body in any_json()) {
            let accepted = parse_connect(body.clone());
            let fields = body.as_object();
            let valid = fields.is_some_and(|f| {
                f.get("mode") == Some(&Value::from("qr"))
                    && f.keys().all(|k| k == "mode" || k == "name")
                    // `"name": null` counts as not given.
                    && f.get("name").is_none_or(|n| {
                        n.is_null() || n.as_str().is_some_and(|n| ChannelName::parse(n).is_ok())
                    })
            });
            match accepted {
                Ok(name) => {
                    prop_assert!(valid, "accepted {body}");
                    let expected = fields.and_then(|f| f.get("name")).and_then(Value::as_str).map(str::trim).unwrap_or("WhatsApp QR");
                    prop_assert_eq!(name.as_str(), expected);
                }
                Err(ApiError::Refused(code, message)) => {
                    prop_assert!(!valid, "rejected valid {body} with {code}");
                    prop_assert!(!message.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }
}
