//! Webhook delivery benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p keebai-server --bench webhooks` (`-- --events N`, default 2000). With
//! `KEEBAI_TEST_DATABASE_URL` set (`scripts/postgres.sh start`) it measures Postgres too.
//!
//! It runs the real `keebai-server` binary on a fresh store and a receiver in this process on
//! loopback (an axum route that answers 204 at once: the figures are the server's, not a
//! receiver's). Each event is a `POST /v1/webhooks/{id}/test`, which writes the outbox like any
//! change does. It measures:
//! 1. **throughput**: events queued as fast as the API takes them, to one endpoint (whose
//!    deliveries go one after another, in order) and spread over ten endpoints (in parallel);
//!    events per second from the first request to the last delivery;
//! 2. **latency**: from a change's request to its delivery reaching the receiver, with the
//!    server otherwise idle, one event at a time; p50 and p99.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use keebai_protocol::{Scope, WEBHOOK_TEST_ROUTE, WEBHOOKS_PATH, webhook_path};
use keebai_test_support::{Api, ServerBinary, ServerProcess};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

/// When each `webhook-id` arrived.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, headers: HeaderMap) -> StatusCode {
    let now = Instant::now();
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        arrivals.at.lock().await.entry(id.to_owned()).or_insert(now);
        arrivals.changed.notify_waiters();
    }
    StatusCode::NO_CONTENT
}

async fn receiver() -> (String, Arc<Arrivals>) {
    let arrivals = Arc::new(Arrivals::default());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

impl Arrivals {
    /// Waits until every id in `ids` has arrived; their arrival times.
    async fn all(&self, ids: &[String]) -> Vec<Instant> {
        loop {
            let changed = self.changed.notified();
            {
                let at = self.at.lock().await;
                if ids.iter().all(|id| at.contains_key(id)) {
                    return ids.iter().map(|id| at[id]).collect();
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
    }
}

async fn start(dir: &std::path::Path, database_url: Option<&str>) -> ServerProcess {
    let mut serve = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"))
        .serve(dir)
        .env("KEEBAI_WEBHOOK_ALLOW_HTTP", "true")
        .env("KEEBAI_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("RUST_LOG", "warn")
        .free_port();
    if let Some(url) = database_url {
        serve = serve.env("KEEBAI_DATABASE_URL", url);
    }
    serve.spawn().await
}

async fn endpoint(api: &Api, url: &str) -> String {
    let created: Value = api
        .post_json(WEBHOOKS_PATH, Some(&api.token), &json!({ "url": url }))
        .await
        .json()
        .await
        .unwrap();
    created["webhook_id"].as_str().unwrap().to_owned()
}

async fn queue(api: &Api, webhook: &str) -> String {
    let path = webhook_path(WEBHOOK_TEST_ROUTE, webhook);
    let response = api.post_json(&path, Some(&api.token), &json!({})).await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let queued: Value = response.json().await.unwrap();
    queued["event_id"].as_str().unwrap().to_owned()
}

/// Queues `events` spread over `endpoints` (eight requests in flight) and returns events per
/// second, from the first request to the last delivery.
async fn throughput(
    api: &Api,
    url: &str,
    arrivals: &Arrivals,
    endpoints: usize,
    events: usize,
) -> f64 {
    let mut webhooks = Vec::new();
    for _ in 0..endpoints {
        webhooks.push(endpoint(api, url).await);
    }
    let started = Instant::now();
    let ids: Vec<String> = futures::future::join_all((0..8).map(|lane| {
        let (api, webhooks) = (api.clone(), webhooks.clone());
        async move {
            let mut ids = Vec::new();
            for n in (lane..events).step_by(8) {
                ids.push(queue(&api, &webhooks[n % webhooks.len()]).await);
            }
            ids
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let last = arrivals.all(&ids).await.into_iter().max().unwrap();
    events as f64 / (last - started).as_secs_f64()
}

/// Change → delivery, one event at a time.
async fn latency(api: &Api, url: &str, arrivals: &Arrivals, events: usize) -> Vec<Duration> {
    let webhook = endpoint(api, url).await;
    let mut samples = Vec::with_capacity(events);
    for _ in 0..events {
        let requested = Instant::now();
        let id = queue(api, &webhook).await;
        let arrived = arrivals.all(std::slice::from_ref(&id)).await[0];
        samples.push(arrived - requested);
    }
    samples.sort();
    samples
}

async fn measure(backend: &str, database_url: Option<&str>, events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
    let token = match database_url {
        Some(url) => {
            let mut args = vec!["create", "--account", "bench"];
            args.extend(["--scope", Scope::WebhooksManage.as_str()]);
            let out = binary
                .token_command_with_env(dir.path(), &args, &[("KEEBAI_DATABASE_URL", url)])
                .await;
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        None => binary.create_token(dir.path(), "bench", &[Scope::WebhooksManage]).await,
    };
    let server = start(dir.path(), database_url).await;
    let api = server.api(&token);
    let (url, arrivals) = receiver().await;

    let one = throughput(&api, &url, &arrivals, 1, events).await;
    let ten = throughput(&api, &url, &arrivals, 10, events).await;
    let samples = latency(&api, &url, &arrivals, 200).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{backend:<9} throughput, 1 endpoint   {one:>8.0} events/s  ({events} events, in order)"
    );
    println!("{backend:<9} throughput, 10 endpoints {ten:>8.0} events/s  ({events} events)");
    println!(
        "{backend:<9} change -> delivery        p50 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms  ({} events, one at a time)",
        ms(pick(0.50)),
        ms(pick(0.99)),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
    server.stop().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    measure("sqlite", None, events).await;
    match std::env::var(keebai_test_support::postgres::DATABASE_URL_VAR) {
        Ok(_) => {
            use secrecy::ExposeSecret;
            let url = keebai_test_support::fresh_database().await;
            measure("postgres", Some(url.expose_secret()), events).await;
        }
        Err(_) => println!("(set KEEBAI_TEST_DATABASE_URL to measure Postgres too)"),
    }
}
