//! Cluster mode: two or three real server processes on one Postgres database, with the
//! simulated linker. Each test has a database of its own (`KEEBAI_TEST_DATABASE_URL`), or a
//! Postgres server of its own when it restarts it.
//!
//! - `pairing`: sessions seen, resumed, cancelled and scanned through any server; a server's
//!   death or stop; a Postgres restart.
//! - `channels`: each channel live on exactly one server, placement, hand-over, sends.
//! - `whatsapp`: the real linker with its keys in Postgres, taken over by another server.
//! - `webhooks`: each delivery sent once, by one server, in order.

mod channels;
mod pairing;
mod webhooks;
mod whatsapp;

use std::path::Path;

use keebai_protocol::{ConnectResponse, Scope, StreamEvent};
use keebai_test_support::{Api, Serve, ServerBinary, ServerProcess, SseReader, fresh_database};
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

/// Servers on one database, and a token of its account.
struct Nodes {
    binary: ServerBinary,
    url: SecretString,
    token: String,
    dirs: Vec<TempDir>,
}

impl Nodes {
    async fn on(url: SecretString) -> Self {
        let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["create", "--account", "acme"];
        for scope in Scope::ALL {
            args.extend(["--scope", scope.as_str()]);
        }
        let created = binary
            .token_command_with_env(
                dir.path(),
                &args,
                &[("KEEBAI_DATABASE_URL", url.expose_secret())],
            )
            .await;
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        Self { binary, url, token, dirs: vec![dir] }
    }

    async fn new() -> Self {
        Self::on(fresh_database().await).await
    }

    /// A server of the cluster: codes rotate every 2 s, a scan links in 200 ms.
    fn serve(&self, dir: &Path) -> Serve {
        self.binary
            .serve(dir)
            .env("KEEBAI_DATABASE_URL", self.url.expose_secret())
            .env("KEEBAI_QR_FIRST_TTL_SECS", "2")
            .env("KEEBAI_QR_TTL_SECS", "2")
            .env("KEEBAI_SIM_LINK_DELAY_MS", "200")
    }

    /// Two servers, and the API on each.
    async fn two(&mut self) -> (ServerProcess, ServerProcess, Api, Api) {
        let (a, b) = (self.start().await, self.start().await);
        let (api_a, api_b) = (a.api(&self.token), b.api(&self.token));
        (a, b, api_a, api_b)
    }

    async fn start(&mut self) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let server = self.serve(dir.path()).spawn().await;
        self.dirs.push(dir);
        server
    }
}

/// Every event up to the end of the stream, with their ids.
async fn rest(stream: &mut SseReader) -> Vec<(u64, StreamEvent)> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    events
}

/// The next `n` events of a stream, with their ids.
async fn take(stream: &mut SseReader, n: usize) -> Vec<(u64, StreamEvent)> {
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(stream.next().await.expect("another event"));
    }
    events
}

fn qr_of(event: &StreamEvent) -> &str {
    match event {
        StreamEvent::Qr(qr) => &qr.data,
        other => panic!("expected a QR, got {other:?}"),
    }
}

async fn connect(api: &Api) -> ConnectResponse {
    api.connect_ok().await
}
