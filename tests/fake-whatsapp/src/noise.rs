//! The server side of WhatsApp's Noise handshake, and the encrypted frames that follow it.
//!
//! The client opens with `WA\x06\x03` (possibly after an `ED` edge-routing pre-intro), then
//! frames with a 3-byte big-endian length. Its first frame is a ClientHello:
//! - with only an ephemeral key: Noise XX (`Noise_XX_25519_AESGCM_SHA256`), a new device;
//! - with an encrypted static key and payload too: Noise IK, a device that remembers our static
//!   key from an earlier XX. This fake never resumes IK; it answers with an XX-shaped ServerHello
//!   (`static` set), which makes the client switch to XXfallback
//!   (`Noise_XXfallback_25519_AESGCM_SHA256`, transcript seeded with its ephemeral), as
//!   WhatsApp does when it rotated its static key (whatsapp-rust `handshake.rs`,
//!   `run_ik_handshake`).
//!
//! Our certificate chain carries zero signatures: only a client built with whatsapp-rust's
//! `danger-skip-cert-chain-verify` accepts it (wacore-noise `handshake.rs`,
//! `verify_server_cert`). The structural checks still hold: intermediate issuer serial 0, leaf
//! issuer serial = intermediate serial, leaf key = our static key.
//!
//! After the handshake each frame is AES-256-GCM with a per-direction counter from 0; the
//! plaintext is one flags byte (bit 2: zlib) and a binary node (`wacore_binary::marshal`
//! writes the flags byte itself).

use anyhow::{Context, bail};
use whatsapp_rust::wacore::handshake::{NoiseCipher, NoiseHandshake};
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;
use whatsapp_rust::wacore_binary::consts::{
    NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER,
};
use whatsapp_rust::waproto::buffa::{Message as _, MessageField};
use whatsapp_rust::waproto::whatsapp as wa;

/// Which handshake the client opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A device without our static key (new, or forgotten).
    Xx,
    /// A device that tried to resume with IK and was moved to XXfallback.
    IkFallback,
}

/// Reads the client's byte stream: the optional pre-intro and the connection header, then
/// length-prefixed frames.
#[derive(Default)]
pub struct Frames {
    buffer: Vec<u8>,
    header_seen: bool,
}

impl Frames {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.header_seen {
            // `ED\0\1` + 3-byte length + routing info, then `WA\x06\x03` (wacore-noise
            // `edge_routing.rs`).
            if self.buffer.starts_with(b"ED") {
                if self.buffer.len() < 7 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([0, self.buffer[4], self.buffer[5], self.buffer[6]]);
                let skip = 7 + len as usize;
                if self.buffer.len() < skip {
                    return Ok(None);
                }
                self.buffer.drain(..skip);
            }
            if self.buffer.len() < WA_CONN_HEADER.len() {
                return Ok(None);
            }
            if self.buffer[..4] != WA_CONN_HEADER {
                bail!("the connection does not start with WhatsApp's header");
            }
            self.buffer.drain(..4);
            self.header_seen = true;
        }
        if self.buffer.len() < 3 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, self.buffer[0], self.buffer[1], self.buffer[2]]) as usize;
        if self.buffer.len() < 3 + len {
            return Ok(None);
        }
        let frame = self.buffer[3..3 + len].to_vec();
        self.buffer.drain(..3 + len);
        Ok(Some(frame))
    }
}

/// Frames a payload for the wire (3-byte length prefix).
pub fn frame(payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    whatsapp_rust::wacore::framing::encode_frame(payload, None)
}

