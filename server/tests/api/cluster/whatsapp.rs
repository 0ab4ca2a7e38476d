//! The real linker in a cluster: whatsapp-rust clients against the fake WhatsApp server, with
//! their device keys in Postgres, so that any server can run any channel.

use std::path::Path;
use std::time::{Duration, Instant};

use keebai_fake_whatsapp::{Config, FakeWhatsapp, Phone, WireEvent};
use keebai_protocol::StreamEvent;
use keebai_test_support::{Api, PHONE, Serve, ServerProcess};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

use super::Nodes;

const LINK_TIMEOUT: Duration = Duration::from_secs(30);

fn whatsapp_server(nodes: &Nodes, dir: &Path, fake: &FakeWhatsapp) -> Serve {
    nodes
        .binary
        .serve(dir)
        .linker("whatsapp")
        .env("KEEBAI_DATABASE_URL", nodes.url.expose_secret())
        .env("KEEBAI_WHATSAPP_WS_URL", fake.url())
        .env("KEEBAI_WHATSAPP_VERSION", "2.3000.1023456789")
        .env("RUST_LOG", "info,whatsapp_rust=info")
}

/// Links the fake's phone through a new session on `server` (`api`): QR, scan, `connected`.
/// Returns the channel id.
async fn link(api: &Api, fake: &FakeWhatsapp, server: &ServerProcess) -> String {
    let session = api.connect_ok().await;
    let mut stream = api.stream(&session).await;
    fake.scan(&stream.next_qr().await, &Phone::new(PHONE, "Lucio")).await.unwrap();
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    match stream.next_within(LINK_TIMEOUT).await {
        Some((_, StreamEvent::Connected(connected))) => connected.channel_id,
        other => panic!("expected connected, got {other:?}\n{}", server.logs()),
    }
}

/// Sends until the channel's server answers 202 (503 while it connects), within `LINK_TIMEOUT`.
async fn send_when_connected(api: &Api, channel: &str, text: &str) {
    let deadline = Instant::now() + LINK_TIMEOUT;
    loop {
        let body = json!({"channel_id": channel, "to": "+56911111111", "text": text});
        let response = api.send_text(&api.token, body).await;
        if response.status() == StatusCode::ACCEPTED {
            return;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the channel never sent {text:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_channel_paired_on_a_killed_server_reconnects_on_another_from_its_keys_in_postgres() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let nodes = Nodes::new().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = whatsapp_server(&nodes, dir_a.path(), &fake).spawn().await;
    let b = whatsapp_server(&nodes, dir_b.path(), &fake).spawn().await;
    let (api_a, api_b) = (a.api(&nodes.token), b.api(&nodes.token));

    let channel = link(&api_a, &fake, &a).await;
    for dir in [dir_a.path(), dir_b.path()] {
        assert!(!dir.join("devices").exists(), "no device file: the keys are in Postgres");
    }
    // A text through B is sent by A, which runs the channel.
    send_when_connected(&api_b, &channel, "through B").await;
    assert_eq!(fake.wait_for_text(1, LINK_TIMEOUT).await.unwrap().text, "through B");

    let logins = |events: &[WireEvent]| {
        events.iter().filter(|e| matches!(e, WireEvent::Connected { login: Some(_), .. })).count()
    };
    let before = logins(&fake.events());
    let killed = Instant::now();
    a.kill().await;
    fake.wait_until("B logs the channel in", Duration::from_secs(40), |events| {
        logins(events) > before
    })
    .await
    .unwrap();
    eprintln!("kill -9 -> the channel logged in on B: {:?}", killed.elapsed());
    send_when_connected(&api_b, &channel, "after A died").await;
    assert_eq!(fake.wait_for_text(2, LINK_TIMEOUT).await.unwrap().text, "after A died");
    let numbers = api_b.numbers_ok().await;
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].status, keebai_protocol::ChannelStatus::Connected, "still connected");
}

#[tokio::test]
async fn a_replaced_connection_in_a_cluster_is_restarted_by_the_holder_and_stays_connected() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let nodes = Nodes::new().await;
    let dir = tempfile::tempdir().unwrap();
    let a = whatsapp_server(&nodes, dir.path(), &fake).spawn().await;
    let api = a.api(&nodes.token);
    let channel = link(&api, &fake, &a).await;
    send_when_connected(&api, &channel, "before").await;

    // WhatsApp says another connection replaced this one. On one server that ends the channel
    // (another client took it); in a cluster the server still holding the newest claim takes
    // it back, and the channel never shows disconnected.
    let logins = |events: &[WireEvent]| {
        events.iter().filter(|e| matches!(e, WireEvent::Connected { login: Some(_), .. })).count()
    };
    let before = logins(&fake.events());
    assert_eq!(fake.interrupt_logins(PHONE, keebai_fake_whatsapp::Interruption::Replaced), 1);
    fake.wait_until("the holder logs the channel in again", LINK_TIMEOUT, |events| {
        logins(events) > before
    })
    .await
    .unwrap();
    assert_eq!(api.numbers_ok().await[0].status, keebai_protocol::ChannelStatus::Connected);
    send_when_connected(&api, &channel, "after").await;
    assert_eq!(fake.wait_for_text(2, LINK_TIMEOUT).await.unwrap().text, "after");
}

