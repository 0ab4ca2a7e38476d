//! Webhook signatures checked by the receivers a customer would write: the `standardwebhooks`
//! libraries from PyPI and npm (`scripts/setup-receivers.sh` installs them), over real HTTP on
//! loopback. Checking our signatures with our own code would prove nothing.

use std::process::Stdio;
use std::time::Duration;

use keebai_server::webhooks::deliver::{Message, Outcome, post};
use keebai_server::webhooks::signing::Secret;
use keebai_server::webhooks::target::TargetPolicy;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A receiver process listening on loopback, and the lines it reports.
pub(crate) struct Receiver {
    pub(crate) port: u16,
    lines: Lines<BufReader<ChildStdout>>,
    _process: Child,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Language {
    Python,
    Node,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run `eval \"$(bash scripts/setup-receivers.sh)\"` first")
    })
}

impl Receiver {
    /// Starts a receiver in `language` that trusts `secret`.
    async fn start(language: Language, secret: &str) -> Self {
        Self::start_with(language, &[secret], &[]).await
    }

    /// Starts a receiver in `language` that checks each delivery with each of `secrets`, with
    /// the options of `tests/receivers/receiver.py` (`--fail N`, `--hang`, `--port P`).
    pub(crate) async fn start_with(language: Language, secrets: &[&str], options: &[&str]) -> Self {
        let script =
            |name: &str| format!("{}/../tests/receivers/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut command = match language {
            Language::Python => {
                let mut c = Command::new(env("KEEBAI_RECEIVER_PYTHON"));
                c.arg(script("receiver.py"));
                c
            }
            Language::Node => {
                let mut c = Command::new("node");
                c.arg(script("receiver.mjs")).env("NODE_PATH", env("KEEBAI_RECEIVER_NODE_PATH"));
                c
            }
        };
        let mut process = command
            .arg(secrets.join(","))
            .args(options)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("the {language:?} receiver: {e}"));
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .and_then(|l| l.trim().parse().ok())
            .expect("the receiver prints its port");
        Self { port, lines, _process: process }
    }

    /// `http://127.0.0.1:<port>/hooks`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// The next delivery it reports (within 30 s).
    pub(crate) async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("a delivery arrives")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).unwrap()
    }

    /// The next delivery, which its library verified: its `webhook-id` and its parsed body.
    pub(crate) async fn next_verified(&mut self) -> (String, Value) {
        let said = self.next().await;
        assert_eq!(said["ok"], true, "{said}");
        let body = serde_json::from_str(said["body"].as_str().unwrap()).unwrap();
        (said["id"].as_str().unwrap().to_owned(), body)
    }

    /// Whether it reports anything within `wait`.
    pub(crate) async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.lines.next_line()).await.is_err()
    }

    /// Sends one message signed with `secrets` and returns the outcome and what the receiver's
    /// library said.
    async fn deliver(&mut self, secrets: &[Secret], message: &Message<'_>) -> (Outcome, Value) {
        let policy = TargetPolicy { allow_http: true, allow_private: true };
        let client = policy.client(Duration::from_secs(5)).unwrap();
        let url = policy.check(&self.url()).unwrap();
        let outcome = post(&client, url, secrets, message).await;
        (outcome, self.next().await)
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const BODY: &[u8] = br#"{"type":"channel.connected","timestamp":"2026-12-02T10:00:00Z","data":{"channel_id":"ch_1"}}"#;

async fn receivers_verify_and_refuse(language: Language) {
    let (secret, rotated) = (Secret::generate(), Secret::generate());
    let mut receiver = Receiver::start(language, secret.expose()).await;
    let message = Message { id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", timestamp: now(), body: BODY };

    let (outcome, said) = receiver.deliver(std::slice::from_ref(&secret), &message).await;
    assert_eq!(said["ok"], true, "{language:?}: {said}");
    assert_eq!(
        (said["id"].as_str(), said["body"].as_str()),
        (Some(message.id), std::str::from_utf8(BODY).ok())
    );
    assert!(outcome.delivered() && outcome.status == Some(204), "{outcome:?}");

    // During a rotation both secrets sign: a receiver still on the old one accepts it.
    let (_, said) = receiver.deliver(&[rotated.clone(), secret.clone()], &message).await;
    assert_eq!(said["ok"], true, "{language:?}: {said}");
    // Signed only by a secret the receiver does not know: refused.
    let (outcome, said) = receiver.deliver(&[rotated], &message).await;
    assert_eq!(said["ok"], false, "{language:?}: {said}");
    assert_eq!(outcome.status, Some(401));

    // A tampered body, and a timestamp outside the libraries' tolerance (5 minutes), are
    // refused: the signature is over the id, the timestamp and the exact body.
    let tampered = Message {
        body: br#"{"type":"channel.connected","data":{"channel_id":"ch_2"}}"#,
        ..message.clone()
    };
    let signed_for_other_body = secret.sign(message.id, message.timestamp, BODY);
    assert_ne!(signed_for_other_body, secret.sign(tampered.id, tampered.timestamp, tampered.body));
    let forged = ForgedBody { secret: &secret, signed: &message, sent: tampered.body };
    let said = forged.send(&mut receiver).await;
    assert_eq!(said["ok"], false, "{language:?}: tampered body accepted: {said}");
    let stale = Message { timestamp: now() - 10 * 60, ..message.clone() };
    let (_, said) = receiver.deliver(std::slice::from_ref(&secret), &stale).await;
    assert_eq!(said["ok"], false, "{language:?}: a 10 minute old timestamp accepted: {said}");
}

/// A body changed in transit: the headers of one message, the bytes of another.
struct ForgedBody<'a> {
    secret: &'a Secret,
    signed: &'a Message<'a>,
    sent: &'a [u8],
}

impl ForgedBody<'_> {
    async fn send(&self, receiver: &mut Receiver) -> Value {
        let signature = self.secret.sign(self.signed.id, self.signed.timestamp, self.signed.body);
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/hooks", receiver.port))
            .header("content-type", "application/json")
            .header("webhook-id", self.signed.id)
            .header("webhook-timestamp", self.signed.timestamp.to_string())
            .header("webhook-signature", signature)
            .body(self.sent.to_vec())
            .send()
            .await
            .unwrap();
        receiver.next().await
    }
}

