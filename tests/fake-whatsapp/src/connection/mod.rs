//! One client connection: the WebSocket, the handshake, then nodes until either side closes.
//!
//! - this file: the connection's life, pairing (`<pair-device>`, the phone's `<pair-success>`,
//!   its check of `pair-device-sign`, the 515 restart), login (`<success>`, or `<failure>` for a
//!   device the phone removed), the phone's greeting on a first login (its push name in
//!   `<notification type="account_sync">` and its app-state keys, which saves the client's
//!   fixed 10 s wait), redelivery of what a device has not acknowledged, and interruptions;
//! - `iq`: the answers to the client's IQs;
//! - `messages`: texts to contacts, and the phone's app-state key share;
//! - `link_code`: linking with a phone number and a code instead of a QR.

mod iq;
pub mod link_code;
mod messages;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_websockets::{Message, WebSocketStream};
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Jid, Node, NodeContent};

use crate::noise::{Frames, Responder, Transport};
use crate::phone::{Account, QrCode, Signed};
use crate::signal::{Companion, Party};
use crate::{Interruption, Shared, WireEvent, lock};

const SERVER: &str = "s.whatsapp.net";

/// What a test (through [`crate::FakeWhatsapp`]) asks of a connection.
pub enum Command {
    /// The phone scanned one of this connection's codes.
    Scanned {
        account: Box<Account>,
        code: QrCode,
        done: oneshot::Sender<anyhow::Result<String>>,
    },
    /// The code was typed on the phone: send `primary_hello`.
    PrimaryHello(Box<link_code::CodeLink>),
    Interrupt(Interruption),
    RequestPasskey,
    Close,
}

/// A live connection, as the shared state knows it.
pub struct Handle {
    pub commands: mpsc::UnboundedSender<Command>,
    /// `(user, device)` of a linked device; `None` while pairing.
    pub login: Option<(String, u16)>,
}

/// A scan waiting for the companion's `pair-device-sign`.
struct PendingPair {
    iq_id: String,
    account: Account,
    code: QrCode,
    signed: Signed,
    device: u16,
    done: oneshot::Sender<anyhow::Result<String>>,
}

struct Conn {
    shared: Arc<Shared>,
    id: u64,
    ws: WebSocketStream<TcpStream>,
    transport: Transport,
    /// The client's Noise static key.
    client_static: [u8; 32],
    /// A new device's registration keys.
    registration: Option<Companion>,
    login: Option<(String, u16)>,
    pairing: Option<PendingPair>,
    /// A `primary_hello` sent, waiting for `companion_finish`.
    code_link: Option<link_code::CodeLink>,
    next_id: u64,
}

pub async fn serve(shared: Arc<Shared>, id: u64, socket: TcpStream) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let result = run(&shared, id, socket, commands, receiver).await;
    let error = result.err().map(|error| format!("{error:#}"));
    if let Some(error) = &error {
        tracing::debug!(conn = id, %error, "fake WhatsApp connection ended");
    }
    {
        let mut state = lock(&shared.state);
        state.connections.remove(&id);
        // A code dies with the connection that asked for it: the companion forgets it on
        // disconnect (whatsapp-rust-0.7.0 `src/client/lifecycle.rs:1056-1067`).
        state.codes.retain(|_, code| code.request.conn != id);
    }
    shared.record(WireEvent::Closed { conn: id, error });
}

