//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): each delivery carries
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a space-separated
//! list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per live secret (two
//! while a rotated secret is still honoured). Secrets are `whsec_` and the base64 of 32 random
//! bytes; the bytes are the HMAC key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret, `whsec_…`. Never logged: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

/// A stored secret that is not `whsec_` and base64.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a signing secret is `whsec_` and base64")]
pub struct BadSecret;

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = [0u8; SECRET_BYTES];
        getrandom::fill(&mut key).expect("the operating system's random numbers");
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)).into())
    }

    /// A secret as stored or shown (`whsec_…`).
    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let secret = Self(text.to_owned().into());
        secret.key()?;
        Ok(secret)
    }

    /// The secret as shown to its owner once, and as stored.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn key(&self) -> Result<Vec<u8>, BadSecret> {
        let encoded = self.expose().strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        let key = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
        if key.is_empty() { Err(BadSecret) } else { Ok(key) }
    }

    /// `v1,<base64>`: this secret's signature of one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // `parse` and `generate` only make secrets whose key decodes.
        let key = self.key().unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header for one delivery: a signature per secret, space-separated
/// (the current secret first).
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    let signatures: Vec<String> = secrets.iter().map(|s| s.sign(id, timestamp, body)).collect();
    signatures.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' test suites (the same secret,
    /// id, timestamp and payload, and the signature they expect).
    #[test]
    fn the_reference_libraries_example_signs_the_same() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature =
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_random_whsec_and_sign_differently() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert!(a.expose().starts_with("whsec_") && a.expose().len() > 40, "{}", a.expose());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(Secret::parse(a.expose()).unwrap().sign("m", 1, b"{}"), a.sign("m", 1, b"{}"));
        assert_ne!(a.sign("m", 1, b"{}"), b.sign("m", 1, b"{}"));
        assert_eq!(format!("{a:?}"), "Secret(whsec_…)", "never in a log");
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (new, old) = (Secret::generate(), Secret::generate());
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 7, b"{}");
        assert_eq!(
            header,
            format!("{} {}", new.sign("msg_1", 7, b"{}"), old.sign("msg_1", 7, b"{}"))
        );
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in ["", "whsec_", "whsec_!!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "sk_whsec_abc"] {
            assert_eq!(Secret::parse(bad).unwrap_err(), BadSecret, "{bad:?}");
        }
    }
}
