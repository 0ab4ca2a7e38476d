//! The dashboard and its widget in headless Chromium against the real server (simulated
//! linker), through a recording proxy. Each flow runs on the debug build and on the release
//! build (wasm-opt), since optimizer bugs show only there.

mod pairing_code;
mod release_server;

use keebai_e2e::browser::Browser;
use keebai_e2e::recorder::Recorder;
use keebai_e2e::server::{host_pat, serve_dashboard};
use keebai_e2e::{Build, wait_for};
use keebai_protocol::sim::ScanOutcome;
use keebai_test_support::{PHONE, TestApp};
use reqwest::StatusCode;

/// A server, a recorder in front of it, and a browser on the dashboard (through the recorder).
struct Setup {
    server: TestApp,
    recorder: Recorder,
    browser: Browser,
}

impl Setup {
    async fn new(
        build: Build,
        device_pixel_ratio: f64,
        configure: impl FnOnce(&mut keebai_server::config::ServeArgs),
    ) -> Self {
        Self::start(build, Browser::start(device_pixel_ratio), configure).await
    }

    /// As [`Setup::new`], with a browser that prefers `language`.
    async fn new_in(
        build: Build,
        language: &str,
        configure: impl FnOnce(&mut keebai_server::config::ServeArgs),
    ) -> Self {
        Self::start(build, Browser::start_in(1.0, language), configure).await
    }

    async fn start(
        build: Build,
        browser: impl std::future::Future<Output = Browser>,
        configure: impl FnOnce(&mut keebai_server::config::ServeArgs),
    ) -> Self {
        let server = serve_dashboard(&build.dist(), configure).await;
        let recorder = Recorder::start(server.address).await;
        let browser = browser.await;
        browser.goto(&recorder.url("/")).await;
        Self { server, recorder, browser }
    }

    async fn finish(self) {
        self.browser.close().await;
        self.server.stop().await;
    }
}

/// The simulated phone scans `qr` (straight to the server: the phone is not the browser).
async fn scan(server: &TestApp, qr: &str) -> StatusCode {
    server.sim_scan(qr, PHONE, ScanOutcome::Success).await.status()
}

/// Clicks the widget's button once it says `label` ("Connect WhatsApp" or "Try again").
async fn click_action(browser: &Browser, label: &str) {
    wait_for(&format!("the {label:?} button"), || async {
        (browser.text(".kbai-action").await == label).then_some(())
    })
    .await;
    browser.click(".kbai-action").await;
}

async fn a_person_links_a_phone_from_the_dashboard(build: Build, device_pixel_ratio: f64) {
    let setup = Setup::new(build, device_pixel_ratio, |_| {}).await;
    let browser = &setup.browser;
    assert_eq!(browser.text("#numbers-empty").await, "No numbers yet.");

    click_action(&setup.browser, "Connect WhatsApp").await;
    let qr = browser.next_qr(&[]).await;
    assert!(qr.starts_with("2@"), "a WhatsApp pairing payload: {qr}");
    assert_eq!(scan(&setup.server, &qr).await, StatusCode::ACCEPTED);

    browser.status_contains(&format!("Connected: {PHONE} (Lucio)")).await;
    wait_for("the number in the dashboard's list", || async {
        let rows = browser.text("#numbers tbody").await;
        rows.contains(PHONE).then_some(())
    })
    .await;
    assert!(browser.qr_on_screen().await.is_none(), "the code is gone once linked");

    assert_no_token_reached_the_browser(&setup).await;
    setup.finish().await;
}

/// No byte the browser sent or received, nor anything it shows, stores or logs, holds the
/// host's token or any `kbai_pk_` token.
async fn assert_no_token_reached_the_browser(setup: &Setup) {
    let pat = host_pat(&setup.server);
    assert!(pat.starts_with("kbai_pk_"), "the host holds a real token");
    let transcript = setup.recorder.transcript();
    // The recorder saw the whole conversation: the page, the bundle, the session, its stream
    // and the numbers.
    let seen = String::from_utf8_lossy(&transcript);
    for expected in [
        "GET / ",
        "POST /widget/sessions ",
        "GET /widget/sessions/qrs_",
        "event: qr",
        "event: connected",
        "GET /widget/numbers ",
    ] {
        assert!(seen.contains(expected), "the transcript lacks {expected:?}");
    }
    let wasm_magic: &[u8] = b"\0asm\x01\0\0\0";
    assert!(transcript.windows(8).any(|w| w == wasm_magic), "the transcript holds the bundle");

    let console = setup.browser.console().await.join("\n");
    let mut state = setup.browser.visible_state().await;
    // The widget's cookie has `Path=/widget`: WebDriver shows it from a page there.
    setup.browser.goto(&setup.recorder.url("/widget/numbers")).await;
    state.push_str(&setup.browser.cookies().await);
    for secret in [pat.as_str(), "kbai_pk_"] {
        let secret_bytes = secret.as_bytes();
        assert!(
            !transcript.windows(secret_bytes.len()).any(|w| w == secret_bytes),
            "the browser's traffic holds {secret:?}"
        );
        assert!(!console.contains(secret), "the console holds {secret:?}");
        assert!(!state.contains(secret), "the page's state holds {secret:?}");
    }
    assert!(state.contains("kbai_widget="), "the widget's cookie was read");
    assert!(state.contains("kbai-qr-paint"), "the page's state was read");
}