async fn run(
    shared: &Arc<Shared>,
    id: u64,
    socket: TcpStream,
    commands: mpsc::UnboundedSender<Command>,
    mut receiver: mpsc::UnboundedReceiver<Command>,
) -> anyhow::Result<()> {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new().accept(socket).await?;
    let mut frames = Frames::default();
    let handshake = async {
        let hello = next_frame(&mut ws, &mut frames).await?;
        let (responder, server_hello) = Responder::answer(&shared.static_key, &hello)?;
        let pattern = responder.pattern;
        ws.send(Message::binary(crate::noise::frame(&server_hello)?)).await?;
        let finish = next_frame(&mut ws, &mut frames).await?;
        anyhow::Ok((pattern, responder.finish(&finish)?))
    };
    let (pattern, finished) = match handshake.await {
        Ok(done) => done,
        Err(error) => {
            shared.record(WireEvent::HandshakeFailed { conn: id, error: format!("{error:#}") });
            return Err(error);
        }
    };
    let payload = finished.payload;
    let login = payload.username.map(|user| (user.to_string(), payload.device.unwrap_or(0) as u16));
    let registration = match payload.device_pairing_data.as_option() {
        Some(data) if login.is_none() => {
            Some(Companion::from_registration(finished.client_static, data)?)
        }
        _ => None,
    };
    let interruption = {
        let mut state = lock(&shared.state);
        state.connections.insert(id, Handle { commands, login: login.clone() });
        state.next_connections.pop_front()
    };
    shared.record(WireEvent::Connected { conn: id, pattern, login: login.clone() });
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        ws,
        transport: Transport::new(finished.read, finished.write),
        client_static: finished.client_static,
        registration,
        login,
        pairing: None,
        code_link: None,
        next_id: 0,
    };
    if let Some(how) = interruption {
        return conn.interrupt(how).await;
    }
    conn.open().await?;
    loop {
        tokio::select! {
            message = conn.ws.next() => {
                let Some(message) = message else { return Ok(()) };
                let message = message?;
                if message.is_close() {
                    return Ok(());
                }
                if !message.is_binary() {
                    continue;
                }
                frames.feed(&message.into_payload());
                while let Some(frame) = frames.next_frame()? {
                    let bytes = conn.transport.open(frame)?;
                    let node = whatsapp_rust::wacore_binary::marshal::unmarshal_ref(&bytes)?.to_owned();
                    conn.shared.record(WireEvent::Received { conn: id, node: node.clone() });
                    conn.receive(node).await?;
                }
            }
            command = receiver.recv() => match command {
                None | Some(Command::Close) => return Ok(()),
                Some(Command::Interrupt(how)) => return conn.interrupt(how).await,
                Some(Command::RequestPasskey) => conn.request_passkey().await?,
                Some(Command::PrimaryHello(link)) => conn.primary_hello(link).await?,
                Some(Command::Scanned { account, code, done }) => conn.scanned(account, code, done).await?,
            },
        }
    }
}

