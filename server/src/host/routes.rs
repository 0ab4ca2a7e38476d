//! `/widget/*`: what the embedded widget calls. Errors use the API's JSON error shape.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use keebai_protocol::{
    ConnectResponse, ErrorCode, WIDGET_NUMBERS_PATH, WIDGET_PAIRING_CODE_ROUTE,
    WIDGET_SESSION_ROUTE, WIDGET_SESSIONS_PATH, WIDGET_STREAM_ROUTE, widget_stream_path,
};
use serde_json::{Value, json};

use super::HostState;
use super::api_client::Unreachable;
use super::bindings::{BROWSER_COOKIE, Bindings};
use crate::api::ApiError;

pub fn router() -> axum::Router<HostState> {
    axum::Router::new()
        .route(WIDGET_SESSIONS_PATH, post(start))
        .route(WIDGET_SESSION_ROUTE, delete(cancel))
        .route(WIDGET_STREAM_ROUTE, get(stream))
        .route(WIDGET_PAIRING_CODE_ROUTE, post(pairing_code))
        .route(WIDGET_NUMBERS_PATH, get(numbers))
}

impl From<Unreachable> for ApiError {
    fn from(error: Unreachable) -> Self {
        ApiError::Unavailable(
            "The pairing service is unreachable right now; retry shortly.".into(),
            Some(error.into()),
        )
    }
}

/// An API answer the browser may see as is (2xx and the caller's own 4xx), or a 503 that hides
/// the host's own problems (a rejected host token is a configuration error, not the browser's).
fn relay(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let cause = anyhow::anyhow!(
            "the API rejected the widget host's token ({status}); check --host-pat"
        );
        return ApiError::Unavailable(
            "The widget host is not configured correctly.".into(),
            Some(cause),
        )
        .into_response();
    }
    if status.is_server_error() {
        let cause = anyhow::anyhow!("the API answered {status}");
        return ApiError::Unavailable(
            "The pairing service failed; retry shortly.".into(),
            Some(cause),
        )
        .into_response();
    }
    response
}

fn cookie(browser: &str) -> Cookie<'static> {
    Cookie::build((BROWSER_COOKIE, browser.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/widget")
        .build()
}

fn browser_of(jar: &CookieJar) -> Option<String> {
    jar.get(BROWSER_COOKIE).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// 404 unless this browser started the session: another browser's session looks missing.
fn require_binding(state: &HostState, jar: &CookieJar, id: &str) -> Result<(), ApiError> {
    match browser_of(jar) {
        Some(browser) if state.bindings.is_bound(id, &browser) => Ok(()),
        _ => Err(ApiError::SessionNotFound),
    }
}

/// A JSON body (`null` when empty), or the API's `INVALID_JSON` error.
fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::refused(ErrorCode::InvalidJson, format!("The body is not valid JSON: {e}"))
    })
}

/// `POST /widget/sessions` `{"name"?}`: starts a session with the host's token and binds it to
/// this browser.
async fn start(
    State(state): State<HostState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let name = match json_body(&body)? {
        Value::Null => None,
        Value::Object(fields) => fields.get("name").cloned(),
        _ => {
            return Err(ApiError::refused(
                ErrorCode::InvalidRequest,
                "The body must be a JSON object.",
            ));
        }
    };
    let mut connect = json!({"mode": "qr"});
    if let Some(name) = name {
        connect["name"] = name;
    }
    let response =
        state.api.call(Method::POST, keebai_protocol::CONNECT_PATH, Some(connect), None).await?;
    if response.status() != StatusCode::CREATED {
        return Ok(relay(response));
    }
    let bytes = axum::body::to_bytes(response.into_body(), crate::api::MAX_BODY_BYTES)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the connect answer: {e}")))?;
    let session: ConnectResponse = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the connect answer: {e}")))?;
    let browser = browser_of(&jar).unwrap_or_else(Bindings::new_browser);
    state.bindings.bind(&session.session_id, &browser);
    let answer = ConnectResponse { stream_url: widget_stream_path(&session.session_id), ..session };
    Ok((StatusCode::CREATED, jar.add(cookie(&browser)), Json(answer)).into_response())
}

/// `GET /widget/sessions/{id}/stream`: the API's SSE, relayed (with `Last-Event-ID`).
async fn stream(
    State(state): State<HostState>,
    jar: CookieJar,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    require_binding(&state, &jar, &id)?;
    let path = keebai_protocol::stream_path(&id);
    let response = state.api.call(Method::GET, &path, None, headers.get("last-event-id")).await?;
    let mut response = relay(response);
    if response.status().is_success() {
        crate::api::sse::unbuffered(response.headers_mut());
    }
    Ok(response)
}

/// `POST /widget/sessions/{id}/pairing-code` `{"phone_number"}`: switches this browser's session
/// to a pairing code; the API's answer (the code, or its error) as is.
async fn pairing_code(
    State(state): State<HostState>,
    jar: CookieJar,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response<Body>, ApiError> {
    require_binding(&state, &jar, &id)?;
    let body = json_body(&body)?;
    let path = keebai_protocol::pairing_code_path(&id);
    Ok(relay(state.api.call(Method::POST, &path, Some(body), None).await?))
}

/// `DELETE /widget/sessions/{id}`: cancels this browser's session.
async fn cancel(
    State(state): State<HostState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    require_binding(&state, &jar, &id)?;
    let path = keebai_protocol::session_path(&id);
    Ok(relay(state.api.call(Method::DELETE, &path, None, None).await?))
}

/// `GET /widget/numbers`: the account's numbers, for the dashboard's list.
async fn numbers(State(state): State<HostState>) -> Result<Response<Body>, ApiError> {
    Ok(relay(state.api.call(Method::GET, keebai_protocol::NUMBERS_PATH, None, None).await?))
}
