//! Webhooks in a cluster: the outbox in Postgres, each delivery claimed (`SKIP LOCKED`) and
//! sent by one server, in order per endpoint whichever server queued each event.

use std::time::Duration;

use super::Nodes;
use crate::webhook_delivery::{add, test_event};
use crate::webhooks::{Language, Receiver};

#[tokio::test]
async fn each_delivery_is_sent_once_by_one_server_in_order() {
    let mut nodes = Nodes::new().await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let server = nodes
            .serve(dir.path())
            .env("KEEBAI_WEBHOOK_ALLOW_HTTP", "true")
            .env("KEEBAI_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("KEEBAI_WEBHOOK_FIRST_RETRY_MS", "100")
            .spawn()
            .await;
        nodes.dirs.push(dir);
        servers.push(server);
    }
    let apis: Vec<_> = servers.iter().map(|s| s.api(&nodes.token)).collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let created = add(&apis[0], &format!("http://127.0.0.1:{port}/hooks"), None).await;

    // Events queued on both servers, while the receiver is down (both senders keep trying).
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(test_event(&apis[n % 2], &created.webhook.webhook_id).await);
    }
    let port = port.to_string();
    let mut receiver =
        Receiver::start_with(Language::Python, &[&created.secret], &["--port", &port]).await;
    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(receiver.next_verified().await.0);
    }
    assert_eq!(got, ids, "each event once, in the order it was queued");
    assert!(receiver.quiet_for(Duration::from_secs(2)).await, "no event sent twice");
}
