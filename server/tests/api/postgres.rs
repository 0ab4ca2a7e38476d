//! The Postgres backend (`--database-url`): the same API on a database of its own per test
//! (`KEEBAI_TEST_DATABASE_URL`, which the test command sets; these tests fail without it).

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ChannelStatus, ErrorCode, Scope, StreamEvent};
use keebai_test_support::{PHONE, ServerBinary, assert_error, fresh_database, spawn_postgres_app};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

#[tokio::test]
async fn a_pairing_on_postgres_connects_sends_and_survives_a_restart() {
    let app = spawn_postgres_app(|_| {}).await;
    let (_session, mut stream, qr) = app.session_showing_qr().await;
    app.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    let StreamEvent::Connected(connected) = stream.next_event().await else {
        panic!("the session connects")
    };
    let sent = app
        .send_text(
            &app.token,
            json!({"channel_id": connected.channel_id, "to": "+14155550100", "text": "Olá"}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);

    let app = app.restart(|_| {}).await;
    let numbers = app.numbers_ok().await;
    assert_eq!(numbers.len(), 1, "the channel is in the database, not the data dir");
    assert_eq!(numbers[0].channel_id, connected.channel_id);
    assert_eq!(numbers[0].phone_number, PHONE);
    assert_eq!(numbers[0].status, ChannelStatus::Connected);
    // Re-linking the same number keeps its channel id, as on SQLite.
    let again = app.pair(PHONE).await;
    assert_eq!(again, connected.channel_id);
}

#[tokio::test]
async fn tokens_live_in_postgres_and_revoked_ones_stop_working() {
    let app = spawn_postgres_app(|_| {}).await;
    let reader = app.token("other", &[Scope::ChannelsRead]).await;
    assert_eq!(app.numbers(&reader).await.status(), StatusCode::OK);
    let refused = app.connect(&reader, json!({"mode": "qr"})).await;
    assert_error(refused, StatusCode::FORBIDDEN, ErrorCode::InsufficientScope).await;

    let tokens = app.state.store.list_tokens().await.unwrap();
    let id = &tokens.iter().find(|t| t.account == "other").unwrap().id;
    assert!(app.state.store.revoke_token(id).await.unwrap());
    assert_error(app.numbers(&reader).await, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated)
        .await;
}

#[tokio::test]
async fn the_token_commands_and_several_servers_share_one_database() {
    let url = fresh_database().await;
    let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let created = binary
        .token_command_with_env(
            dir_a.path(),
            &["create", "--account", "acme", "--scope", "channels:read"],
            &[("KEEBAI_DATABASE_URL", url.expose_secret())],
        )
        .await;
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();

    let serve = |dir: &std::path::Path| {
        binary.serve(dir).linker("simulated").env("KEEBAI_DATABASE_URL", url.expose_secret())
    };
    let server = serve(dir_b.path()).spawn().await;
    assert_eq!(server.api(&token).numbers_ok().await.len(), 0, "a token made beside it works");
    assert!(!server.logs().contains(url.expose_secret()), "the URL is never logged");

    // Other servers share the database (cluster mode), with either linker.
    let second = serve(dir_a.path()).spawn().await;
    assert_eq!(second.api(&token).numbers_ok().await.len(), 0);
    second.kill().await;
    let whatsapp = |dir: &std::path::Path| {
        serve(dir).linker("whatsapp").env("KEEBAI_WHATSAPP_WS_URL", "ws://127.0.0.1:1")
    };
    let dir_c = tempfile::tempdir().unwrap();
    let first = whatsapp(dir_c.path()).spawn().await;
    let next = whatsapp(dir_a.path()).spawn().await;
    assert_eq!(next.api(&token).numbers_ok().await.len(), 0);
    assert!(
        !first.logs().contains(url.expose_secret()) && !next.logs().contains(url.expose_secret())
    );
}

#[tokio::test]
async fn a_bad_database_url_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
    for url in ["mysql://keebai:s3cret@127.0.0.1/keebai", "postgres://keebai:s3cret@127.0.0.1:1/x"]
    {
        let refused = binary
            .serve(dir.path())
            .linker("simulated")
            .env("KEEBAI_DATABASE_URL", url)
            .try_spawn()
            .await;
        let logs = refused.err().expect("it exits");
        assert!(logs.contains("--database-url"), "{logs}");
        assert!(!logs.contains("s3cret"), "{logs}");
    }
}

#[tokio::test]
async fn migrate_copies_a_one_server_install_into_an_empty_postgres_database_once() {
    let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
    let (dir, cluster_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token = binary.create_token(dir.path(), "acme", &Scope::ALL).await;
    let server = binary.serve(dir.path()).spawn().await;
    let api = server.api(&token);
    let channel = api.pair(PHONE).await;
    let body = json!({"channel_id": channel, "to": "+14155550100", "text": "Hola"});
    assert_eq!(api.send_text(&token, body).await.status(), StatusCode::ACCEPTED);
    let hook = json!({"url": "https://example.com/hooks", "events": ["channel.disconnected"]});
    let created = api.post_json(keebai_protocol::WEBHOOKS_PATH, Some(&token), &hook).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let url = fresh_database().await;
    let args = ["migrate", "--to", url.expose_secret()];
    let migrate = || binary.command(dir.path(), &args, &[]);
    let refused = migrate().await;
    assert!(!refused.status.success(), "refused while a server serves the data directory");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already serving"));
    server.stop().await;

    let migrated = migrate().await;
    let said = String::from_utf8_lossy(&migrated.stderr);
    assert!(migrated.status.success(), "{said}");
    // Two accounts and tokens: ours, and the one the widget host minted at the first start.
    let copied = "Copied 2 accounts, 2 tokens, 1 channels, 1 message records, 1 webhook endpoints and 0 device keys";
    assert!(said.contains(copied), "{said}");
    assert!(!said.contains(url.expose_secret()), "{said}");

    // The same token, channel and account on Postgres; new accounts get new ids.
    let env = [("KEEBAI_DATABASE_URL", url.expose_secret())];
    let other = binary
        .token_command_with_env(
            cluster_dir.path(),
            &["create", "--account", "other", "--scope", "channels:read"],
            &env,
        )
        .await;
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));
    let server = binary
        .serve(cluster_dir.path())
        .env("KEEBAI_DATABASE_URL", url.expose_secret())
        .spawn()
        .await;
    let numbers = server.api(&token).numbers_ok().await;
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].channel_id, channel);
    let other = String::from_utf8(other.stdout).unwrap().trim().to_owned();
    assert_eq!(server.api(&other).numbers_ok().await.len(), 0, "another account's view");
    let hooks: serde_json::Value = server
        .api(&token)
        .get(keebai_protocol::WEBHOOKS_PATH, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hooks["data"][0]["url"], "https://example.com/hooks", "{hooks}");
    server.stop().await;

    // A database that holds data is never written into.
    let again = migrate().await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));
}