#[tokio::test]
async fn pythons_standardwebhooks_verifies_our_signatures_and_refuses_forgeries() {
    receivers_verify_and_refuse(Language::Python).await;
}

#[tokio::test]
async fn nodes_standardwebhooks_verifies_our_signatures_and_refuses_forgeries() {
    receivers_verify_and_refuse(Language::Node).await;
}

/// The answer's body is read only up to a small limit, and a refused target sends nothing.
#[tokio::test]
async fn answers_are_read_to_a_limit_and_private_targets_get_nothing() {
    use keebai_server::webhooks::deliver::KEPT_ANSWER_BYTES;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "x".repeat(10 * 1024 * 1024) }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let secret = Secret::generate();
    let message = Message { id: "msg_1", timestamp: now(), body: b"{}" };
    let open = TargetPolicy { allow_http: true, allow_private: true };
    let url = open.check(&format!("http://127.0.0.1:{port}/hooks")).unwrap();
    let outcome = post(
        &open.client(Duration::from_secs(5)).unwrap(),
        url,
        std::slice::from_ref(&secret),
        &message,
    )
    .await;
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.detail.len(), KEPT_ANSWER_BYTES);

    let strict = TargetPolicy { allow_http: true, allow_private: false };
    let by_name = strict.check(&format!("http://localhost:{port}/hooks")).unwrap();
    let outcome =
        post(&strict.client(Duration::from_secs(5)).unwrap(), by_name, &[secret], &message).await;
    assert_eq!(outcome.status, None);
    assert!(
        outcome.detail.contains("not an allowed address") && !outcome.detail.contains("localhost"),
        "{}",
        outcome.detail
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "the refused one never arrived");
    server.abort();
}
