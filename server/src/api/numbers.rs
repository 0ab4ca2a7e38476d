use axum::Json;
use axum::extract::State;
use keebai_protocol::ErrorBody;
use keebai_protocol::{ConnectionType, Number, NumbersResponse, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::responses::AuthErrors;
use super::{ApiError, AppState, Authenticated};
use crate::domain::rfc3339_millis;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The account's paired numbers, oldest first. Not paginated: an account links a handful of
/// devices, not thousands.
#[utoipa::path(
    get,
    path = keebai_protocol::NUMBERS_PATH,
    tag = "channels",
    responses(
        (status = 200, description = "The numbers of the token’s account, oldest first", body = NumbersResponse),
        AuthErrors,
        (status = 503, description = "The store or the channel is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn list(
    auth: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<NumbersResponse>, ApiError> {
    let account = auth.require(Scope::ChannelsRead)?;
    let data = state
        .channels
        .list(account)
        .await?
        .into_iter()
        .map(|channel| Number {
            channel_id: channel.id.to_string(),
            name: channel.name,
            phone_number: channel.phone_number.to_string(),
            push_name: channel.push_name,
            connection_type: ConnectionType::Qr,
            status: channel.status,
            created_at: rfc3339_millis(channel.created_at),
        })
        .collect();
    Ok(Json(NumbersResponse { data }))
}
