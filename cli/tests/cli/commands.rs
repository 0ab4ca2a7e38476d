use keebai_test_support::{PHONE, spawn_app};

use crate::helpers::{keebai, run};

#[tokio::test]
async fn numbers_prints_a_table_and_json() {
    let server = spawn_app().await;
    let channel = server.pair(PHONE).await;

    let (code, table, _) = run(keebai(&server, &["whatsapp", "numbers"])).await;
    assert_eq!(code, 0);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("CHANNEL"));
    let row = lines.next().unwrap();
    assert!(row.contains(&channel) && row.contains(PHONE) && row.contains("connected"), "{row}");

    let (code, json, _) = run(keebai(&server, &["whatsapp", "numbers", "--json"])).await;
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["data"][0]["channel_id"], channel.as_str());
    assert_eq!(value["data"][0]["connection_type"], "qr");
}

#[tokio::test]
async fn send_text_sends_and_api_errors_print_the_code_and_message() {
    let server = spawn_app().await;
    let channel = server.pair(PHONE).await;

    let args =
        ["messages", "send-text", "--channel", &channel, "--to", "+14155550100", "--text", "Hola"];
    let (code, stdout, _) = run(keebai(&server, &args)).await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("Sent msg_"), "{stdout}");
    let inbox = server.sim_inbox(&channel).await;
    assert_eq!(inbox.data[0].text, "Hola");

    let args = ["messages", "send-text", "--channel", &channel, "--to", "555", "--text", "Hola"];
    let (code, _, stderr) = run(keebai(&server, &args)).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("INVALID_PHONE_NUMBER: `to`: phone number must be E.164"), "{stderr}");
}

#[tokio::test]
async fn a_missing_token_is_a_clear_usage_error() {
    let server = spawn_app().await;
    let mut command = keebai(&server, &["whatsapp", "connect", "--qr"]);
    command.env_remove("KEEBAI_TOKEN");
    let (code, stdout, stderr) = run(command).await;
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("no API token") && stderr.contains("KEEBAI_TOKEN"), "{stderr}");
    assert_eq!(server.live_sessions().await, 0);
}

#[tokio::test]
async fn a_rejected_token_is_reported_without_echoing_it() {
    let server = spawn_app().await;
    let secret = "kbai_pk_000000000000000000000000000000000000000000000000";
    let mut command = keebai(&server, &["whatsapp", "numbers"]);
    command.env("KEEBAI_TOKEN", secret);
    let (code, stdout, stderr) = run(command).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}

#[tokio::test]
async fn an_unreachable_api_names_the_url_that_failed() {
    let server = spawn_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut command = keebai(&server, &["whatsapp", "numbers"]);
    command.env("KEEBAI_API_URL", format!("http://{closed}"));
    let (code, _, stderr) = run(command).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("could not reach http://{closed}/v1/whatsapp/numbers")),
        "{stderr}"
    );
}

/// The CLI talks HTTP only: neither the server nor whatsapp-rust is among its dependencies
/// (nor among those of the one workspace crate it uses).
#[test]
fn the_cli_depends_on_neither_the_server_nor_whatsapp_rust() {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in [manifest_dir.join("Cargo.toml"), manifest_dir.join("../protocol/Cargo.toml")] {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let parsed: toml::Table = text.parse().unwrap();
        let deps =
            parsed.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
        for forbidden in ["keebai-server", "whatsapp-rust"] {
            assert!(!deps.contains_key(forbidden), "{} depends on {forbidden}", manifest.display());
        }
        let workspace_deps: Vec<_> = deps.keys().filter(|k| k.starts_with("keebai-")).collect();
        assert!(workspace_deps.iter().all(|k| *k == "keebai-protocol"), "{workspace_deps:?}");
    }
}

#[tokio::test]
async fn webhooks_add_list_test_and_remove() {
    let server = spawn_app().await;
    let args = [
        "webhooks",
        "add",
        "https://example.com/hooks",
        "--event",
        "channel.disconnected",
        "--event",
        "message.failed",
        "--json",
    ];
    let (code, json, _) = run(keebai(&server, &args)).await;
    assert_eq!(code, 0);
    let created: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = created["webhook_id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["events"], serde_json::json!(["channel.disconnected", "message.failed"]));

    let (code, table, _) = run(keebai(&server, &["webhooks", "list"])).await;
    assert_eq!(code, 0);
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains(&id) && row.contains("channel.disconnected,message.failed"), "{row}");
    assert!(!table.contains("whsec_"), "{table}");

    let (code, stdout, _) = run(keebai(&server, &["webhooks", "test", &id])).await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("Queued webhook.test evt_"), "{stdout}");

    let (code, stdout, _) = run(keebai(&server, &["webhooks", "remove", &id])).await;
    assert_eq!((code, stdout.trim()), (0, format!("Webhook {id} removed.").as_str()));
    let (code, _, stderr) = run(keebai(&server, &["webhooks", "remove", &id])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("WEBHOOK_NOT_FOUND"), "{stderr}");

    let bad = ["webhooks", "add", "https://example.com", "--event", "channel.*"];
    let (code, _, stderr) = run(keebai(&server, &bad)).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown event type"), "{stderr}");
    let (code, _, stderr) = run(keebai(&server, &["webhooks", "add", "http://10.0.0.1/x"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("INVALID_WEBHOOK_URL"), "{stderr}");
}
