//! "Link with phone number": the server's side of the pairing-code flow, in the companion's
//! order (whatsapp-rust-0.7.0 `src/pair_code.rs`; whatsmeow `pair-code.go` @ 33cfac51):
//! 1. the companion asks with `<iq xmlns="md" type="set"><link_code_companion_reg
//!    stage="companion_hello">` (its ephemeral key wrapped with the code, its Noise key, the
//!    phone number in `jid`); the fake holds the request by number and answers with a
//!    `<link_code_pairing_ref>`, or with a queued refusal;
//! 2. when the code is typed on the phone ([`crate::FakeWhatsapp::enter_code`]), it sends
//!    `<notification type="link_code_companion_reg"><link_code_companion_reg
//!    stage="primary_hello">` with the phone's wrapped ephemeral key and identity key;
//! 3. the companion answers `<iq><link_code_companion_reg stage="companion_finish">` with its
//!    key bundle; the fake acknowledges it, and the phone opens the bundle: a wrong code fails
//!    here, silently for the companion; the right one yields the ADV secret, and the link
//!    finishes as a QR scan does (`pair-success`, `pair-device-sign`, 515).
//!
//! Every byte payload is built with `NodeBuilder::bytes`, which the encoder writes as raw
//! binary: the companion reads these children only as `NodeContentRef::Bytes`
//! (whatsapp-rust-0.7.0 `src/pair_code.rs:628-674`, wacore-0.7.0 `src/pair_code.rs:493-500`),
//! and a string would be dropped.

use std::time::Instant;

use tokio::sync::oneshot;
use whatsapp_rust::wacore_binary::Node;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;

use super::{Conn, SERVER, attr, bytes, now, result, user_of};
use crate::code::{self, PrimaryHello, WRAPPED_KEY_LEN};
use crate::phone::{Account, QrCode};
use crate::{CodeRefusal, CodeRequest, PendingCode, WireEvent, lock};

/// The phone's `primary_hello`, waiting for the companion's `companion_finish`.
pub struct CodeLink {
    pub account: Account,
    pub hello: PrimaryHello,
    pub reference: Vec<u8>,
    /// The companion's Noise key from its `companion_hello`: the key its login must use.
    pub noise_pub: [u8; 32],
    pub done: oneshot::Sender<anyhow::Result<String>>,
}

impl Conn {
    /// `<iq><link_code_companion_reg stage=…>` from the companion.
    pub(super) async fn link_code_iq(&mut self, id: &str, node: &Node) -> anyhow::Result<()> {
        let Some(reg) = node.get_optional_child("link_code_companion_reg") else {
            return self.send(refusal(id, &CodeRefusal::bad_request())).await;
        };
        match attr(reg, "stage").as_deref() {
            Some("companion_hello") => self.companion_hello(id, reg).await,
            Some("companion_finish") => self.companion_finish(id, reg).await,
            _ => self.send(refusal(id, &CodeRefusal::bad_request())).await,
        }
    }

    /// Stage 1 (wacore-0.7.0 `src/pair_code.rs:442-490`; whatsmeow `pair-code.go:104-124`).
    async fn companion_hello(&mut self, id: &str, reg: &Node) -> anyhow::Result<()> {
        let child = |tag: &str| reg.get_optional_child(tag).and_then(bytes).map(<[u8]>::to_vec);
        let text = |tag: &str| child(tag).map(|b| String::from_utf8_lossy(&b).into_owned());
        let (phone_number, _) = user_of(&attr(reg, "jid").unwrap_or_default());
        let wrapped: Option<[u8; WRAPPED_KEY_LEN]> =
            child("link_code_pairing_wrapped_companion_ephemeral_pub")
                .and_then(|w| w.try_into().ok());
        let noise_pub: Option<[u8; 32]> =
            child("companion_server_auth_key_pub").and_then(|k| k.try_into().ok());
        // (inferred) WhatsApp refuses a malformed hello with 400 `bad-request`, as it does a
        // display name that is not "Browser (OS)" (wacore-0.7.0 `src/pair_code.rs:157-163`); a
        // linked device, or a Noise key that is not this connection's, cannot ask either.
        let (Some(wrapped), Some(noise_pub)) = (wrapped, noise_pub) else {
            return self.send(refusal(id, &CodeRefusal::bad_request())).await;
        };
        if self.registration.is_none()
            || noise_pub != self.client_static
            || phone_number.is_empty()
            || !phone_number.chars().all(|c| c.is_ascii_digit())
        {
            return self.send(refusal(id, &CodeRefusal::bad_request())).await;
        }
        let refused = lock(&self.shared.state).code_refusals.pop_front();
        if let Some(how) = refused {
            return self.send(refusal(id, &how)).await;
        }
        let push_notification =
            attr(reg, "should_show_push_notification").as_deref() == Some("true");
        let reference =
            format!("fake-code-{}-{:016x}", self.id, rand::random::<u64>()).into_bytes();
        let request = CodeRequest {
            conn: self.id,
            phone_number: phone_number.clone(),
            push_notification,
            platform_id: text("companion_platform_id").unwrap_or_default(),
            platform_display: text("companion_platform_display").unwrap_or_default(),
            attempts: 0,
            wrong_attempts: 0,
        };
        // One outstanding code per number, the latest: WhatsApp routes `primary_hello` by number
        // (whatsapp-rust-0.7.0 `src/pair_code.rs:172-184`).
        lock(&self.shared.state).codes.insert(
            phone_number.clone(),
            PendingCode {
                request,
                reference: reference.clone(),
                wrapped,
                noise_pub,
                requested: Instant::now(),
            },
        );
        self.shared.record(WireEvent::CodeRequested {
            conn: self.id,
            phone_number,
            push_notification,
        });
        // The answer whatsapp-rust's own tests give (whatsapp-rust-0.7.0
        // `src/pair_code.rs:1809-1821`).
        let answer = NodeBuilder::new("link_code_companion_reg")
            .attr("stage", "companion_hello")
            .children([NodeBuilder::new("link_code_pairing_ref").bytes(reference).build()])
            .build();
        self.send(result(id, vec![answer])).await
    }

