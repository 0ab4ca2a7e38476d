//! What every event stream's response carries, the API's and the widget host's relay alike.

use axum::http::{HeaderMap, HeaderValue, header};

/// No cache may keep the stream, and nginx-style proxies must not buffer it
/// (`X-Accel-Buffering: no`).
pub fn unbuffered(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
