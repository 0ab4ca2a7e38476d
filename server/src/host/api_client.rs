use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, header};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tower::ServiceExt;

/// How the host reaches the keebai API. Either way the host only speaks HTTP semantics and never
/// needs the API's internals.
#[derive(Clone)]
pub enum ApiClient {
    /// The API of this process, called as a tower `Service`.
    InProcess { api: Router, pat: SecretString },
    /// A keebai-compatible API elsewhere (`--api-url`).
    Remote { base: Url, pat: SecretString, http: reqwest::Client },
}

/// The API could not be reached at all (remote mode).
#[derive(Debug, thiserror::Error)]
#[error("the keebai API at {url} could not be reached: {reason}")]
pub struct Unreachable {
    pub url: String,
    pub reason: String,
}

/// Response headers worth passing on to the browser; everything else stays between host and API.
const RELAYED: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::CACHE_CONTROL];

impl ApiClient {
    pub fn remote(base: Url, pat: SecretString) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self::Remote { base, pat, http })
    }

    /// Calls the API with the host's token. `body` is JSON; `last_event_id` resumes a stream.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<Response<Body>, Unreachable> {
        match self {
            Self::InProcess { api, pat } => {
                let mut request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("Bearer {}", pat.expose_secret()));
                if let Some(id) = last_event_id {
                    request = request.header("last-event-id", id);
                }
                let request = match body {
                    Some(json) => request
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(json.to_string())),
                    None => request.body(Body::empty()),
                };
                // The path and headers are ours and valid; the router never fails (Infallible).
                let request =
                    request.map_err(|e| Unreachable { url: path.into(), reason: e.to_string() })?;
                let response = match api.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok(relay_headers(response))
            }
            Self::Remote { base, pat, http } => {
                let url = base
                    .join(path)
                    .map_err(|e| Unreachable { url: path.into(), reason: e.to_string() })?;
                let mut request =
                    http.request(method, url.clone()).bearer_auth(pat.expose_secret());
                if let Some(id) = last_event_id {
                    request = request.header("last-event-id", id);
                }
                if let Some(json) = body {
                    request = request.json(&json);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| Unreachable { url: url.to_string(), reason: e.to_string() })?;
                let (status, headers) = (response.status(), response.headers().clone());
                let mut full = Response::new(Body::from_stream(response.bytes_stream()));
                *full.status_mut() = status;
                *full.headers_mut() = headers;
                Ok(relay_headers(full))
            }
        }
    }
}

/// Keeps the status, the body and only the [`RELAYED`] headers, whichever way the API answered.
fn relay_headers(response: Response<Body>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let mut relayed = Response::new(body);
    *relayed.status_mut() = parts.status;
    for name in RELAYED {
        if let Some(value) = parts.headers.get(&name) {
            relayed.headers_mut().insert(name, value.clone());
        }
    }
    relayed
}
