//! The built dashboard (`dist/`, from Trunk) with the headers every page gets:
//! a Content-Security-Policy without `unsafe-inline` for scripts (an inline loader script, as
//! Trunk writes one, is allowed by its SHA-256 instead), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`. Files are compressed (gzip or brotli) when the browser
//! accepts it.

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tower::util::BoxCloneSyncService;

use tower::{Layer, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// A service that answers every request it is given (the pages end in one).
pub type PageService =
    BoxCloneSyncService<axum::extract::Request, axum::response::Response, std::convert::Infallible>;

/// The API's JSON 404, as the service the pages fall back to.
pub fn not_found_service() -> PageService {
    BoxCloneSyncService::new(tower::service_fn(|_request: axum::extract::Request| async {
        use axum::response::IntoResponse;
        Ok(crate::api::not_found().await.into_response())
    }))
}

/// `'sha256-…'` for each inline `<script>` of an HTML page.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else { break };
        let tag = &rest[..open_end];
        let body_start = open_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else { break };
        let body = &rest[body_start..body_start + close];
        if !tag.contains(" src=") && !body.trim().is_empty() {
            hashes.push(format!("'sha256-{}'", STANDARD.encode(Sha256::digest(body.as_bytes()))));
        }
        rest = &rest[body_start + close..];
    }
    hashes
}

/// The policy for the pages in `dist`.
pub fn content_security_policy(dist: &Path) -> String {
    let html = std::fs::read_to_string(dist.join("index.html")).unwrap_or_default();
    let hashes = inline_script_hashes(&html).join(" ");
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {hashes}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    )
    .replace("  ", " ")
}

/// Files from `dist`, else `not_found`; all with the security headers.
pub fn pages(dist: &Path, not_found: PageService) -> PageService {
    let csp = HeaderValue::from_str(&content_security_policy(dist))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let files = ServeDir::new(dist)
        .append_index_html_on_directories(true)
        .call_fallback_on_method_not_allowed(true)
        .fallback(not_found);
    // gzip or brotli, as the browser asks; the widget's budget (90 KB) is its gzipped size.
    let service = CompressionLayer::new().gzip(true).br(true).layer(files);
    let service = service.map_response(|response| response.map(Body::new));
    let service =
        SetResponseHeaderLayer::overriding(HeaderName::from_static("content-security-policy"), csp)
            .layer(service);
    let service = SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    )
    .layer(service);
    let service = SetResponseHeaderLayer::overriding(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    )
    .layer(service);
    BoxCloneSyncService::new(service.map_err(|never| match never {}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_hash_and_external_ones_by_origin() {
        let html = r#"<html><script src="/app.js"></script><script type="module">import init from '/app.js';</script></html>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 1);
        let expected = STANDARD.encode(Sha256::digest(b"import init from '/app.js';"));
        assert_eq!(hashes[0], format!("'sha256-{expected}'"));
    }
}
