use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keebai_protocol::ErrorBody;
use keebai_protocol::{ErrorCode, MessageStatus, Scope, SendTextRequest, SendTextResponse};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::params::{channel_id, phone_number};
use super::responses::{AuthErrors, BodyErrors, TemplateOrBulkErrors};
use super::{ApiError, AppState, Authenticated};
use crate::domain::{AccountId, MessageText};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_text))
        .routes(routes!(send_template))
        .routes(routes!(send_bulk))
}

/// Sends a text on a connected QR channel (scope `messages:send`).
#[utoipa::path(
    post,
    path = keebai_protocol::TEXT_PATH,
    tag = "messages",
    request_body = SendTextRequest,
    responses(
        (status = 202, description = "Handed to WhatsApp", body = SendTextResponse),
        BodyErrors,
        AuthErrors,
        (status = 404, description = "No such channel for this account (`CHANNEL_NOT_FOUND`)", body = ErrorBody),
        (status = 409, description = "The channel was unlinked on the phone (`CHANNEL_DISCONNECTED`)", body = ErrorBody),
        (status = 503, description = "The store or the channel is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn send_text(
    auth: Authenticated,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SendTextRequest>,
) -> Result<(StatusCode, Json<SendTextResponse>), ApiError> {
    let account = auth.require(Scope::MessagesSend)?;
    let channel = channel_id(&body.channel_id)?;
    let to = phone_number("to", &body.to)?;
    let text = MessageText::parse(&body.text)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidText, format!("`text` {e}.")))?;
    let message_id = state.channels.send_text(account, &channel, &to, &text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SendTextResponse { message_id: message_id.to_string(), status: MessageStatus::Sent }),
    ))
}

/// Not for QR channels: 400 `QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK` once `channel_id`
/// names one of the account's channels (scope `messages:send`).
#[utoipa::path(
    post,
    path = keebai_protocol::TEMPLATE_PATH,
    tag = "messages",
    request_body = TemplateOrBulkRequest,
    responses(TemplateOrBulkErrors, AuthErrors),
)]
async fn send_template(
    auth: Authenticated,
    state: State<AppState>,
    body: ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    template_or_bulk(auth, state, body).await
}

/// Not for QR channels: 400 `QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK` once `channel_id`
/// names one of the account's channels (scope `messages:send`).
#[utoipa::path(
    post,
    path = keebai_protocol::BULK_PATH,
    tag = "messages",
    request_body = TemplateOrBulkRequest,
    responses(TemplateOrBulkErrors, AuthErrors),
)]
async fn send_bulk(
    auth: Authenticated,
    state: State<AppState>,
    body: ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    template_or_bulk(auth, state, body).await
}

/// What template and bulk bodies must hold here: the rest of a Cloud API body is not read.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only described, never built: the handler reads the body as JSON.
struct TemplateOrBulkRequest {
    /// One of the account's channels.
    #[schema(pattern = r"^ch_[0-9a-f]{32}$")]
    channel_id: String,
}

/// Template and bulk sends are Cloud API features; a linked device (QR channel) cannot do them.
/// Once the token and `channel_id` resolve to one of the account's channels, and every channel
/// here is a QR channel, the answer is 400 `QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK` whatever else
/// the body holds.
async fn template_or_bulk(
    auth: Authenticated,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    let account: AccountId = auth.require(Scope::MessagesSend)?;
    let raw = body.get("channel_id").and_then(Value::as_str).ok_or_else(|| {
        ApiError::refused(ErrorCode::InvalidRequest, "`channel_id` (a string) is required.")
    })?;
    state.channels.get(account, &channel_id(raw)?).await?;
    Err(ApiError::refused(
        ErrorCode::QrNotSupportedForTemplateOrBulk,
        "This channel is connected by QR (a linked device); template and bulk messages need the \
         WhatsApp Cloud API. Send individual texts with /v1/messages/text.",
    ))
}
