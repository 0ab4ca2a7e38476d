use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use keebai_protocol::{ErrorCode, MessageStatus, Scope, SendTextRequest, SendTextResponse};
use serde_json::Value;

use super::json::ApiJson;
use super::{ApiError, AppState, Authenticated};
use crate::domain::{AccountId, ChannelId, MessageText, PhoneNumber};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages/text", post(send_text))
        .route("/v1/messages/template", post(template_or_bulk))
        .route("/v1/messages/bulk", post(template_or_bulk))
}

fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidId, format!("`channel_id`: {e}.")))
}

async fn send_text(
    auth: Authenticated,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SendTextRequest>,
) -> Result<(StatusCode, Json<SendTextResponse>), ApiError> {
    let account = auth.require(Scope::MessagesSend)?;
    let channel = channel_id(&body.channel_id)?;
    let to = PhoneNumber::parse(&body.to)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidPhoneNumber, format!("`to`: {e}.")))?;
    let text = MessageText::parse(&body.text)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidText, format!("`text` {e}.")))?;
    let message_id = state.channels.send_text(account, &channel, &to, &text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SendTextResponse { message_id: message_id.to_string(), status: MessageStatus::Sent }),
    ))
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
        ApiError::bad_request(ErrorCode::InvalidRequest, "`channel_id` (a string) is required.")
    })?;
    state.channels.get(account, &channel_id(raw)?).await?;
    Err(ApiError::bad_request(
        ErrorCode::QrNotSupportedForTemplateOrBulk,
        "This channel is connected by QR (a linked device); template and bulk messages need the \
         WhatsApp Cloud API. Send individual texts with /v1/messages/text.",
    ))
}
