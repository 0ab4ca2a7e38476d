use std::time::Duration;

use keebai_protocol::sim::ScanOutcome;
use keebai_test_support::{PHONE, spawn_app, spawn_app_with, spawn_fast_rotating_app};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{PATIENCE, Proxy, Terminal, keebai, run};

fn has_qr(terminal: &Terminal) -> bool {
    terminal.rows().iter().any(|row| row.contains('█'))
}

#[tokio::test]
async fn a_qr_drawn_in_the_terminal_decodes_and_a_scan_of_it_connects_the_channel() {
    let server = spawn_app().await;
    let mut terminal =
        Terminal::spawn(&server, &["whatsapp", "connect", "--qr", "--name", "Ventas"]);
    terminal.wait_for("a QR code", has_qr).await;

    let codes = terminal.qr_codes();
    assert_eq!(codes.len(), 1);
    assert!(terminal.text().contains("session ends in 4:5"), "{}", terminal.text());
    let scan = server.sim_scan(&codes[0], PHONE, ScanOutcome::Success).await;
    assert_eq!(scan.status(), StatusCode::ACCEPTED, "the drawn code is the live one");

    terminal.wait_for("the success line", |t| t.text().contains("connected (phone")).await;
    let text = terminal.text();
    assert!(text.contains("Scanned. Linking your phone…"), "{text}");
    let line = text.lines().find(|l| l.starts_with("Channel ch_")).expect("the success line");
    assert!(line.ends_with(&format!(" connected (phone {PHONE}, as Lucio).")), "{line}");
    assert_eq!(terminal.exit_code().await, 0);
}

#[tokio::test]
async fn a_rotated_code_is_redrawn_in_place() {
    let server = spawn_fast_rotating_app().await;
    let mut terminal = Terminal::spawn(&server, &["whatsapp", "connect", "--qr"]);
    terminal.wait_for("a QR code", has_qr).await;
    let first = terminal.qr_codes();
    terminal.wait_for("the next code", |t| t.qr_codes() != first).await;

    let now = terminal.qr_codes();
    assert_eq!(now.len(), 1, "one code on screen, drawn over the old one");
    assert_ne!(now[0], first[0]);
    assert_eq!(terminal.text().matches("Scan with WhatsApp").count(), 1);
    terminal.interrupt();
    assert_eq!(terminal.exit_code().await, 130);
}

#[tokio::test]
async fn ctrl_c_cancels_the_session_on_the_server() {
    let server = spawn_app().await;
    let mut terminal = Terminal::spawn(&server, &["whatsapp", "connect", "--qr"]);
    terminal.wait_for("a QR code", has_qr).await;
    assert_eq!(server.live_sessions().await, 1);

    terminal.interrupt();
    assert_eq!(terminal.exit_code().await, 130);
    assert!(terminal.text().contains("Cancelled the pairing session."), "{}", terminal.text());
    assert_eq!(server.live_sessions().await, 0, "cancelled before exiting");
}