/// A zero-signed certificate chain whose leaf is `static_pub`.
pub fn cert_chain(static_pub: &[u8]) -> Vec<u8> {
    use wa::cert_chain::{NoiseCertificate, noise_certificate::Details};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1_700_000_000);
    let intermediate = Details {
        serial: Some(1),
        issuer_serial: Some(0),
        key: Some(vec![0xCC; 32]),
        not_before: Some(now.saturating_sub(86_400)),
        not_after: Some(now + 365 * 86_400),
    };
    let leaf = Details {
        serial: Some(2),
        issuer_serial: Some(1),
        key: Some(static_pub.to_vec()),
        not_before: Some(now.saturating_sub(86_400)),
        not_after: Some(now + 365 * 86_400),
    };
    wa::CertChain {
        leaf: MessageField::some(NoiseCertificate {
            details: Some(leaf.encode_to_vec()),
            signature: Some(vec![0; 64]),
        }),
        intermediate: MessageField::some(NoiseCertificate {
            details: Some(intermediate.encode_to_vec()),
            signature: Some(vec![0; 64]),
        }),
    }
    .encode_to_vec()
}

/// The responder half of one handshake, between ServerHello and ClientFinish.
pub struct Responder {
    noise: NoiseHandshake,
    ephemeral: KeyPair,
    pub pattern: Pattern,
}

/// What the client proved in its ClientFinish.
pub struct Finished {
    /// The client's static (noise) public key.
    pub client_static: [u8; 32],
    pub payload: wa::ClientPayload,
    /// Decrypts what the client sends.
    pub read: NoiseCipher,
    /// Encrypts what we send.
    pub write: NoiseCipher,
}

impl Responder {
    /// Answers a ClientHello; returns the responder and the ServerHello to send.
    pub fn answer(server_static: &KeyPair, client_hello: &[u8]) -> anyhow::Result<(Self, Vec<u8>)> {
        let hello = wa::HandshakeMessage::decode_from_slice(client_hello)
            .context("decoding the ClientHello")?
            .client_hello
            .into_option()
            .context("no ClientHello")?;
        let client_ephemeral: [u8; 32] = hello
            .ephemeral
            .context("the ClientHello has no ephemeral key")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("the client's ephemeral key is not 32 bytes"))?;
        // IK carries the client's static key and a 0-RTT payload; we cannot resume, so the
        // client repeats both in its ClientFinish after XXfallback.
        let pattern = if hello.r#static.is_some() { Pattern::IkFallback } else { Pattern::Xx };
        let name = match pattern {
            Pattern::Xx => NOISE_PATTERN_XX,
            Pattern::IkFallback => NOISE_PATTERN_XXFALLBACK,
        };
        let mut noise = NoiseHandshake::new(name, &WA_CONN_HEADER)?;
        noise.authenticate(&client_ephemeral);

        let ephemeral = KeyPair::generate(&mut rand::rng());
        let ephemeral_pub = ephemeral.public_key.public_key_bytes().to_vec();
        noise.authenticate(&ephemeral_pub);
        noise.mix_shared_secret(ephemeral.private_key.serialize(), &client_ephemeral)?;
        let static_pub = server_static.public_key.public_key_bytes();
        let encrypted_static = noise.encrypt(static_pub)?;
        noise.mix_shared_secret(server_static.private_key.serialize(), &client_ephemeral)?;
        let encrypted_chain = noise.encrypt(&cert_chain(static_pub))?;

        let server_hello = wa::HandshakeMessage {
            server_hello: MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(ephemeral_pub),
                r#static: Some(encrypted_static),
                payload: Some(encrypted_chain),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok((Self { noise, ephemeral, pattern }, server_hello.encode_to_vec()))
    }

