use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keebai_protocol::{ConnectionType, Number, NumbersResponse, Scope};

use super::{ApiError, AppState, Authenticated};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/whatsapp/numbers", get(list))
}

/// The account's paired numbers, oldest first. Not paginated: an account links a handful of
/// devices, not thousands.
async fn list(
    auth: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<NumbersResponse>, ApiError> {
    let account = auth.require(Scope::ChannelsRead)?;
    let data = state
        .store
        .list_channels(account)
        .await?
        .into_iter()
        .map(|channel| Number {
            channel_id: channel.id.to_string(),
            name: channel.name,
            phone_number: channel.phone_number,
            push_name: channel.push_name,
            connection_type: ConnectionType::Qr,
            status: channel.status,
            created_at: channel.created_at,
        })
        .collect();
    Ok(Json(NumbersResponse { data }))
}
