//! Real-linker timing benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p keebai-server --bench linking` (`-- --runs N`, default 10).
//!
//! It runs the real `keebai-server` binary (the bench build, whose whatsapp-rust accepts the fake's
//! unsigned certificates) with `KEEBAI_LINKER=whatsapp` against the fake WhatsApp server on
//! loopback, and measures, per run, on a fresh data dir:
//! 1. **scan → connected**: from the fake phone sending `pair-success` to the SSE client reading
//!    `connected` (pair-device-sign, the 515 restart, login, the app-state key share, the
//!    critical app-state sync and the push name all happen in between);
//! 2. **restart → channel connected**: from starting the server again after `kill -9` to the
//!    fake seeing the channel's device log in (Noise IK answered with XXfallback), and to the
//!    first `POST /v1/messages/text` answered 202.
//!
//! Loopback has no network latency: these are the product's and whatsapp-rust's own costs; a
//! real WhatsApp adds its round trips (about six for a link, two for a resume).

use std::path::Path;
use std::time::{Duration, Instant};

use keebai_fake_whatsapp::{Config, FakeWhatsapp, Phone, WireEvent};
use keebai_protocol::{Scope, StreamEvent};
use keebai_test_support::{ServerBinary, ServerProcess};
use serde_json::json;

/// Generous: a bench run on a loaded machine is slow, not wrong.
const LINK_TIMEOUT: Duration = Duration::from_secs(60);

fn binary() -> ServerBinary {
    ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"))
}

/// The server with the whatsapp linker pointed at `fake`.
async fn start(dir: &Path, fake: &FakeWhatsapp) -> ServerProcess {
    binary()
        .serve(dir)
        .linker("whatsapp")
        .env("KEEBAI_WHATSAPP_WS_URL", fake.url())
        .env("KEEBAI_WHATSAPP_VERSION", "2.3000.1023456789")
        .spawn()
        .await
}

fn logins(fake: &FakeWhatsapp) -> usize {
    fake.connections().1
}

/// One run: link, then kill -9 and restart. Returns (scan → connected, restart → logged in,
/// restart → first text accepted).
async fn run(fake: &FakeWhatsapp, phone_number: &str) -> (Duration, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let scopes = [Scope::ChannelsConnect, Scope::MessagesSend];
    let token = binary().create_token(dir.path(), "bench", &scopes).await;
    let server = start(dir.path(), fake).await;
    let api = server.api(&token);

    let session = api.connect_ok().await;
    let mut events = api.stream(&session).await;
    let mut scanned = None;
    let channel_id = loop {
        match events.next_within(LINK_TIMEOUT).await.expect("an event").1 {
            StreamEvent::Qr(qr) if scanned.is_none() => {
                scanned = Some(Instant::now());
                fake.scan(&qr.data, &Phone::new(phone_number, "Bench")).await.unwrap();
            }
            StreamEvent::Connected(connected) => break connected.channel_id,
            StreamEvent::Failed(failed) => panic!("{failed:?}"),
            _ => {}
        }
    };
    let link = scanned.unwrap().elapsed();

    let before = logins(fake);
    server.kill().await;
    let restarted = Instant::now();
    let server = start(dir.path(), fake).await;
    let api = server.api(&token);
    while logins(fake) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let logged_in = restarted.elapsed();
    loop {
        let text = json!({"channel_id": channel_id, "to": "+56911111111", "text": "bench"});
        let response = api.send_text(&token, text).await;
        if response.status() == reqwest::StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (link, logged_in, restarted.elapsed())
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<36} min {:>7.1} ms   median {:>7.1} ms   max {:>7.1} ms   ({} runs)",
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10usize);
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let (mut links, mut logins_, mut sends) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..runs {
        let (link, login, send) = run(&fake, &format!("+569{:08}", 10_000_000 + n)).await;
        links.push(link);
        logins_.push(login);
        sends.push(send);
    }
    let texts = fake.texts().len();
    let handshakes_failed =
        fake.events().iter().filter(|e| matches!(e, WireEvent::HandshakeFailed { .. })).count();
    println!("real linker against the fake WhatsApp server (loopback), {runs} runs:");
    summary("scan -> connected", links);
    summary("restart -> channel logged in", logins_);
    summary("restart -> first text accepted", sends);
    println!(
        "texts decrypted by the fake contact: {texts}; failed handshakes: {handshakes_failed}"
    );
    // Two logins per run (after the 515 restart, after the kill -9); each further one is
    // whatsapp-rust dropping its first connection after the restart and logging in again.
    let logins = logins(&fake);
    println!("logins: {logins}, {} more than two per run", logins.saturating_sub(2 * runs));
}