    /// Reads the ClientFinish: the client's static key and its ClientPayload.
    pub fn finish(mut self, client_finish: &[u8]) -> anyhow::Result<Finished> {
        let finish = wa::HandshakeMessage::decode_from_slice(client_finish)
            .context("decoding the ClientFinish")?
            .client_finish
            .into_option()
            .context("no ClientFinish (the client refused our ServerHello)")?;
        let client_static: [u8; 32] = self
            .noise
            .decrypt(&finish.r#static.context("the ClientFinish has no static key")?)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("the client's static key is not 32 bytes"))?;
        self.noise.mix_shared_secret(self.ephemeral.private_key.serialize(), &client_static)?;
        let payload =
            self.noise.decrypt(&finish.payload.context("the ClientFinish has no payload")?)?;
        let payload =
            wa::ClientPayload::decode_from_slice(&payload).context("decoding the ClientPayload")?;
        // `finish` names the keys from the initiator's side.
        let (client_to_server, server_to_client) = self.noise.finish()?;
        Ok(Finished { client_static, payload, read: client_to_server, write: server_to_client })
    }
}

/// The two ciphers of an established connection, with their counters.
pub struct Transport {
    read: NoiseCipher,
    write: NoiseCipher,
    read_counter: u32,
    write_counter: u32,
}

impl Transport {
    pub fn new(read: NoiseCipher, write: NoiseCipher) -> Self {
        Self { read, write, read_counter: 0, write_counter: 0 }
    }

    /// Decrypts one frame into a node's bytes (flags byte removed, inflated if compressed).
    pub fn open(&mut self, mut frame: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        self.read.decrypt_in_place_with_counter(self.read_counter, &mut frame)?;
        self.read_counter += 1;
        Ok(whatsapp_rust::wacore_binary::util::unpack(&frame)?.into_owned())
    }

    /// Encrypts a marshalled node (with its flags byte) into a frame.
    pub fn seal(&mut self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let ciphertext = self.write.encrypt_with_counter(self.write_counter, plaintext)?;
        self.write_counter += 1;
        frame(&ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::wacore::handshake::XxHandshakeState;
    use whatsapp_rust::wacore_binary::consts::WA_CONN_HEADER;

    use super::*;

    /// whatsapp-rust's own initiator, against our responder (with this crate's dev-dependency
    /// on the certificate feature, as every client pointed at the fake).
    #[test]
    fn whatsapp_rusts_initiator_completes_an_xx_handshake_and_the_ciphers_pair_up() {
        let server = KeyPair::generate(&mut rand::rng());
        let client_static = KeyPair::generate(&mut rand::rng());
        let payload = wa::ClientPayload { username: Some(56912345678), ..Default::default() };
        let mut client =
            XxHandshakeState::new(client_static.clone(), payload.encode_to_vec(), &WA_CONN_HEADER)
                .unwrap();

        let hello = client.build_client_hello().unwrap();
        let mut frames = Frames::default();
        frames.feed(
            &whatsapp_rust::wacore::framing::encode_frame(&hello, Some(&WA_CONN_HEADER)).unwrap(),
        );
        let (responder, server_hello) =
            Responder::answer(&server, &frames.next_frame().unwrap().unwrap()).unwrap();
        assert_eq!(responder.pattern, Pattern::Xx);
        let finish = client.read_server_hello_and_build_client_finish(&server_hello).unwrap();
        let finished = responder.finish(&finish).unwrap();
        assert_eq!(&finished.client_static[..], client_static.public_key.public_key_bytes());
        assert_eq!(finished.payload.username, Some(56912345678));

        let outcome = client.finish().unwrap();
        let mut transport = Transport::new(finished.read, finished.write);
        let sealed = outcome.write_cipher.encrypt_with_counter(0, b"\x00node").unwrap();
        assert_eq!(transport.open(sealed).unwrap(), b"node");
        let frame = transport.seal(b"\x00back").unwrap();
        let mut back = frame[3..].to_vec();
        outcome.read_cipher.decrypt_in_place_with_counter(0, &mut back).unwrap();
        assert_eq!(back, b"\x00back");
    }

    #[test]
    fn frames_skip_an_edge_routing_preintro_and_wait_for_whole_frames() {
        let mut frames = Frames::default();
        let preintro =
            whatsapp_rust::wacore::handshake::build_edge_routing_preintro(b"route").unwrap();
        frames.feed(&preintro);
        frames.feed(&WA_CONN_HEADER);
        frames.feed(&[0, 0, 3, b'a']);
        assert_eq!(frames.next_frame().unwrap(), None);
        frames.feed(b"bc");
        assert_eq!(frames.next_frame().unwrap(), Some(b"abc".to_vec()));
    }
}
