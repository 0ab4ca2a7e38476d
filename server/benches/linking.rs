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
use std::process::Stdio;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use keebai_fake_whatsapp::{Config, FakeWhatsapp, Phone, WireEvent};
use keebai_protocol::{ConnectResponse, StreamEvent};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_keebai-server");

struct Server {
    child: Child,
    base: String,
}

async fn start(dir: &Path, fake: &FakeWhatsapp) -> Server {
    let mut child = Command::new(BIN)
        .env("KEEBAI_DATA_DIR", dir)
        .env("KEEBAI_LISTEN", "127.0.0.1:0")
        .env("KEEBAI_LINKER", "whatsapp")
        .env("KEEBAI_WHATSAPP_WS_URL", fake.url())
        .env("KEEBAI_WHATSAPP_VERSION", "2.3000.1023456789")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next_line().await.unwrap().expect("the server listens");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, base: format!("http://{address}") }
}

fn logins(fake: &FakeWhatsapp) -> usize {
    fake.connections().1
}

/// One run: link, then kill -9 and restart. Returns (scan → connected, restart → logged in,
/// restart → first text accepted).
async fn run(fake: &FakeWhatsapp, phone_number: &str) -> (Duration, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BIN)
        .env("KEEBAI_DATA_DIR", dir.path())
        .args(["token", "create", "--account", "bench"])
        .args(["--scope", "channels:connect", "--scope", "messages:send"])
        .output()
        .unwrap();
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    let mut server = start(dir.path(), fake).await;

    let session: ConnectResponse = client
        .post(format!("{}/v1/channels/whatsapp/connect", server.base))
        .bearer_auth(&token)
        .json(&json!({"mode": "qr"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stream = client
        .get(format!("{}{}", server.base, session.stream_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut events = stream.bytes_stream().eventsource();
    let mut scanned = None;
    let channel_id = loop {
        let event = events.next().await.expect("an event").unwrap();
        match StreamEvent::parse(&event.event, &event.data).unwrap() {
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
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    let restarted = Instant::now();
    let server = start(dir.path(), fake).await;
    while logins(fake) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let logged_in = restarted.elapsed();
    loop {
        let response = client
            .post(format!("{}/v1/messages/text", server.base))
            .bearer_auth(&token)
            .json(&json!({"channel_id": channel_id, "to": "+56911111111", "text": "bench"}))
            .send()
            .await
            .unwrap();
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
