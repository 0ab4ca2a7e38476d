//! One delivery attempt: the signed POST and what came of it.

use std::time::{Duration, Instant};

use reqwest::Url;

use super::signing::{Secret, signature_header};

/// How much of a receiver's answer is kept (for the deliveries list); the rest is never read.
pub const KEPT_ANSWER_BYTES: usize = 1024;

/// One message to send: its id (the same on every retry, so receivers can drop duplicates),
/// when this attempt signs it, and its JSON body.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub id: &'a str,
    pub timestamp: i64,
    pub body: &'a [u8],
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// From sending to the answer's head (or the failure).
    pub latency: Duration,
    /// The start of the answer's body, or why there was no answer. Never holds the URL, which
    /// may carry the customer's own secrets.
    pub detail: String,
}

impl Outcome {
    /// A 2xx answer: delivered.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// POSTs `message` to `url`, signed with each of `secrets` (the current one first), through a
/// client made by [`super::target::TargetPolicy::client`].
pub async fn post(
    client: &reqwest::Client,
    url: Url,
    secrets: &[Secret],
    message: &Message<'_>,
) -> Outcome {
    let started = Instant::now();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", message.id)
        .header("webhook-timestamp", message.timestamp.to_string())
        .header(
            "webhook-signature",
            signature_header(secrets, message.id, message.timestamp, message.body),
        )
        .body(message.body.to_vec());
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Outcome { status: None, latency: started.elapsed(), detail: failure(&error) };
        }
    };
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    while kept.len() < KEPT_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(KEPT_ANSWER_BYTES);
    Outcome { status: Some(status), latency, detail: String::from_utf8_lossy(&kept).into_owned() }
}

/// Why nothing answered, without the URL.
fn failure(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect (refused, unreachable, or not an allowed address)"
    } else {
        "the request failed"
    };
    kind.to_owned()
}
