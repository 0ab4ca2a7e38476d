//! The server binary as it ships (`cargo build --release -p keebai-server`, what the README's run
//! command builds), which must trust only WhatsApp's own certificates: pointed at the fake
//! WhatsApp server it never gets past the handshake, and on this machine, which cannot reach
//! WhatsApp, a session ends `whatsapp_unreachable`. `scripts/test.sh` builds it (through
//! `scripts/check-release.sh`) and names it in `KEEBAI_E2E_RELEASE_SERVER`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keebai_fake_whatsapp::{Config, FakeWhatsapp, WireEvent};
use keebai_protocol::{FailedEvent, FailureCode, Scope, StreamEvent};
use keebai_test_support::{Api, ServerBinary, ServerProcess};

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

/// The release server with the whatsapp linker on port 0, and a token of its account.
struct Release {
    _server: ServerProcess,
    api: Api,
    started: Instant,
}

impl Release {
    async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let binary = ServerBinary::new(release_server());
        let token = binary.create_token(data_dir, "acme", &[Scope::ChannelsConnect]).await;
        let mut serve = binary
            .serve(data_dir)
            .linker("whatsapp")
            .env("KEEBAI_WHATSAPP_CONNECT_TIMEOUT_SECS", "2");
        for (key, value) in env {
            serve = serve.env(key, *value);
        }
        let server = serve.spawn().await;
        let api = server.api(&token);
        Self { _server: server, api, started: Instant::now() }
    }

    /// Starts a session and reads its whole stream (the server closes it after `failed`).
    async fn session_stream(&self) -> Vec<StreamEvent> {
        let session = self.api.connect_ok().await;
        self.api.stream(&session).await.rest().await
    }
}

/// The `failed` event that ends `stream`.
fn failure(stream: &[StreamEvent]) -> &FailedEvent {
    match stream.last() {
        Some(StreamEvent::Failed(failed)) => failed,
        other => panic!("the stream ends with failed: {other:?} in {stream:?}"),
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
        !stream.iter().any(|event| matches!(event, StreamEvent::Qr(_))),
        "no code from a server WhatsApp did not sign: {stream:?}"
    );
    assert_eq!(failure(&stream).code, FailureCode::WhatsappUnreachable, "{stream:?}");
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
    let failed = failure(&stream);
    assert_eq!(failed.code, FailureCode::WhatsappUnreachable, "{stream:?}");
    assert!(failed.reason.contains("2 s"), "the reason says how long it waited: {stream:?}");
    assert!(after >= Duration::from_secs(2), "{after:?}");
    let devices = dir.path().join("devices");
    keebai_e2e::wait_for("the pending device file deleted", || async {
        let left = std::fs::read_dir(&devices).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(())
    })
    .await;
}