#[tokio::test]
async fn a_one_server_install_migrated_to_postgres_keeps_its_whatsapp_link() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    // An empty database: a migration refuses one that holds data.
    let nodes = Nodes {
        binary: keebai_test_support::ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server")),
        url: keebai_test_support::fresh_database().await,
        token: String::new(),
        dirs: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    // One server on SQLite, with its device file in the data directory.
    let token = nodes.binary.create_token(dir.path(), "acme", &keebai_protocol::Scope::ALL).await;
    let one = nodes
        .binary
        .serve(dir.path())
        .linker("whatsapp")
        .env("KEEBAI_WHATSAPP_WS_URL", fake.url())
        .env("KEEBAI_WHATSAPP_VERSION", "2.3000.1023456789")
        .spawn()
        .await;
    let api = one.api(&token);
    let channel = link(&api, &fake, &one).await;
    send_when_connected(&api, &channel, "on SQLite").await;
    one.stop().await;

    // Into a database that holds data: refused, and the device it had imported is undone.
    let busy = Nodes::new().await;
    let args = ["migrate", "--to", busy.url.expose_secret()];
    let refused = nodes.binary.command(dir.path(), &args, &[]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds data"));
    let mut db =
        <sqlx::PgConnection as sqlx::Connection>::connect(busy.url.expose_secret()).await.unwrap();
    let (devices,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM wa_device").fetch_one(&mut db).await.unwrap();
    assert_eq!(devices, 0, "nothing of the refused migration stays");

    let args = ["migrate", "--to", nodes.url.expose_secret()];
    let migrated = nodes.binary.command(dir.path(), &args, &[]).await;
    let said = String::from_utf8_lossy(&migrated.stderr);
    assert!(migrated.status.success(), "{said}");
    assert!(
        said.contains("1 channels, 1 message records, 0 webhook endpoints and 1 device keys"),
        "{said}"
    );

    // A cluster server, on a data directory of its own, runs the channel from Postgres.
    let logins = |events: &[WireEvent]| {
        events.iter().filter(|e| matches!(e, WireEvent::Connected { login: Some(_), .. })).count()
    };
    let before = logins(&fake.events());
    let cluster_dir = tempfile::tempdir().unwrap();
    let server = whatsapp_server(&nodes, cluster_dir.path(), &fake).spawn().await;
    fake.wait_until("the migrated channel logs in", LINK_TIMEOUT, |events| logins(events) > before)
        .await
        .unwrap();
    let api = server.api(&token);
    send_when_connected(&api, &channel, "on Postgres").await;
    assert_eq!(fake.wait_for_text(2, LINK_TIMEOUT).await.unwrap().text, "on Postgres");
    assert_eq!(api.numbers_ok().await[0].status, keebai_protocol::ChannelStatus::Connected);
}
