use std::net::SocketAddr;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ConnectResponse, ErrorBody, ErrorCode, Scope, StreamEvent};
use keebai_server::App;
use keebai_server::api::AppState;
use keebai_server::config::{LinkerChoice, ServeArgs};
use keebai_server::domain::Scopes;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How long a test waits for any one event before it fails instead of hanging.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

pub const PHONE: &str = "+56912345678";

/// A running server with the simulated linker, a temp data dir and an all-scopes token.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The whatsapp linker's live channels, when it runs.
    pub whatsapp: Option<keebai_server::linker::whatsapp::LiveDevices>,
    /// A token of account `acme` with every scope.
    pub token: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `configure` adjusts the defaults (simulated linker, port 0,
/// 50 ms from `connecting` to `connected`).
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), configure).await
}

/// An app whose codes rotate every second, for tests of rotation.
pub async fn spawn_fast_rotating_app() -> TestApp {
    spawn_app_with(|args| {
        args.qr_first_ttl_secs = 1;
        args.qr_ttl_secs = 1;
    })
    .await
}

/// Like [`spawn_app_with`], on a data dir that may hold data already.
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    let mut args = ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        linker: LinkerChoice::Simulated,
        sim_link_delay_ms: 50,
        ..ServeArgs::default()
    };
    configure(&mut args);
    let app = App::build(dir.path().to_owned(), args).await.expect("the app builds");
    let address = app.local_addr().unwrap();
    let state = app.state().clone();
    let whatsapp = app.whatsapp().cloned();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let token = state.store.create_token("acme", Scopes::all()).await.unwrap();
    TestApp {
        address,
        client: reqwest::Client::new(),
        state,
        whatsapp,
        token: token.secret.expose_secret().to_owned(),
        shutdown,
        server,
        _dir: dir,
    }
}

impl TestApp {
    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// A new token for `account` with exactly `scopes`.
    pub async fn token_with(&self, account: &str, scopes: &[Scope]) -> String {
        let token =
            self.state.store.create_token(account, scopes.iter().copied().collect()).await.unwrap();
        token.secret.expose_secret().to_owned()
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn connect(&self, token: &str, body: Value) -> Response {
        self.post_json("/v1/channels/whatsapp/connect", Some(token), &body).await
    }

    /// Starts a session with the default token and checks the 201.
    pub async fn connect_ok(&self) -> ConnectResponse {
        let response = self.connect(&self.token, json!({"mode": "qr"})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

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
        request.send().await.unwrap()
    }

    /// Opens the session's stream with the default token.
    pub async fn stream(&self, session: &ConnectResponse) -> SseReader {
        self.stream_from(session, None).await
    }

    pub async fn stream_from(
        &self,
        session: &ConnectResponse,
        last_event_id: Option<u64>,
    ) -> SseReader {
        let response = self.open_stream(&self.token, &session.stream_url, last_event_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        SseReader::new(response)
    }

    pub async fn cancel(&self, token: &str, session_id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/v1/channels/whatsapp/connect/{session_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn numbers(&self, token: &str) -> Response {
        self.get("/v1/whatsapp/numbers", Some(token)).await
    }

    pub async fn numbers_ok(&self) -> Vec<keebai_protocol::Number> {
        let response = self.numbers(&self.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<keebai_protocol::NumbersResponse>().await.unwrap().data
    }

    pub async fn sim_scan(&self, qr: &str, phone: &str, outcome: ScanOutcome) -> Response {
        let body =
            json!({"qr": qr, "phone_number": phone, "push_name": "Lucio", "outcome": outcome});
        self.post_json("/sim/scan", None, &body).await
    }

    /// Starts a session, opens its stream and reads its first QR.
    pub async fn session_showing_qr(&self) -> (ConnectResponse, SseReader, String) {
        let session = self.connect_ok().await;
        let mut stream = self.stream(&session).await;
        let qr = stream.next_qr().await;
        (session, stream, qr)
    }

    /// The simulated phone scans `qr`, which must be accepted (202).
    pub async fn scan_ok(&self, qr: &str, phone: &str, outcome: ScanOutcome) {
        let response = self.sim_scan(qr, phone, outcome).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "the scan is accepted");
    }

    /// Runs a whole pairing for `phone` and returns the channel id.
    pub async fn pair(&self, phone: &str) -> String {
        let (_, mut stream, qr) = self.session_showing_qr().await;
        self.scan_ok(&qr, phone, ScanOutcome::Success).await;
        assert_eq!(stream.next_event().await, StreamEvent::Connecting);
        match stream.next_event().await {
            StreamEvent::Connected(c) => c.channel_id,
            other => panic!("expected connected, got {other:?}"),
        }
    }

    /// What the simulated WhatsApp received from a channel.
    pub async fn sim_inbox(&self, channel_id: &str) -> keebai_protocol::sim::SimMessages {
        let path = format!("/sim/messages?channel_id={channel_id}");
        self.get(&path, None).await.json().await.unwrap()
    }

    pub async fn send_text(&self, token: &str, body: Value) -> Response {
        self.post_json("/v1/messages/text", Some(token), &body).await
    }

    /// Stops the server the way SIGTERM does and waits for it; the data directory is handed
    /// back, still there.
    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
        self._dir
    }
}

/// Asserts an error answer: its status, its code, a message, and the JSON shape.
pub async fn assert_error(response: Response, status: StatusCode, code: ErrorCode) -> String {
    assert_eq!(response.status(), status, "status for expected {code}");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: ErrorBody = response.json().await.expect("the documented error shape");
    assert_eq!(body.error.code, code, "{}", body.error.message);
    assert!(!body.error.message.is_empty());
    body.error.message
}

/// Reads a Server-Sent Events response with a real SSE parser.
pub struct SseReader {
    events: BoxStream<'static, Result<eventsource_stream::Event, String>>,
}

impl SseReader {
    pub fn new(response: Response) -> Self {
        let events =
            response.bytes_stream().eventsource().map(|r| r.map_err(|e| e.to_string())).boxed();
        Self { events }
    }

    /// The next event with its id, or `None` once the server closed the stream.
    pub async fn next(&mut self) -> Option<(u64, StreamEvent)> {
        self.next_within(EVENT_TIMEOUT).await
    }

    /// Like [`SseReader::next`], waiting up to `within` instead.
    pub async fn next_within(&mut self, within: Duration) -> Option<(u64, StreamEvent)> {
        let event = tokio::time::timeout(within, self.events.next())
            .await
            .expect("an event (or the end of the stream) within the timeout")?
            .expect("a well-formed SSE stream");
        let id = event.id.parse().expect("a decimal event id");
        Some((id, StreamEvent::parse(&event.event, &event.data).expect("a known event")))
    }

    pub async fn next_event(&mut self) -> StreamEvent {
        self.next().await.expect("another event").1
    }

    pub async fn next_qr(&mut self) -> String {
        match self.next_event().await {
            StreamEvent::Qr(qr) => qr.data,
            other => panic!("expected a QR, got {other:?}"),
        }
    }

    /// Asserts that the server closed the stream.
    pub async fn assert_closed(&mut self) {
        assert!(self.next().await.is_none(), "the stream should be closed");
    }
}