async fn next_frame(
    ws: &mut WebSocketStream<TcpStream>,
    frames: &mut Frames,
) -> anyhow::Result<Vec<u8>> {
    loop {
        if let Some(frame) = frames.next_frame()? {
            return Ok(frame);
        }
        let message = ws.next().await.context("the client closed during the handshake")??;
        if message.is_close() {
            bail!("the client closed during the handshake");
        }
        frames.feed(&message.into_payload());
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn attr(node: &Node, name: &str) -> Option<String> {
    node.attrs.get(name).map(|v| v.as_str().into_owned())
}

fn children(node: &Node) -> &[Node] {
    node.children().unwrap_or_default()
}

fn bytes(node: &Node) -> Option<&[u8]> {
    match &node.content {
        Some(NodeContent::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// `<iq type="result" id=… from="s.whatsapp.net">children</iq>`.
fn result(id: &str, content: Vec<Node>) -> Node {
    let iq = NodeBuilder::new("iq").attr("id", id).attr("type", "result").attr("from", SERVER);
    if content.is_empty() { iq.build() } else { iq.children(content).build() }
}

fn error(id: &str, code: u16) -> Node {
    NodeBuilder::new("iq")
        .attr("id", id)
        .attr("type", "error")
        .attr("from", SERVER)
        .children([NodeBuilder::new("error")
            .attr("code", code.to_string())
            .attr("text", "not-implemented")
            .build()])
        .build()
}

/// The digits of a JID's user part, and its device.
fn user_of(jid: &str) -> (String, u16) {
    let (user, _server) = jid.split_once('@').unwrap_or((jid, ""));
    let (user, device) =
        user.split_once(':').map_or((user, 0), |(u, d)| (u, d.parse().unwrap_or(0)));
    (user.to_owned(), device)
}

impl Conn {
    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("fake-{}-{}", self.id, self.next_id)
    }

    async fn send(&mut self, node: Node) -> anyhow::Result<()> {
        let plaintext = whatsapp_rust::wacore_binary::marshal::marshal(&node)?;
        let frame = self.transport.seal(&plaintext)?;
        self.shared.record(WireEvent::Sent { conn: self.id, node });
        self.ws.send(Message::binary(frame)).await?;
        Ok(())
    }

    async fn close(&mut self) -> anyhow::Result<()> {
        let _ = self.ws.close().await;
        Ok(())
    }

    /// The first nodes: `<pair-device>` for a new device, `<success>` or a refusal for a linked one.
    async fn open(&mut self) -> anyhow::Result<()> {
        let Some((user, device)) = self.login.clone() else {
            if self.registration.is_none() {
                self.send(failure("400")).await?;
                return self.close().await;
            }
            return self.offer_refs().await;
        };
        let (known, first_login, lid, push_name) = {
            let state = lock(&self.shared.state);
            let companion = state.devices.get(&(user.clone(), device));
            let account = state.accounts.get(&user);
            (
                companion.is_some_and(|c| c.noise_pub == self.client_static),
                companion.is_some_and(|c| !c.logged_in),
                account.map(|a| a.lid.clone()).unwrap_or_default(),
                account.map(|a| a.push_name.clone()).unwrap_or_default(),
            )
        };
        if !known {
            // A device the phone removed, or never linked.
            self.send(failure("401")).await?;
            return self.close().await;
        }
        let mut success = NodeBuilder::new("success").attr("t", now().to_string());
        if !lid.is_empty() {
            success = success.attr("lid", format!("{lid}@lid"));
        }
        self.send(success.build()).await?;
        if first_login {
            // The phone greets its new companion: its name (as after any change on the phone)
            // and, like a real phone, its app-state keys.
            let mut greeting = Vec::new();
            if !push_name.is_empty() {
                greeting.push(
                    NodeBuilder::new("notification")
                        .attr("from", SERVER)
                        .attr("id", self.next_id())
                        .attr("type", "account_sync")
                        .attr("t", now().to_string())
                        .attr("pushname", push_name)
                        .build(),
                );
            }
            if self.shared.config.share_app_state_keys {
                greeting.push(self.app_state_key_share(&user, device).await?);
            }
            let mut state = lock(&self.shared.state);
            if let Some(companion) = state.devices.get_mut(&(user.clone(), device)) {
                companion.logged_in = true;
                companion.offline = greeting;
            }
        }
        // Like WhatsApp, deliver what the device has not acknowledged yet, on every login until
        // it does: whatsapp-rust may drop the first connection after the 515 restart before it
        // reads anything (a race of its own teardown against a server that answers in
        // microseconds on loopback), and a real server would redeliver.
        let queued = lock(&self.shared.state)
            .devices
            .get(&(user, device))
            .map(|c| c.offline.clone())
            .unwrap_or_default();
        for node in queued {
            self.send(node).await?;
        }
        Ok(())
    }

    async fn offer_refs(&mut self) -> anyhow::Result<()> {
        let refs: Vec<String> = (0..self.shared.config.refs_per_connection)
            .map(|n| format!("2@fake{}r{n}{:016x}", self.id, rand::random::<u64>()))
            .collect();
        {
            let mut state = lock(&self.shared.state);
            for reference in &refs {
                state.refs.insert(reference.clone(), self.id);
            }
        }
        let id = self.next_id();
        let refs = refs.into_iter().map(|r| NodeBuilder::new("ref").bytes(r.into_bytes()).build());
        self.send(
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "set")
                .attr("id", id)
                .attr("xmlns", "md")
                .children([NodeBuilder::new("pair-device").children(refs).build()])
                .build(),
        )
        .await
    }

    async fn interrupt(&mut self, how: Interruption) -> anyhow::Result<()> {
        let node = match how {
            Interruption::DeviceRemoved => stream_error_conflict("device_removed"),
            Interruption::Replaced => stream_error_conflict("replaced"),
            Interruption::LoggedOut => failure("401"),
            Interruption::TemporaryBan => NodeBuilder::new("failure")
                .attr("reason", "402")
                .attr("code", "101")
                .attr("expire", "3600")
                .build(),
            Interruption::ClientOutdated => failure("405"),
            Interruption::Refused => failure("400"),
        };
        self.send(node).await?;
        self.close().await
    }

    async fn request_passkey(&mut self) -> anyhow::Result<()> {
        let id = self.next_id();
        let options = r#"{"challenge":"ZmFrZS1jaGFsbGVuZ2U","rpId":"web.whatsapp.com","userVerification":"required","timeout":60000}"#;
        self.send(
            NodeBuilder::new("notification")
                .attr("from", SERVER)
                .attr("id", id)
                .attr("type", "passkey_prologue_request")
                .attr("t", now().to_string())
                .children([NodeBuilder::new("passkey_request_options")
                    .bytes(options.as_bytes().to_vec())
                    .build()])
                .build(),
        )
        .await
    }

    /// The phone scanned `code`: send the signed `pair-success`; `pair-device-sign` finishes it.
    async fn scanned(
        &mut self,
        account: Box<Account>,
        code: QrCode,
        done: oneshot::Sender<anyhow::Result<String>>,
    ) -> anyhow::Result<()> {
        let account = *account;
        if self.registration.is_none() || code.noise_pub != self.client_static {
            let _ = done.send(Err(anyhow::anyhow!("the QR's noise key is not this connection's")));
            return Ok(());
        }
        let device = {
            let mut state = lock(&self.shared.state);
            let account_state =
                state.accounts.entry(account.user.clone()).or_insert_with(|| account.clone());
            account_state.linked += 1;
            6 + account_state.linked
        };
        let key_index = u32::from(device) - 6;
        let signed = match crate::phone::sign_companion(&account, &code, key_index) {
            Ok(signed) => signed,
            Err(error) => {
                let _ = done.send(Err(error));
                return Ok(());
            }
        };
        let iq_id = self.next_id();
        let mut success = vec![
            NodeBuilder::new("device-identity")
                .attr("key-index", key_index.to_string())
                .bytes(signed.container.clone())
                .build(),
            NodeBuilder::new("platform").attr("name", "smba").build(),
            NodeBuilder::new("device")
                .attr("jid", Jid::pn_device(account.user.clone(), device))
                .attr("lid", Jid::lid_device(account.lid.clone(), device))
                .build(),
        ];
        if let Some(name) = &account.business_name {
            success.push(NodeBuilder::new("biz").attr("name", name.clone()).build());
        }
        self.send(
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "set")
                .attr("id", iq_id.clone())
                .attr("xmlns", "md")
                .children([NodeBuilder::new("pair-success").children(success).build()])
                .build(),
        )
        .await?;
        self.pairing = Some(PendingPair { iq_id, account, code, signed, device, done });
        Ok(())
    }

    /// The companion answered `pair-success`: check its signature, link it, restart the stream.
    async fn pair_device_sign(&mut self, node: &Node) -> anyhow::Result<()> {
        let Some(pending) = self.pairing.take() else { return Ok(()) };
        let answer = node
            .get_optional_child("pair-device-sign")
            .and_then(|sign| sign.get_optional_child("device-identity"))
            .and_then(bytes);
        let verified = match answer {
            None => Err(anyhow::anyhow!("the companion refused pair-success: {node:?}")),
            Some(answer) => crate::phone::verify_device_sign(
                &pending.account,
                &pending.code,
                &pending.signed,
                answer,
            ),
        };
        if let Err(error) = verified {
            let _ = pending.done.send(Err(error));
            return Ok(());
        }
        let user = pending.account.user.clone();
        let Some(mut companion) = self.registration.clone() else { return Ok(()) };
        companion.adv_identity = answer.map(<[u8]>::to_vec).unwrap_or_default();
        {
            let mut state = lock(&self.shared.state);
            state.devices.insert((user.clone(), pending.device), companion);
            state
                .phones
                .entry(user.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Party::new())));
        }
        self.shared.record(WireEvent::Paired { user: user.clone(), device: pending.device });
        let _ = pending.done.send(Ok(format!("{user}:{}@{SERVER}", pending.device)));
        // WhatsApp restarts the stream after a link; the client logs in again at once.
        self.send(NodeBuilder::new("stream:error").attr("code", "515").build()).await?;
        self.close().await
    }

    async fn receive(&mut self, node: Node) -> anyhow::Result<()> {
        match node.tag.as_ref() {
            "iq" => self.iq(node).await,
            "message" => self.message(node).await,
            // The device acknowledged a node: it is delivered.
            "ack" | "receipt" => {
                let (Some(login), Some(id)) = (self.login.clone(), attr(&node, "id")) else {
                    return Ok(());
                };
                if let Some(companion) = lock(&self.shared.state).devices.get_mut(&login) {
                    companion.offline.retain(|queued| attr(queued, "id").as_deref() != Some(&id));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn failure(reason: &str) -> Node {
    NodeBuilder::new("failure").attr("reason", reason.to_owned()).build()
}

fn stream_error_conflict(kind: &'static str) -> Node {
    NodeBuilder::new("stream:error")
        .children([NodeBuilder::new("conflict").attr("type", kind).build()])
        .build()
}
