//! The server binary as it ships (`cargo build --release -p keebai-server`, what the README's run
//! command builds), which must trust only WhatsApp's own certificates: pointed at the fake
//! WhatsApp server it never gets past the handshake, and on this machine, which cannot reach
//! WhatsApp, a session ends `whatsapp_unreachable`. `scripts/test.sh` builds it (through
//! `scripts/check-release.sh`) and names it in `KEEBAI_E2E_RELEASE_SERVER`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use keebai_fake_whatsapp::{Config, FakeWhatsapp, WireEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn release_server() -> PathBuf {
    let path =
        std::env::var_os("KEEBAI_E2E_RELEASE_SERVER").map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "KEEBAI_E2E_RELEASE_SERVER is not set: run `bash scripts/test.sh`, or build the \
                 server with `cargo build --release -p keebai-server` and name the binary."
            )
        });
    assert!(path.is_file(), "{} is not a built server", path.display());
    path
}

/// The release server with the whatsapp linker on a free port, and a token of its account.
struct Release {
    _child: Child,
    base: String,
    token: String,
    started: Instant,
}

impl Release {
    async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let binary = release_server();
        let token = std::process::Command::new(&binary)
            .env("KEEBAI_DATA_DIR", data_dir)
            .args(["token", "create", "--account", "acme", "--scope", "channels:connect"])
            .output()
            .unwrap();
        assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
        let mut child = Command::new(&binary)
            .env("KEEBAI_DATA_DIR", data_dir)
            .env("KEEBAI_LISTEN", "127.0.0.1:0")
            .env("KEEBAI_LINKER", "whatsapp")
            .env("KEEBAI_WHATSAPP_CONNECT_TIMEOUT_SECS", "2")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the server starts")
                .unwrap()
                .expect("the server listens before it exits");
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        Self { _child: child, base: format!("http://{address}"), token, started: Instant::now() }
    }

    /// Starts a session and reads its whole stream (the server closes it after `failed`).
    async fn session_stream(&self) -> String {
        let client = reqwest::Client::new();
        let session: serde_json::Value = client
            .post(format!("{}/v1/channels/whatsapp/connect", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"mode": "qr"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!("{}{}", self.base, session["stream_url"].as_str().unwrap());
        let stream = client.get(url).bearer_auth(&self.token).send().await.unwrap();
        tokio::time::timeout(Duration::from_secs(15), stream.text())
            .await
            .expect("the stream ends")
            .unwrap()
    }
}

#[tokio::test]
async fn the_release_server_checks_whatsapps_certificates() {
    let output = std::process::Command::new(release_server()).arg("check-build").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("verified"));
}

#[tokio::test]
async fn the_release_server_pointed_at_the_fake_whatsapp_never_shows_a_code() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env =
        [("KEEBAI_WHATSAPP_WS_URL", fake.url()), ("KEEBAI_WHATSAPP_VERSION", "2.3000.1023456789")];
    let server = Release::start(dir.path(), &env).await;
    let stream = server.session_stream().await;

    assert!(
        !stream.contains("event: qr"),
        "no code from a server WhatsApp did not sign:\n{stream}"
    );
    assert!(stream.contains("event: failed"), "{stream}");
    assert!(stream.contains("\"code\":\"whatsapp_unreachable\""), "{stream}");
    let events = fake.events();
    assert!(
        events.iter().any(|e| matches!(e, WireEvent::HandshakeFailed { .. })),
        "the client dialled the fake and refused its certificate: {events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, WireEvent::Connected { .. })),
        "no handshake finished"
    );
}

#[tokio::test]
async fn the_release_server_on_this_machine_ends_whatsapp_unreachable_and_keeps_no_device_file() {
    // WhatsApp's real endpoint, as in production: these machines cannot reach it.
    let dir = tempfile::tempdir().unwrap();
    let server = Release::start(dir.path(), &[]).await;
    let stream = server.session_stream().await;
    let after = server.started.elapsed();
    assert!(stream.contains("\"code\":\"whatsapp_unreachable\""), "{stream}");
    assert!(stream.contains("2 s"), "the reason says how long it waited: {stream}");
    assert!(after >= Duration::from_secs(2), "{after:?}");
    let devices = dir.path().join("devices");
    keebai_e2e::wait_for("the pending device file deleted", || async {
        let left = std::fs::read_dir(&devices).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(())
    })
    .await;
}