    /// Stage 2: the code was typed on the phone (whatsapp-rust-0.7.0 `src/pair_code.rs:1498-1518`
    /// is the companion's own fixture; whatsmeow `pair-code.go:152-184` reads the same children).
    pub(super) async fn primary_hello(&mut self, link: Box<CodeLink>) -> anyhow::Result<()> {
        if let Some(earlier) = self.code_link.take() {
            let _ = earlier.done.send(Err(anyhow::anyhow!("the code was typed again")));
        }
        let reg = NodeBuilder::new("link_code_companion_reg")
            .attr("stage", "primary_hello")
            .children([
                NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .bytes(link.hello.wrapped.to_vec())
                    .build(),
                NodeBuilder::new("primary_identity_pub")
                    .bytes(link.account.account_key.public_key.public_key_bytes().to_vec())
                    .build(),
                NodeBuilder::new("link_code_pairing_ref").bytes(link.reference.clone()).build(),
            ])
            .build();
        let id = self.next_id();
        self.send(
            NodeBuilder::new("notification")
                .attr("from", SERVER)
                .attr("id", id)
                .attr("type", "link_code_companion_reg")
                .attr("t", now().to_string())
                .children([reg])
                .build(),
        )
        .await?;
        self.code_link = Some(*link);
        Ok(())
    }

    /// Stage 3 (wacore-0.7.0 `src/pair_code.rs:502-537`; whatsmeow `pair-code.go:234-247`): the
    /// server acknowledges it either way, and the phone opens the bundle.
    async fn companion_finish(&mut self, id: &str, reg: &Node) -> anyhow::Result<()> {
        let child = |tag: &str| reg.get_optional_child(tag).and_then(bytes).map(<[u8]>::to_vec);
        let reference = child("link_code_pairing_ref").unwrap_or_default();
        let Some(link) = self.code_link.take_if(|link| link.reference == reference) else {
            // No `primary_hello` for this ref. WA Web's parser admits only `bad-request` and
            // `internal-server-error` here (wacore-0.7.0 `src/pair_code.rs:651-658`).
            return self.send(refusal(id, &CodeRefusal::bad_request())).await;
        };
        // Success is a bare result: whatsapp-rust reads nothing from it
        // (whatsapp-rust-0.7.0 `src/pair_code.rs:874-897`).
        self.send(result(id, vec![])).await?;
        let bundle = child("link_code_pairing_wrapped_key_bundle").unwrap_or_default();
        let opened = code::open_key_bundle(&link.hello, &link.account, &bundle).and_then(|o| {
            let named = child("companion_identity_public");
            let registered = self.registration.as_ref().map(|c| c.identity.public_key());
            anyhow::ensure!(
                named.as_deref() == Some(&o.companion_identity[..])
                    && registered.is_some_and(|k| k.public_key_bytes() == o.companion_identity),
                "the key bundle's identity is not the one this companion registered"
            );
            Ok(o)
        });
        let user = link.account.user.clone();
        let opened = match opened {
            Ok(opened) => opened,
            Err(error) => {
                // The phone tells its user; the companion hears nothing
                // (whatsapp-rust-0.7.0 `src/pair_code.rs:949-956`).
                let wrong_attempts = {
                    let mut state = lock(&self.shared.state);
                    let pending = state.codes.get_mut(&user).filter(|p| p.reference == reference);
                    pending.map_or(0, |p| {
                        p.request.wrong_attempts += 1;
                        p.request.wrong_attempts
                    })
                };
                self.shared.record(WireEvent::WrongCode { phone_number: user, wrong_attempts });
                let _ = link.done.send(Err(error));
                return Ok(());
            }
        };
        lock(&self.shared.state).codes.remove(&user);
        // From here the link is a QR scan's: the same signed `pair-success`, keyed with the
        // ADV secret both sides derived instead of one the QR carried.
        let code = QrCode {
            reference: String::from_utf8_lossy(&reference).into_owned(),
            noise_pub: link.noise_pub,
            identity_pub: opened.companion_identity,
            adv_secret: opened.adv_secret,
        };
        self.scanned(Box::new(link.account), code, link.done).await
    }
}

/// `<iq type="error"><error code=… text=… [backoff=…]/></iq>`, as whatsapp-rust parses it
/// (wacore-0.7.0 `src/request.rs:270-291`).
fn refusal(id: &str, how: &CodeRefusal) -> Node {
    let mut error =
        NodeBuilder::new("error").attr("code", how.code.to_string()).attr("text", how.text.clone());
    if let Some(backoff) = how.backoff {
        error = error.attr("backoff", backoff.to_string());
    }
    NodeBuilder::new("iq")
        .attr("id", id)
        .attr("type", "error")
        .attr("from", SERVER)
        .children([error.build()])
        .build()
}