/// Reads `--json` lines as they come.
struct JsonLines {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl JsonLines {
    fn spawn(mut command: tokio::process::Command) -> Self {
        let mut child = command.spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    async fn next(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()?;
        Some(serde_json::from_str(&line).expect("each line is one JSON object"))
    }

    async fn exit_code(mut self) -> i32 {
        tokio::time::timeout(PATIENCE, self.child.wait()).await.unwrap().unwrap().code().unwrap()
    }
}

#[tokio::test]
async fn json_mode_prints_one_event_per_line() {
    let server = spawn_app().await;
    let mut out = JsonLines::spawn(keebai(&server, &["whatsapp", "connect", "--qr", "--json"]));

    let session = out.next().await.unwrap();
    assert_eq!(session["event"], "session");
    assert!(session["session_id"].as_str().unwrap().starts_with("qrs_"));
    assert_eq!(session["expires_in"], 300);
    let qr = out.next().await.unwrap();
    assert_eq!(qr["event"], "qr");
    assert!(qr["id"].as_u64().unwrap() >= 1);
    assert!(qr["data"]["expires_at"].is_string());
    server.scan_ok(qr["data"]["data"].as_str().unwrap(), PHONE, ScanOutcome::Success).await;

    assert_eq!(out.next().await.unwrap()["event"], "connecting");
    let connected = out.next().await.unwrap();
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["data"]["phone_number"], PHONE);
    assert!(out.next().await.is_none());
    assert_eq!(out.exit_code().await, 0);
}

#[tokio::test]
async fn a_dropped_connection_resumes_with_last_event_id() {
    let server = spawn_app().await;
    let proxy = Proxy::start(server.address).await;
    let mut command = keebai(&server, &["whatsapp", "connect", "--qr", "--json"]);
    command.env("KEEBAI_API_URL", &proxy.url);
    let mut out = JsonLines::spawn(command);
    out.next().await.unwrap(); // session
    let qr = out.next().await.unwrap();
    let connections = proxy.accepted();

    proxy.cut();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while proxy.accepted() == connections {
        assert!(tokio::time::Instant::now() < deadline, "the CLI reconnects");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.scan_ok(qr["data"]["data"].as_str().unwrap(), PHONE, ScanOutcome::Success).await;

    // Resumed after the QR's id: the same QR is not sent again; the rest arrives.
    let next = out.next().await.unwrap();
    assert_eq!(next["event"], "connecting", "{next}");
    assert!(next["id"].as_u64() > qr["id"].as_u64());
    assert_eq!(out.next().await.unwrap()["event"], "connected");
    assert_eq!(out.exit_code().await, 0);
}

#[tokio::test]
async fn an_expired_session_exits_with_its_own_code() {
    let server = spawn_app_with(|args| args.pairing_ttl_secs = 1).await;
    let (code, stdout, stderr) = run(keebai(&server, &["whatsapp", "connect", "--qr"])).await;
    assert_eq!(code, 4, "{stdout}{stderr}");
    assert!(stderr.contains("Pairing failed (expired)"), "{stderr}");
    assert!(stdout.contains('█'), "the code was drawn (appended, not a terminal)");
}

#[tokio::test]
async fn a_failed_outcome_prints_the_reason_and_exits_non_zero() {
    let server = spawn_app().await;
    let mut out = JsonLines::spawn(keebai(&server, &["whatsapp", "connect", "--qr", "--json"]));
    out.next().await.unwrap();
    let qr = out.next().await.unwrap();
    server.scan_ok(qr["data"]["data"].as_str().unwrap(), PHONE, ScanOutcome::DeviceLimit).await;
    let failed = out.next().await.unwrap();
    assert_eq!(failed["event"], "failed");
    assert_eq!(failed["data"]["code"], "device_limit");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(out.child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("linked devices"), "{stderr}");
    assert_eq!(out.exit_code().await, 3);
}

#[tokio::test]
async fn a_session_lost_in_a_server_restart_is_reported_as_lost() {
    let server = spawn_app().await;
    let proxy = Proxy::start(server.address).await;
    let mut command = keebai(&server, &["whatsapp", "connect", "--qr", "--json"]);
    command.env("KEEBAI_API_URL", &proxy.url);
    let mut out = JsonLines::spawn(command);
    out.next().await.unwrap();
    out.next().await.unwrap();

    let restarted = server.crash_and_restart().await;
    proxy.retarget(restarted.address);
    proxy.cut();

    assert!(out.next().await.is_none(), "no more events");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(out.child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(out.exit_code().await, 6, "{stderr}");
    assert!(stderr.contains("The pairing session was lost"), "{stderr}");
    assert!(stderr.contains("keebai whatsapp connect --qr"), "it says how to start again");
}

#[tokio::test]
async fn a_device_unlinked_right_after_linking_exits_with_5() {
    let server = spawn_app().await;
    let mut out = JsonLines::spawn(keebai(&server, &["whatsapp", "connect", "--qr", "--json"]));
    out.next().await.unwrap();
    let qr = out.next().await.unwrap();
    server.scan_ok(qr["data"]["data"].as_str().unwrap(), PHONE, ScanOutcome::Unlinked).await;
    assert_eq!(out.next().await.unwrap()["event"], "connecting");
    let disconnected = out.next().await.unwrap();
    assert_eq!(disconnected["event"], "disconnected");
    assert_eq!(disconnected["data"]["code"], "unlinked");
    assert_eq!(out.exit_code().await, 5);
}

#[tokio::test]
async fn with_a_phone_number_it_prints_the_code_and_typing_it_on_the_phone_connects() {
    let server = spawn_app().await;
    let args = ["whatsapp", "connect", "--phone", PHONE, "--json"];
    let mut out = JsonLines::spawn(keebai(&server, &args));
    assert_eq!(out.next().await.unwrap()["event"], "session");
    let code = out.next().await.unwrap();
    assert_eq!(code["event"], "pairing_code", "{code}");
    assert_eq!(code["data"]["phone_number"], PHONE);
    let typed = code["data"]["code"].as_str().unwrap();
    let entered = server.sim_enter_code(typed, PHONE, ScanOutcome::Success).await;
    assert_eq!(entered.status(), reqwest::StatusCode::ACCEPTED);

    assert_eq!(out.next().await.unwrap()["event"], "connecting");
    assert_eq!(out.next().await.unwrap()["event"], "connected");
    assert_eq!(out.exit_code().await, 0);
}

#[tokio::test]
async fn a_bad_phone_number_is_refused_and_the_session_cancelled() {
    let server = spawn_app().await;
    let mut command = keebai(&server, &["whatsapp", "connect", "--phone", "56912345678"]);
    let output = tokio::time::timeout(PATIENCE, command.output()).await.unwrap().unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("INVALID_PHONE_NUMBER"));
    assert_eq!(server.live_sessions().await, 0, "the session was cancelled");
}
