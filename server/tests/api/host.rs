//! The widget host: browser-facing `/widget/*` routes that hold the API token server-side.

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ConnectResponse, ErrorCode, FailureCode, Scope, StreamEvent};
use keebai_server::config::ServeArgs;
use keebai_test_support::{PHONE, SseReader, TestApp, assert_error, spawn_app, spawn_app_with};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// A browser: it keeps the host's cookie and never has a token.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.app.client.request(method, self.app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request
    }

    async fn start(&mut self, body: Value) -> Response {
        let response = self
            .request(reqwest::Method::POST, "/widget/sessions")
            .json(&body)
            .send()
            .await
            .unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        response
    }

    async fn start_ok(&mut self) -> ConnectResponse {
        let response = self.start(json!({})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn stream(&self, session: &ConnectResponse, last_event_id: Option<u64>) -> Response {
        let mut request = self.request(reqwest::Method::GET, &session.stream_url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        request.send().await.unwrap()
    }

    async fn pairing_code(&self, session: &ConnectResponse, body: &str) -> Response {
        let path = format!("/widget/sessions/{}/pairing-code", session.session_id);
        let request = self.request(reqwest::Method::POST, &path);
        request
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn cancel(&self, session: &ConnectResponse) -> Response {
        let path = format!("/widget/sessions/{}", session.session_id);
        self.request(reqwest::Method::DELETE, &path).send().await.unwrap()
    }
}

#[tokio::test]
async fn a_browser_starts_watches_and_completes_a_session_without_any_token() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let response = browser.start(json!({"name": "Ventas"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["kbai_widget=", "HttpOnly", "SameSite=Strict", "Path=/widget"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session: ConnectResponse = response.json().await.unwrap();
    assert_eq!(session.stream_url, format!("/widget/sessions/{}/stream", session.session_id));
    assert_eq!(session.expires_in, 300);

    let response = browser.stream(&session, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut stream = SseReader::new(response);
    let qr = stream.next_qr().await;
    app.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    let StreamEvent::Connected(connected) = stream.next_event().await else { panic!() };

    let numbers: Value = browser
        .request(reqwest::Method::GET, "/widget/numbers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(numbers["data"][0]["channel_id"], connected.channel_id.as_str());
    assert_eq!(numbers["data"][0]["name"], "Ventas");
}

#[tokio::test]
async fn another_browser_cannot_watch_or_cancel_a_session() {
    let app = spawn_app().await;
    let mut owner = Browser::new(&app);
    let session = owner.start_ok().await;
    let mut other = Browser::new(&app);
    other.start_ok().await; // has a cookie of its own
    let anonymous = Browser::new(&app);

    for browser in [&other, &anonymous] {
        assert_error(
            browser.stream(&session, None).await,
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
        )
        .await;
        assert_error(
            browser.cancel(&session).await,
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
        )
        .await;
    }
    let mut stream = SseReader::new(owner.stream(&session, None).await);
    stream.next_qr().await;
    assert_eq!(owner.cancel(&session).await.status(), StatusCode::NO_CONTENT);
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::Cancelled);
}

/// The widget asks for a pairing code through the host: only for its own session, with the
/// API's answers and errors as they are.
#[tokio::test]
async fn a_browser_switches_its_own_session_to_a_pairing_code() {
    let app = spawn_app().await;
    let mut owner = Browser::new(&app);
    let session = owner.start_ok().await;
    let mut other = Browser::new(&app);
    other.start_ok().await;
    let body = format!(r#"{{"phone_number":"{PHONE}"}}"#);
    for browser in [&other, &Browser::new(&app)] {
        let response = browser.pairing_code(&session, &body).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await;
    }
    let response = owner.pairing_code(&session, "{not json").await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson).await;
    let response = owner.pairing_code(&session, r#"{"phone_number":"912345678"}"#).await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidPhoneNumber).await;

    let mut stream = SseReader::new(owner.stream(&session, None).await);
    stream.next_qr().await;
    let response = owner.pairing_code(&session, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let code = answer["code"].as_str().unwrap().to_owned();
    let StreamEvent::PairingCode(event) = stream.next_event().await else { panic!() };
    assert_eq!((event.code.as_str(), event.phone_number.as_str()), (code.as_str(), PHONE));

    let entered = app.sim_enter_code(&code, PHONE, ScanOutcome::Success).await;
    assert_eq!(entered.status(), StatusCode::ACCEPTED);
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    assert!(matches!(stream.next_event().await, StreamEvent::Connected(_)));
    let response = owner.pairing_code(&session, &body).await;
    assert_error(response, StatusCode::CONFLICT, ErrorCode::SessionNotWaiting).await;
}

#[tokio::test]
async fn the_relayed_stream_resumes_with_last_event_id() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let session = browser.start_ok().await;
    let mut first = SseReader::new(browser.stream(&session, None).await);
    let (qr_id, StreamEvent::Qr(qr)) = first.next().await.unwrap() else { panic!() };
    drop(first);
    app.scan_ok(&qr.data, PHONE, ScanOutcome::Success).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut resumed = SseReader::new(browser.stream(&session, Some(qr_id)).await);
    assert_eq!(resumed.next_event().await, StreamEvent::Connecting);
    assert!(matches!(resumed.next_event().await, StreamEvent::Connected(_)));
    resumed.assert_closed().await;
}

#[tokio::test]
async fn sessions_belong_to_the_hosts_account_and_a_browsers_token_is_ignored() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let response = browser
        .request(reqwest::Method::POST, "/widget/sessions")
        .bearer_auth(&app.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let session: ConnectResponse = response.json().await.unwrap();
    // `acme`'s token does not see it: the host started it for its own account.
    let response =
        app.open_stream(&app.token, &keebai_protocol::stream_path(&session.session_id), None).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await;
}

#[tokio::test]
async fn bad_widget_bodies_get_the_error_shape() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    assert_error(
        browser.start(json!({"name": ""})).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidName,
    )
    .await;
    assert_error(
        browser.start(json!([1])).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidRequest,
    )
    .await;
    let response = browser
        .request(reqwest::Method::POST, "/widget/sessions")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson).await;
    assert_eq!(app.state.engine.session_count(), 0);
}

#[tokio::test]
async fn no_widget_answer_contains_a_token() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let start = browser.start(json!({})).await;
    let mut seen = format!("{:?}", start.headers());
    let session: ConnectResponse = start.json().await.unwrap();
    seen.push_str(&serde_json::to_string(&session).unwrap());
    let stream = browser.stream(&session, None).await;
    seen.push_str(&format!("{:?}", stream.headers()));
    let mut reader = SseReader::new(stream);
    seen.push_str(&reader.next_qr().await);
    let numbers = browser.request(reqwest::Method::GET, "/widget/numbers").send().await.unwrap();
    seen.push_str(&format!("{:?}", numbers.headers()));
    seen.push_str(&numbers.text().await.unwrap());
    assert!(!seen.contains("kbai_pk_"), "{seen}");
}

#[tokio::test]
async fn in_remote_mode_the_host_calls_another_api_over_http() {
    let api = spawn_app().await;
    let host_token = api.token("shop", &Scope::ALL).await;
    let api_url = format!("http://{}", api.address);
    let host = spawn_app_with(move |args: &mut ServeArgs| {
        args.host_api_url = Some(api_url.parse().unwrap());
        args.host_pat = Some(host_token.into());
    })
    .await;
    let mut browser = Browser::new(&host);
    let session = browser.start_ok().await;
    assert_eq!(api.state.engine.session_count(), 1, "the session lives in the remote API");
    assert_eq!(host.state.engine.session_count(), 0);
    let mut stream = SseReader::new(browser.stream(&session, None).await);
    let qr = stream.next_qr().await;
    api.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    assert!(matches!(stream.next_event().await, StreamEvent::Connected(_)));
}

#[tokio::test]
async fn a_host_api_url_without_a_host_pat_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        linker: keebai_server::config::LinkerChoice::Simulated,
        host_api_url: Some("http://127.0.0.1:9".parse().unwrap()),
        ..ServeArgs::default()
    };
    let error =
        keebai_server::App::build(dir.path().to_owned(), args).await.err().unwrap().to_string();
    assert!(error.contains("--host-pat") && error.contains("KEEBAI_HOST_PAT"), "{error}");
}

#[tokio::test]
async fn pages_get_a_strict_content_security_policy_and_safe_headers() {
    let dist = tempfile::tempdir().unwrap();
    let loader = "import init from '/app.js'; init();";
    std::fs::write(
        dist.path().join("index.html"),
        format!(
            "<!doctype html><html><body><script type=\"module\">{loader}</script></body></html>"
        ),
    )
    .unwrap();
    let dist_dir = dist.path().to_owned();
    let app = spawn_app_with(move |args| args.dist_dir = dist_dir).await;

    let page = app.get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("script-src 'self'") && csp.contains("'sha256-"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert!(page.text().await.unwrap().contains(loader));

    assert_error(app.get("/missing.js", None).await, StatusCode::NOT_FOUND, ErrorCode::NotFound)
        .await;
}

#[tokio::test]
async fn pages_are_compressed_when_the_browser_accepts_it() {
    let dist = tempfile::tempdir().unwrap();
    let script = "export function hello() { return 'keebai'; }\n".repeat(200);
    std::fs::write(dist.path().join("index.html"), "<!doctype html><title>x</title>").unwrap();
    std::fs::write(dist.path().join("app.js"), &script).unwrap();
    let dist_dir = dist.path().to_owned();
    let app = spawn_app_with(move |args| args.dist_dir = dist_dir).await;
    let url = format!("http://{}/app.js", app.address);

    let gzipped = app.client.get(&url).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gzipped.status(), StatusCode::OK);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["x-content-type-options"], "nosniff");
    let body = gzipped.bytes().await.unwrap();
    assert!(body.len() < script.len() / 10, "{} bytes", body.len());
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
        .unwrap();
    assert_eq!(plain, script);

    let identity = app.client.get(&url).send().await.unwrap();
    assert!(identity.headers().get("content-encoding").is_none());
    assert_eq!(identity.text().await.unwrap(), script);
}
