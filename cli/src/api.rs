//! A small client of the keebai v1 API.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use keebai_protocol::{
    CONNECT_PATH, ConnectMode, ConnectRequest, ConnectResponse, ErrorBody, ErrorCode,
    NumbersResponse, PairingCodeRequest, PairingCodeResponse, SendTextRequest, SendTextResponse,
    StreamEvent,
};
use keebai_protocol::{CreateWebhookRequest, DeliveryQueued, WebhookCreated, WebhookList};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

/// What went wrong talking to the API. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request did not get an HTTP answer.
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The API answered with an error; `code` is its stable code, printed as the server sent it.
    #[error("{code}: {message}")]
    Api { status: StatusCode, code: String, message: String },
    /// The answer was not what the API documents.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol { url: String, detail: String },
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// An SSE stream of `(id, event)`; an item error or the end of the stream before a terminal
/// event means the connection dropped.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<(u64, StreamEvent), String>> + Send>>;

/// The API at one base URL with one token.
#[derive(Clone)]
pub struct Api {
    base: Url,
    token: SecretString,
    http: reqwest::Client,
}

/// The root cause of a transport error, which is what a person can act on ("connection refused").
fn reason(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

impl Api {
    /// `None` when `base` is not an http(s) URL.
    pub fn new(base: &str, token: SecretString) -> Option<Self> {
        let base = Url::parse(base).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
        let http =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().ok()?;
        Some(Self { base, token, http })
    }

    fn url(&self, path: &str) -> Url {
        // `path` is always one of ours, absolute ("/v1/…"); joining cannot fail for it.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    fn request(&self, method: Method, path: &str) -> (Url, RequestBuilder) {
        let url = self.url(path);
        let builder =
            self.http.request(method, url.clone()).bearer_auth(self.token.expose_secret());
        (url, builder)
    }

    async fn send(url: &Url, request: RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Unreachable { url: url.to_string(), reason: reason(&e) })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => {
                // A code newer than this CLI is printed as the server spelled it.
                let code = match error.code {
                    ErrorCode::Unknown => serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| error.code.to_string()),
                    known => known.to_string(),
                };
                ApiError::Api { status, code, message: error.message }
            }
            Err(_) => ApiError::Protocol {
                url: url.to_string(),
                detail: format!("HTTP {status} without the API's error body"),
            },
        })
    }

    async fn json<T: DeserializeOwned>(
        url: &Url,
        response: reqwest::Response,
    ) -> Result<T, ApiError> {
        response
            .json()
            .await
            .map_err(|e| ApiError::Protocol { url: url.to_string(), detail: reason(&e) })
    }

    /// `POST /v1/channels/whatsapp/connect`.
    pub async fn connect(&self, name: Option<String>) -> Result<ConnectResponse, ApiError> {
        let (url, request) = self.request(Method::POST, CONNECT_PATH);
        let body = ConnectRequest { mode: ConnectMode::Qr, name };
        let response = Self::send(&url, request.json(&body)).await?;
        Self::json(&url, response).await
    }

    /// `POST /v1/channels/whatsapp/connect/{id}/pairing-code`.
    pub async fn pairing_code(
        &self,
        session_id: &str,
        phone_number: String,
    ) -> Result<PairingCodeResponse, ApiError> {
        let path = keebai_protocol::pairing_code_path(session_id);
        let (url, request) = self.request(Method::POST, &path);
        let body = PairingCodeRequest { phone_number };
        let response = Self::send(&url, request.json(&body)).await?;
        Self::json(&url, response).await
    }

    /// Opens a session's SSE stream, resuming after `last_event_id` when given.
    pub async fn open_stream(
        &self,
        stream_url: &str,
        last_event_id: Option<u64>,
    ) -> Result<EventStream, ApiError> {
        let (url, mut request) = self.request(Method::GET, stream_url);
        request = request.header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = Self::send(&url, request).await?;
        let events = response.bytes_stream().eventsource().map(|item| {
            let event = item.map_err(|e| e.to_string())?;
            let id = event.id.parse::<u64>().map_err(|_| format!("bad event id `{}`", event.id))?;
            let parsed =
                StreamEvent::parse(&event.event, &event.data).map_err(|e| e.to_string())?;
            Ok((id, parsed))
        });
        Ok(Box::pin(events))
    }

    /// `DELETE /v1/channels/whatsapp/connect/{id}`.
    pub async fn cancel(&self, session_id: &str) -> Result<(), ApiError> {
        let (url, request) =
            self.request(Method::DELETE, &keebai_protocol::session_path(session_id));
        Self::send(&url, request).await.map(drop)
    }

    /// `GET /v1/whatsapp/numbers`.
    pub async fn numbers(&self) -> Result<NumbersResponse, ApiError> {
        let (url, request) = self.request(Method::GET, keebai_protocol::NUMBERS_PATH);
        let response = Self::send(&url, request).await?;
        Self::json(&url, response).await
    }

    /// `POST /v1/messages/text`.
    pub async fn send_text(&self, body: &SendTextRequest) -> Result<SendTextResponse, ApiError> {
        let (url, request) = self.request(Method::POST, keebai_protocol::TEXT_PATH);
        let response = Self::send(&url, request.json(body)).await?;
        Self::json(&url, response).await
    }

    /// `POST /v1/webhooks`.
    pub async fn create_webhook(
        &self,
        body: &CreateWebhookRequest,
    ) -> Result<WebhookCreated, ApiError> {
        let (url, request) = self.request(Method::POST, keebai_protocol::WEBHOOKS_PATH);
        let response = Self::send(&url, request.json(body)).await?;
        Self::json(&url, response).await
    }

    /// `GET /v1/webhooks`.
    pub async fn webhooks(&self) -> Result<WebhookList, ApiError> {
        let (url, request) = self.request(Method::GET, keebai_protocol::WEBHOOKS_PATH);
        let response = Self::send(&url, request).await?;
        Self::json(&url, response).await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn remove_webhook(&self, webhook_id: &str) -> Result<(), ApiError> {
        let path = keebai_protocol::webhook_path(keebai_protocol::WEBHOOK_ROUTE, webhook_id);
        let (url, request) = self.request(Method::DELETE, &path);
        Self::send(&url, request).await.map(drop)
    }

    /// `POST /v1/webhooks/{id}/test`.
    pub async fn test_webhook(&self, webhook_id: &str) -> Result<DeliveryQueued, ApiError> {
        let path = keebai_protocol::webhook_path(keebai_protocol::WEBHOOK_TEST_ROUTE, webhook_id);
        let (url, request) = self.request(Method::POST, &path);
        let response = Self::send(&url, request).await?;
        Self::json(&url, response).await
    }

    /// The absolute URL of a relative API path, for messages.
    pub fn url_of(&self, path: &str) -> String {
        self.url(path).to_string()
    }
}
