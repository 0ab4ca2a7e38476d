//! Where a webhook may be sent: the defence against server-side request forgery.
//!
//! A customer names a URL, and the server POSTs to it from inside the operator's network; left
//! alone, `http://169.254.169.254/…` (a cloud's metadata service) or `http://127.0.0.1:5432`
//! would be reachable by anyone with a token. So:
//! - a URL is `https://` (or `http://` when the operator allows it), names a host, and carries
//!   no user name or password (they would show up in listings and logs);
//! - names are resolved when a delivery is sent, by [`GuardedResolver`], which hands the HTTP
//!   client only the public addresses: the address checked is the address connected to, so a
//!   name that changes its answer between a check and the connection (DNS rebinding) gains
//!   nothing;
//! - an address written in the URL is checked the same way (the client does not resolve it);
//! - private, loopback, link-local, shared (CGNAT), multicast, documentation and reserved
//!   ranges are refused, in IPv4 and IPv6 (IPv4-mapped and NAT64 addresses by the IPv4 inside),
//!   unless the operator allows private targets (tests do, for receivers on loopback);
//! - the client follows no redirect, times out quickly, and reads at most a few KB of an
//!   answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Name, Resolve, Resolving};

/// What the operator allows beyond public `https://` targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `http://` URLs too.
    pub allow_http: bool,
    /// Private, loopback and link-local addresses too.
    pub allow_private: bool,
}

/// Why a URL is not a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is not valid")]
    Invalid,
    #[error("the URL must start with https://")]
    Scheme,
    #[error("the URL must not hold a user name or password")]
    Credentials,
    #[error("the URL points at a private, loopback or link-local address")]
    Private,
}

impl TargetPolicy {
    /// Checks a URL as the customer gave it (when an endpoint is created, and again before
    /// each delivery).
    pub fn check(&self, url: &str) -> Result<Url, TargetError> {
        let url = Url::parse(url).map_err(|_| TargetError::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(TargetError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        match url.host() {
            None => Err(TargetError::Invalid),
            Some(url::Host::Domain(_)) => Ok(url),
            Some(url::Host::Ipv4(ip)) => self.address(IpAddr::V4(ip)).map(|()| url),
            Some(url::Host::Ipv6(ip)) => self.address(IpAddr::V6(ip)).map(|()| url),
        }
    }

    fn address(&self, ip: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || is_public(ip) { Ok(()) } else { Err(TargetError::Private) }
    }

    /// An HTTP client that connects only where this policy allows, follows no redirect, and
    /// gives up after `timeout`.
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { policy: *self }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("keebai-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Resolves names at connection time and keeps only the addresses the policy allows; a name
/// with none left fails to resolve.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                found.filter(|a| policy.address(a.ip()).is_ok()).collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(TargetError::Private) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address inside.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0                                  // "this network"
        || (a == 100 && (64..128).contains(&b))    // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0)          // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))     // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00                 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80                 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0                 // site-local (deprecated) fec0::/10
        || (first == 0x2001 && ip.segments()[1] == 0xdb8) // documentation
        || first == 0x0100) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in
            ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
        {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_https_with_a_host_and_no_credentials() {
        let strict = TargetPolicy::default();
        assert!(strict.check("https://hooks.example.com/keebai").is_ok());
        assert_eq!(strict.check("http://hooks.example.com/").unwrap_err(), TargetError::Scheme);
        assert_eq!(strict.check("ftp://hooks.example.com/").unwrap_err(), TargetError::Scheme);
        assert_eq!(strict.check("not a url").unwrap_err(), TargetError::Invalid);
        assert_eq!(
            strict.check("https://user:pw@hooks.example.com/").unwrap_err(),
            TargetError::Credentials
        );
        for private in
            ["https://127.0.0.1/", "https://169.254.169.254/latest", "https://[::1]:8443/"]
        {
            assert_eq!(strict.check(private).unwrap_err(), TargetError::Private, "{private}");
        }
        let tests = TargetPolicy { allow_http: true, allow_private: true };
        assert!(tests.check("http://127.0.0.1:9/").is_ok());
    }

    /// A name that resolves only to loopback is refused when the client connects (no request
    /// leaves), and reaches a receiver on loopback when the operator allows it.
    #[tokio::test]
    async fn names_are_checked_where_the_client_connects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
            axum::serve(listener, app).await.unwrap();
        });
        let url = format!("http://localhost:{port}/hook");

        let strict = TargetPolicy { allow_http: true, allow_private: false };
        let url_ok = strict.check(&url).unwrap(); // a name: checked at connection time
        let client = strict.client(Duration::from_secs(2)).unwrap();
        let refused = client.post(url_ok).send().await.unwrap_err();
        assert!(refused.is_connect(), "{refused:?}");

        let open = TargetPolicy { allow_http: true, allow_private: true };
        let client = open.client(Duration::from_secs(2)).unwrap();
        let answer = client.post(&url).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        server.abort();
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(|| async {
                    axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data")
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
        let open = TargetPolicy { allow_http: true, allow_private: true };
        let client = open.client(Duration::from_secs(2)).unwrap();
        let answer = client.post(format!("http://127.0.0.1:{port}/hook")).send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::TEMPORARY_REDIRECT, "not followed");
        server.abort();
    }
}
