//! Whether this build trusts only WhatsApp's own servers.
//!
//! whatsapp-rust checks the Noise certificate chain a server presents with XEdDSA, up to
//! WhatsApp's root key; its `danger-skip-cert-chain-verify` feature skips those signature
//! checks, so that tests can talk to a local fake WhatsApp server (`tests/fake-whatsapp`). The
//! feature is enabled only in `[dev-dependencies]`, but cargo unifies features per build: a
//! `cargo test` or `cargo bench` build of `keebai-server` carries it (WHATSAPP.md). Such a binary
//! must never dial the real WhatsApp, so the server asks the library itself: it presents a
//! chain whose signatures are all zero, structurally valid otherwise, and sees whether it passes.

use whatsapp_rust::wacore::handshake::HandshakeUtils;
use whatsapp_rust::waproto::buffa::{Message as _, MessageField};
use whatsapp_rust::waproto::whatsapp::CertChain;
use whatsapp_rust::waproto::whatsapp::cert_chain::{NoiseCertificate, noise_certificate::Details};

/// `true` when this build's whatsapp-rust accepts a certificate chain nobody signed: a test
/// build, unfit to reach WhatsApp.
pub fn accepts_unsigned_certificates() -> bool {
    let key = [7u8; 32];
    let certificate = |details: Details| NoiseCertificate {
        details: Some(details.encode_to_vec()),
        signature: Some(vec![0; 64]),
    };
    let intermediate = Details {
        serial: Some(1),
        issuer_serial: Some(0),
        key: Some(vec![9; 32]),
        not_before: Some(0),
        not_after: Some(u64::MAX / 2),
    };
    let leaf = Details {
        serial: Some(2),
        issuer_serial: Some(1),
        key: Some(key.to_vec()),
        not_before: Some(0),
        not_after: Some(u64::MAX / 2),
    };
    let chain = CertChain {
        leaf: MessageField::some(certificate(leaf)),
        intermediate: MessageField::some(certificate(intermediate)),
    };
    HandshakeUtils::verify_server_cert(&chain.encode_to_vec(), &key).is_ok()
}

#[cfg(test)]
mod tests {
    /// Unit tests build with the dev-dependencies, whose whatsapp-rust skips the checks (so the
    /// fake WhatsApp server works): the guard must see that. The release build's answer is
    /// checked by `scripts/check-release.sh`, through `keebai-server check-build`.
    #[test]
    fn a_test_build_is_recognised_as_one_that_accepts_unsigned_certificates() {
        assert!(super::accepts_unsigned_certificates());
    }
}