async fn the_code_rotates_on_screen_and_expiry_offers_try_again(build: Build) {
    let setup = Setup::new(build, 1.0, |args| {
        args.qr_first_ttl_secs = 1;
        args.qr_ttl_secs = 1;
        args.pairing_ttl_secs = 4;
    })
    .await;
    let browser = &setup.browser;

    click_action(&setup.browser, "Connect WhatsApp").await;
    let first = browser.next_qr(&[]).await;
    let second = browser.next_qr(&[&first]).await;
    assert!(second.starts_with("2@"), "{second}");
    // The phone can no longer use the code that left the screen.
    assert_eq!(scan(&setup.server, &first).await, StatusCode::CONFLICT);

    browser.status_contains("expired").await;
    assert!(browser.qr_on_screen().await.is_none(), "no stale code stays on screen");
    click_action(&setup.browser, "Try again").await;
    let fresh = browser.next_qr(&[&first, &second]).await;
    assert!(fresh.starts_with("2@"), "{fresh}");
    assert_eq!(scan(&setup.server, &fresh).await, StatusCode::ACCEPTED);
    browser.status_contains("Connected").await;
    setup.finish().await;
}

/// A network drop mid-session: the browser reconnects with `Last-Event-ID`, the widget keeps
/// its state, and the session goes on to connect.
async fn after_a_network_drop_the_widget_resumes_its_session(build: Build) {
    let setup = Setup::new(build, 1.0, |_| {}).await;
    let browser = &setup.browser;
    click_action(&setup.browser, "Connect WhatsApp").await;
    let qr = browser.next_qr(&[]).await;
    let requests_before = String::from_utf8_lossy(&setup.recorder.transcript())
        .matches("GET /widget/sessions/qrs_")
        .count();

    setup.recorder.cut();
    let resumed = wait_for("the stream to be requested again with Last-Event-ID", || async {
        let transcript = String::from_utf8_lossy(&setup.recorder.transcript()).into_owned();
        let requests: Vec<&str> = transcript.split("GET /widget/sessions/qrs_").collect();
        (requests.len() > requests_before + 1).then(|| requests[requests.len() - 1].to_owned())
    })
    .await;
    let head = resumed.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    assert!(head.contains("last-event-id: "), "the browser resumes where it was: {head}");

    // The widget kept its session: same code on screen, no "Try again".
    assert_eq!(browser.qr_on_screen().await.as_deref(), Some(qr.as_str()));
    assert_eq!(browser.text(".kbai-action").await, "");
    assert_eq!(scan(&setup.server, &qr).await, StatusCode::ACCEPTED);
    browser.status_contains(&format!("Connected: {PHONE} (Lucio)")).await;
    setup.finish().await;
}

/// The server restarts while the widget watches a session (the connection breaks without a
/// goodbye, as in a crash): the browser reconnects, the new server no longer knows the
/// session, and the widget says it was lost and offers to start again, which works.
async fn after_a_server_restart_the_widget_reports_the_session_lost(build: Build) {
    let Setup { server, recorder, browser } = Setup::new(build, 1.0, |_| {}).await;
    click_action(&browser, "Connect WhatsApp").await;
    let old = browser.next_qr(&[]).await;

    recorder.cut();
    let server = server.restart(|_| {}).await;
    let status = browser.status_contains("lost").await;
    assert!(status.contains("Try again"), "{status}");
    assert!(browser.qr_on_screen().await.is_none(), "the lost session's code is gone");

    click_action(&browser, "Try again").await;
    let fresh = browser.next_qr(&[&old]).await;
    assert_eq!(scan(&server, &fresh).await, StatusCode::ACCEPTED);
    browser.status_contains("Connected").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_after_a_server_restart_the_widget_reports_the_session_lost() {
    after_a_server_restart_the_widget_reports_the_session_lost(Build::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_after_a_server_restart_the_widget_reports_the_session_lost() {
    after_a_server_restart_the_widget_reports_the_session_lost(Build::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_after_a_network_drop_the_widget_resumes_its_session() {
    after_a_network_drop_the_widget_resumes_its_session(Build::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_after_a_network_drop_the_widget_resumes_its_session() {
    after_a_network_drop_the_widget_resumes_its_session(Build::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_a_person_links_a_phone_from_the_dashboard() {
    a_person_links_a_phone_from_the_dashboard(Build::Debug, 1.0).await;
}

/// At a device pixel ratio of 2, as on most laptops and phones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_a_person_links_a_phone_from_the_dashboard() {
    a_person_links_a_phone_from_the_dashboard(Build::Release, 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_the_code_rotates_on_screen_and_expiry_offers_try_again() {
    the_code_rotates_on_screen_and_expiry_offers_try_again(Build::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_the_code_rotates_on_screen_and_expiry_offers_try_again() {
    the_code_rotates_on_screen_and_expiry_offers_try_again(Build::Release).await;
}
