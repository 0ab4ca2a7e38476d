//! A client of a running server's HTTP API: one method per endpoint, and the error shape.

use keebai_protocol::sim::{LIVE_PATH, ScanOutcome, SimLive, SimMessages};
use keebai_protocol::{
    ConnectResponse, ErrorBody, ErrorCode, Number, NumbersResponse, StreamEvent,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::sse::SseReader;

/// A client of one server, acting with one token. Methods that take a token use it instead;
/// the `_ok` helpers use this one and check the success status.
#[derive(Clone)]
pub struct Api {
    /// For requests no method here makes.
    pub client: reqwest::Client,
    base_url: String,
    /// The token this client acts with.
    pub token: String,
}

impl Api {
    /// A client of the server at `base_url` (`http://host:port`).
    pub fn new(client: reqwest::Client, base_url: String, token: String) -> Self {
        Self { client, base_url, token }
    }

    /// A client of the same server acting with `token` (another account's, say).
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: token.to_owned(), ..self.clone() }
    }

    /// `http://host:port`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the server answers")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the server answers")
    }

    /// `POST /v1/channels/whatsapp/connect`.
    pub async fn connect(&self, token: &str, body: Value) -> Response {
        self.post_json("/v1/channels/whatsapp/connect", Some(token), &body).await
    }

    /// Starts a QR session and checks the 201.
    pub async fn connect_ok(&self) -> ConnectResponse {
        let response = self.connect(&self.token, json!({"mode": "qr"})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a ConnectResponse")
    }

    /// `GET` a session's `stream_url`, resuming after `last_event_id` if given.
    pub async fn open_stream(
        &self,
        token: &str,
        stream_url: &str,
        last_event_id: Option<u64>,
    ) -> Response {
        let mut request = self.client.get(self.url(stream_url)).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        request.send().await.expect("the server answers")
    }

    /// Opens the session's stream and checks the 200.
    pub async fn stream(&self, session: &ConnectResponse) -> SseReader {
        self.stream_from(session, None).await
    }

    /// Like [`Api::stream`], resuming after `last_event_id`.
    pub async fn stream_from(
        &self,
        session: &ConnectResponse,
        last_event_id: Option<u64>,
    ) -> SseReader {
        let response = self.open_stream(&self.token, &session.stream_url, last_event_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        SseReader::new(response)
    }

    /// `DELETE /v1/channels/whatsapp/connect/{session_id}`.
    pub async fn cancel(&self, token: &str, session_id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/v1/channels/whatsapp/connect/{session_id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers")
    }

    /// `GET /v1/whatsapp/numbers`.
    pub async fn numbers(&self, token: &str) -> Response {
        self.get("/v1/whatsapp/numbers", Some(token)).await
    }

    /// The numbers, after checking the 200.
    pub async fn numbers_ok(&self) -> Vec<Number> {
        let response = self.numbers(&self.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<NumbersResponse>().await.expect("a NumbersResponse").data
    }

    /// `POST /v1/messages/text`.
    pub async fn send_text(&self, token: &str, body: Value) -> Response {
        self.post_json("/v1/messages/text", Some(token), &body).await
    }

    /// `POST /sim/scan`: the simulated phone (push name "Lucio") scans `qr`.
    pub async fn sim_scan(&self, qr: &str, phone: &str, outcome: ScanOutcome) -> Response {
        let body =
            json!({"qr": qr, "phone_number": phone, "push_name": "Lucio", "outcome": outcome});
        self.post_json("/sim/scan", None, &body).await
    }

    /// The simulated phone scans `qr`, which must be accepted (202).
    pub async fn scan_ok(&self, qr: &str, phone: &str, outcome: ScanOutcome) {
        let response = self.sim_scan(qr, phone, outcome).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "the scan is accepted");
    }

    /// What the simulated WhatsApp received from a channel (`GET /sim/messages`).
    pub async fn sim_inbox(&self, channel_id: &str) -> SimMessages {
        let path = format!("/sim/messages?channel_id={channel_id}");
        self.get(&path, None).await.json().await.expect("SimMessages")
    }

    /// `POST …/{session_id}/pairing-code` with `{"phone_number": phone}`.
    pub async fn pairing_code(&self, token: &str, session_id: &str, phone: &str) -> Response {
        let path = keebai_protocol::pairing_code_path(session_id);
        self.post_json(&path, Some(token), &json!({"phone_number": phone})).await
    }

    /// The pairing code for `phone`, after checking the 200.
    pub async fn pairing_code_ok(&self, session: &ConnectResponse, phone: &str) -> String {
        let response = self.pairing_code(&self.token, &session.session_id, phone).await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
        let code: keebai_protocol::PairingCodeResponse = response.json().await.expect("a code");
        code.code
    }

    /// `POST /sim/enter-code`: the simulated phone of `phone` (push name "Lucio") types `code`.
    pub async fn sim_enter_code(&self, code: &str, phone: &str, outcome: ScanOutcome) -> Response {
        let body =
            json!({"code": code, "phone_number": phone, "push_name": "Lucio", "outcome": outcome});
        self.post_json(keebai_protocol::sim::ENTER_CODE_PATH, None, &body).await
    }

    /// Cluster mode: the simulated channels this server keeps live (`GET /sim/live`).
    pub async fn sim_live(&self) -> Vec<String> {
        let live: SimLive = self.get(LIVE_PATH, None).await.json().await.expect("SimLive");
        live.data
    }

    /// Starts a session, opens its stream and reads its first QR.
    pub async fn session_showing_qr(&self) -> (ConnectResponse, SseReader, String) {
        let session = self.connect_ok().await;
        let mut stream = self.stream(&session).await;
        let qr = stream.next_qr().await;
        (session, stream, qr)
    }

    /// Runs a whole pairing for `phone` with the simulated linker and returns the channel id.
    pub async fn pair(&self, phone: &str) -> String {
        let (_, mut stream, qr) = self.session_showing_qr().await;
        self.scan_ok(&qr, phone, ScanOutcome::Success).await;
        assert_eq!(stream.next_event().await, StreamEvent::Connecting);
        match stream.next_event().await {
            StreamEvent::Connected(c) => c.channel_id,
            other => panic!("expected connected, got {other:?}"),
        }
    }
}

/// Asserts an error answer: its status, its code, a message, and the JSON shape. Returns the
/// message.
pub async fn assert_error(response: Response, status: StatusCode, code: ErrorCode) -> String {
    assert_eq!(response.status(), status, "status for expected {code}");
    let content_type = response
        .headers()
        .get("content-type")
        .expect("a content type")
        .to_str()
        .expect("an ASCII content type")
        .to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: ErrorBody = response.json().await.expect("the documented error shape");
    assert_eq!(body.error.code, code, "{}", body.error.message);
    assert!(!body.error.message.is_empty());
    body.error.message
}
