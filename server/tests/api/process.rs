//! The real `keebai-server` binary: its token commands, crash durability and signals.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ConnectResponse, ErrorCode, FailureCode, NumbersResponse, StreamEvent};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{PHONE, SseReader, assert_error};

const BIN: &str = env!("CARGO_BIN_EXE_keebai-server");

/// The real `keebai-server` binary, on a free port, its log lines kept.
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

impl Server {
    /// The server with the simulated linker.
    async fn start(data_dir: &Path) -> Self {
        Self::start_with_linker(data_dir, Some("simulated")).await
    }

    /// `linker: None` leaves `KEEBAI_LINKER` unset (the default).
    async fn start_with_linker(data_dir: &Path, linker: Option<&str>) -> Self {
        Self::spawn(data_dir, linker, &[]).await
    }

    /// The server with `linker` (or the default) and extra environment variables.
    pub async fn spawn(data_dir: &Path, linker: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::try_spawn(data_dir, linker, env)
            .await
            .unwrap_or_else(|logs| panic!("the server exited before it listened:\n{logs}"))
    }

    /// Like [`Server::spawn`]; a server that exits before it listens gives its log instead.
    pub async fn try_spawn(
        data_dir: &Path,
        linker: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut command = Command::new(BIN);
        match linker {
            Some(linker) => command.env("KEEBAI_LINKER", linker),
            None => command.env_remove("KEEBAI_LINKER"),
        };
        let mut child = command
            .env("KEEBAI_DATA_DIR", data_dir)
            .env("KEEBAI_LISTEN", "127.0.0.1:0")
            .env("KEEBAI_SIM_LINK_DELAY_MS", "0")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the server starts")
                .unwrap();
            let Some(line) = line else { return Err(logs.lock().unwrap().join("\n")) };
            logs.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Self { child, address, logs, client: reqwest::Client::new() })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn connect(&self, token: &str) -> ConnectResponse {
        let response = self
            .client
            .post(self.url("/v1/channels/whatsapp/connect"))
            .bearer_auth(token)
            .json(&json!({"mode": "qr"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn stream(&self, token: &str, session: &ConnectResponse) -> reqwest::Response {
        self.client.get(self.url(&session.stream_url)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn numbers(&self, token: &str) -> NumbersResponse {
        let response = self
            .client
            .get(self.url("/v1/whatsapp/numbers"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

pub fn token_command(data_dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .env("KEEBAI_DATA_DIR", data_dir)
        .arg("token")
        .args(args)
        .output()
        .unwrap()
}

fn create_token(data_dir: &Path) -> String {
    let output = token_command(
        data_dir,
        &["create", "--account", "acme", "--scope", "channels:connect", "--scope", "channels:read"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn token_create_prints_the_secret_once_and_list_and_revoke_never_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    assert!(token.starts_with("kbai_pk_") && !token.contains('\n'), "{token}");

    let list = token_command(dir.path(), &["list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("acme") && listed.contains("channels:connect channels:read"),
        "{listed}"
    );
    assert!(!listed.contains(&token) && !listed.contains("kbai_pk_"), "{listed}");

    let server = Server::start(dir.path()).await;
    assert!(server.numbers(&token).await.data.is_empty(), "the token works");
    let id = listed.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let revoke = token_command(dir.path(), &["revoke", &id]);
    assert!(revoke.status.success());
    assert!(!String::from_utf8_lossy(&revoke.stdout).contains("kbai_pk_"));
    let response = server
        .client
        .get(server.url("/v1/whatsapp/numbers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated).await;
    assert!(
        !token_command(dir.path(), &["revoke", &id]).status.success(),
        "revoking twice is an error"
    );
    assert!(!server.logs().contains(&token), "no token in the logs");
}

#[tokio::test]
async fn token_create_refuses_unknown_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let output = token_command(dir.path(), &["create", "--account", "acme", "--scope", "admin"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("channels:connect"));
}

#[tokio::test]
async fn a_connected_channel_survives_kill_9_and_old_sessions_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    let mut server = Server::start(dir.path()).await;
    let session = server.connect(&token).await;
    let mut stream = SseReader::new(server.stream(&token, &session).await);
    let qr = stream.next_qr().await;
    let scan = json!({"qr": qr, "phone_number": PHONE, "push_name": "Lucio", "outcome": ScanOutcome::Success});
    server.client.post(server.url("/sim/scan")).json(&scan).send().await.unwrap();
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    let StreamEvent::Connected(connected) = stream.next_event().await else { panic!() };
    let pending = server.connect(&token).await;

    server.child.start_kill().unwrap(); // SIGKILL: no shutdown code runs
    server.child.wait().await.unwrap();
    assert!(!server.logs().contains(&token), "no token in the logs");

    let server = Server::start(dir.path()).await;
    let numbers = server.numbers(&token).await.data;
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].channel_id, connected.channel_id);
    assert_eq!(numbers[0].status, keebai_protocol::ChannelStatus::Connected);
    for old in [session, pending] {
        assert_error(
            server.stream(&token, &old).await,
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
        )
        .await;
    }
}

#[tokio::test]
async fn sigterm_ends_open_streams_within_a_second_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    let mut server = Server::start(dir.path()).await;
    let session = server.connect(&token).await;
    let mut stream = SseReader::new(server.stream(&token, &session).await);
    stream.next_qr().await;

    let pid = server.child.id().unwrap() as i32;
    let sent = std::time::Instant::now();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::ServerShutdown);
    stream.assert_closed().await;
    assert!(sent.elapsed() < Duration::from_secs(1), "{:?}", sent.elapsed());

    let status = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_default_linker_is_whatsapp_never_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    // A test build may dial only a test endpoint (see the next test); a closed port will do.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("ws://{closed}/ws/chat");
    let env = [("KEEBAI_WHATSAPP_WS_URL", url.as_str())];
    let server = Server::spawn(dir.path(), None, &env).await;
    let logs = server.logs();
    assert!(logs.contains("linker=\"whatsapp\""), "{logs}");
    let scan = json!({"qr": "2@x,y,z,w,9", "phone_number": PHONE});
    let response = server.client.post(server.url("/sim/scan")).json(&scan).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn a_test_build_refuses_to_dial_whatsapp() {
    // `cargo test` builds this binary with whatsapp-rust's danger-skip-cert-chain-verify (the
    // dev-dependency that lets the fake WhatsApp server in): without a test endpoint it must not
    // start the whatsapp linker at all. The release build's side is `scripts/check-release.sh`.
    let dir = tempfile::tempdir().unwrap();
    let logs = Server::try_spawn(dir.path(), Some("whatsapp"), &[]).await.err().expect("it exits");
    assert!(logs.contains("will not dial WhatsApp"), "{logs}");
    let output = std::process::Command::new(BIN).arg("check-build").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("danger-skip-cert-chain-verify"));
}

#[tokio::test]
async fn an_attempt_cancelled_by_sigterm_deletes_its_device_file_before_the_process_exits() {
    // A WhatsApp endpoint that accepts the connection and never answers: the attempt's client
    // is mid-connect when SIGTERM comes, and stopping it takes the client's stop grace.
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws/chat", endpoint.local_addr().unwrap());
    let (dialed, mut held) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = endpoint.accept().await {
            let _ = dialed.send(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    let env = [("KEEBAI_WHATSAPP_WS_URL", url.as_str()), ("KEEBAI_WHATSAPP_VERSION", "2.3000.1")];
    let mut server = Server::spawn(dir.path(), Some("whatsapp"), &env).await;
    let session = server.connect(&token).await;
    let _stream = server.stream(&token, &session).await;
    let _socket = tokio::time::timeout(Duration::from_secs(10), held.recv())
        .await
        .expect("the attempt's client dials")
        .unwrap();
    let devices = dir.path().join("devices");
    let files = || -> Vec<String> {
        std::fs::read_dir(&devices)
            .map(|e| e.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(files().iter().filter(|f| f.ends_with(".db")).count(), 1, "{:?}", files());

    let pid = server.child.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits")
        .unwrap();

    assert!(status.success(), "{status:?}\n{}", server.logs());
    assert_eq!(files(), Vec::<String>::new(), "the attempt's files were deleted before the exit");
}

#[tokio::test]
async fn the_old_keebai_pat_variable_alone_is_refused_with_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KEEBAI_PAT", "kbai_pk_old")];
    let logs = Server::try_spawn(dir.path(), Some("simulated"), &env).await.err().expect("exits");
    assert!(logs.contains("KEEBAI_HOST_PAT"), "{logs}");
    // The CLI's variable is no business of the server's.
    let env = [("KEEBAI_API_URL", "http://127.0.0.1:9")];
    let server = Server::spawn(dir.path(), Some("simulated"), &env).await;
    assert!(!server.logs().contains("KEEBAI_HOST_PAT"));
}
