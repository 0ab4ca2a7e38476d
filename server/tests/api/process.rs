//! The real `keebai-server` binary: its token commands, crash durability and signals.

use std::path::Path;
use std::time::Duration;

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ChannelStatus, ErrorCode, FailureCode, Scope, StreamEvent};
use keebai_test_support::{PHONE, ServerBinary, ServerProcess, assert_error};
use reqwest::StatusCode;

fn binary() -> ServerBinary {
    ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"))
}

/// The server with the simulated linker, linking at once, logging everything.
async fn start(data_dir: &Path) -> ServerProcess {
    binary()
        .serve(data_dir)
        .env("KEEBAI_SIM_LINK_DELAY_MS", "0")
        .env("RUST_LOG", "debug")
        .spawn()
        .await
}

async fn token_command(data_dir: &Path, args: &[&str]) -> std::process::Output {
    binary().token_command(data_dir, args).await
}

async fn create_token(data_dir: &Path) -> String {
    binary().create_token(data_dir, "acme", &[Scope::ChannelsConnect, Scope::ChannelsRead]).await
}

#[tokio::test]
async fn token_create_prints_the_secret_once_and_list_and_revoke_never_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path()).await;
    assert!(token.starts_with("kbai_pk_") && !token.contains('\n'), "{token}");

    let list = token_command(dir.path(), &["list"]).await;
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("acme") && listed.contains("channels:connect channels:read"),
        "{listed}"
    );
    assert!(!listed.contains(&token) && !listed.contains("kbai_pk_"), "{listed}");

    let server = start(dir.path()).await;
    let api = server.api(&token);
    assert!(api.numbers_ok().await.is_empty(), "the token works");
    let id = listed.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let revoke = token_command(dir.path(), &["revoke", &id]).await;
    assert!(revoke.status.success());
    assert!(!String::from_utf8_lossy(&revoke.stdout).contains("kbai_pk_"));
    let response = api.numbers(&token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated).await;
    assert!(
        !token_command(dir.path(), &["revoke", &id]).await.status.success(),
        "revoking twice is an error"
    );
    assert!(!server.logs().contains(&token), "no token in the logs");
}

#[tokio::test]
async fn token_create_refuses_unknown_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        token_command(dir.path(), &["create", "--account", "acme", "--scope", "admin"]).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("channels:connect"));
}

#[tokio::test]
async fn a_connected_channel_survives_kill_9_and_old_sessions_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path()).await;
    let server = start(dir.path()).await;
    let api = server.api(&token);
    let (session, mut stream, qr) = api.session_showing_qr().await;
    api.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    let StreamEvent::Connected(connected) = stream.next_event().await else { panic!() };
    let pending = api.connect_ok().await;

    let exit = server.kill().await; // SIGKILL: no shutdown code runs
    assert!(!exit.logs.contains(&token), "no token in the logs");

    let server = start(dir.path()).await;
    let api = server.api(&token);
    let numbers = api.numbers_ok().await;
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].channel_id, connected.channel_id);
    assert_eq!(numbers[0].status, ChannelStatus::Connected);
    for old in [session, pending] {
        assert_error(
            api.open_stream(&token, &old.stream_url, None).await,
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
        )
        .await;
    }
}

#[tokio::test]
async fn sigterm_ends_open_streams_within_a_second_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path()).await;
    let server = start(dir.path()).await;
    let (_, mut stream, _) = server.api(&token).session_showing_qr().await;

    let sent = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop_within(Duration::from_secs(5)));
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::ServerShutdown);
    stream.assert_closed().await;
    assert!(sent.elapsed() < Duration::from_secs(1), "{:?}", sent.elapsed());

    let exit = stopping.await.unwrap();
    assert!(!exit.forced, "exits within 5 s of SIGTERM:\n{}", exit.logs);
    assert!(exit.status.success(), "{:?}\n{}", exit.status, exit.logs);
}

#[tokio::test]
async fn the_default_linker_is_whatsapp_never_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    // A test build may dial only a test endpoint (see the next test); a closed port will do.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = binary()
        .serve(dir.path())
        .default_linker()
        .env("KEEBAI_WHATSAPP_WS_URL", format!("ws://{closed}/ws/chat"))
        .env("RUST_LOG", "debug")
        .spawn()
        .await;
    let logs = server.logs();
    assert!(logs.contains("linker=\"whatsapp\""), "{logs}");
    let api = server.api("");
    let scan = api.sim_scan("2@x,y,z,w,9", PHONE, ScanOutcome::Success).await;
    assert_error(scan, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn a_test_build_refuses_to_dial_whatsapp() {
    // `cargo test` builds this binary with whatsapp-rust's danger-skip-cert-chain-verify (the
    // dev-dependency that lets the fake WhatsApp server in): without a test endpoint it must not
    // start the whatsapp linker at all. The release build's side is `scripts/check-release.sh`.
    let dir = tempfile::tempdir().unwrap();
    let logs = binary().serve(dir.path()).linker("whatsapp").try_spawn().await.err();
    let logs = logs.expect("it exits");
    assert!(logs.contains("will not dial WhatsApp"), "{logs}");
    let output = std::process::Command::new(binary().path()).arg("check-build").output().unwrap();
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
    let token = create_token(dir.path()).await;
    let server = binary()
        .serve(dir.path())
        .linker("whatsapp")
        .env("KEEBAI_WHATSAPP_WS_URL", url)
        .env("KEEBAI_WHATSAPP_VERSION", "2.3000.1")
        .env("RUST_LOG", "debug")
        .spawn()
        .await;
    let api = server.api(&token);
    let session = api.connect_ok().await;
    let _stream = api.stream(&session).await;
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

    let exit = server.stop_within(Duration::from_secs(10)).await;

    assert!(!exit.forced && exit.status.success(), "{:?}\n{}", exit.status, exit.logs);
    assert_eq!(files(), Vec::<String>::new(), "the attempt's files were deleted before the exit");
}

#[tokio::test]
async fn the_old_keebai_pat_variable_alone_is_refused_with_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let refused = binary().serve(dir.path()).env("KEEBAI_PAT", "kbai_pk_old").try_spawn().await;
    let logs = refused.err().expect("it exits");
    assert!(logs.contains("KEEBAI_HOST_PAT"), "{logs}");
    // The CLI's variable is no business of the server's.
    let server =
        binary().serve(dir.path()).env("KEEBAI_API_URL", "http://127.0.0.1:9").spawn().await;
    assert!(!server.logs().contains("KEEBAI_HOST_PAT"));
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_until_the_first_dies() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;

    let refused = binary().serve(dir.path()).try_spawn().await;
    let logs = refused.err().expect("the second server exits");
    assert!(logs.contains("already serving the data directory"), "{logs}");
    assert!(logs.contains("its own --data-dir"), "it says what to do: {logs}");
    // Token commands are no server: they still run beside the first.
    let token = create_token(dir.path()).await;
    assert_eq!(first.api(&token).numbers_ok().await.len(), 0, "the first serves on");

    first.kill().await; // SIGKILL: the kernel releases the lock with the process
    let second = start(dir.path()).await;
    assert_eq!(second.api(&token).numbers_ok().await.len(), 0);
}
