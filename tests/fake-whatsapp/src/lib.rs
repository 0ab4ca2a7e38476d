//! A fake WhatsApp server for tests: it speaks WhatsApp's multi-device protocol to an
//! unmodified whatsapp-rust 0.7.0 client over a loopback WebSocket, and plays the phone that
//! scans the QR and the contact that receives a text.
//!
//! - `noise`: the Noise XX responder (IK answered with XXfallback) and the encrypted frames;
//! - `phone`: what the phone signs when it scans, and how it checks the companion's answer;
//! - `code`: what the phone does with a pairing code typed on it ("link with phone number");
//! - `signal`: Signal sessions with the companion (the app-state key share it gets, the texts
//!   it sends);
//! - `connection`: one client connection, from the handshake to the last node (its IQ answers
//!   in `connection/iq.rs`, its messages in `connection/messages.rs`);
//! - this file: the server, its shared state, and the controls tests use.
//!
//! It records every connection and node ([`WireEvent`]), so tests can assert on the wire. Only
//! a client built with whatsapp-rust's `danger-skip-cert-chain-verify` accepts it: its
//! certificate chain is not signed by WhatsApp.
//!
//! What it cannot prove: a bug shared by both directions of whatsapp-rust's own codecs (this
//! fake uses them), and any rejection only WhatsApp's servers make (such as upstream #1439).

mod code;
mod connection;
mod noise;
mod phone;
mod signal;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Notify, oneshot};
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;
use whatsapp_rust::wacore_binary::Node;

pub use noise::Pattern;
pub use phone::QrCode;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// QR references offered per connection (WhatsApp sends six: 60 s + 5 × 20 s of codes).
    pub refs_per_connection: usize,
    /// Whether the phone shares its app-state keys after a link, as a real phone does; without
    /// it the client waits about 10 s before `Connected`.
    pub share_app_state_keys: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { refs_per_connection: 6, share_app_state_keys: true }
    }
}

/// An account the fake phone holds: who scans.
#[derive(Debug, Clone)]
pub struct Phone {
    /// E.164 (`+56912345678`) or digits.
    pub phone_number: String,
    pub push_name: String,
    /// A WhatsApp Business account's name.
    pub business_name: Option<String>,
}

impl Phone {
    pub fn new(phone_number: &str, push_name: &str) -> Self {
        Self {
            phone_number: phone_number.to_owned(),
            push_name: push_name.to_owned(),
            business_name: None,
        }
    }
}

/// How the fake can end a connection, as WhatsApp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// `<stream:error><conflict type="device_removed"/>`: the phone removed the device.
    DeviceRemoved,
    /// `<failure reason="401"/>`: the session is logged out.
    LoggedOut,
    /// `<failure reason="402" code=… expire=…/>`: the account is temporarily banned.
    TemporaryBan,
    /// `<failure reason="405"/>`: this client version is too old.
    ClientOutdated,
    /// `<stream:error><conflict type="replaced"/>`: another connection took over.
    Replaced,
    /// `<failure reason="400"/>`: a refused connection (a reason whatsapp-rust does not retry).
    Refused,
}

/// What the fake saw and did, in order.
#[derive(Debug, Clone)]
pub enum WireEvent {
    /// A client finished the handshake. `login` is `(user, device)`, `None` for a new device.
    Connected { conn: u64, pattern: Pattern, login: Option<(String, u16)> },
    /// A handshake that did not finish (such as a client refusing our certificate).
    HandshakeFailed { conn: u64, error: String },
    /// A node from the client.
    Received { conn: u64, node: Node },
    /// A node to the client.
    Sent { conn: u64, node: Node },
    /// The phone verified the companion's `pair-device-sign`: `user:device` is linked.
    Paired { user: String, device: u16 },
    /// A companion asked for a pairing code for `phone_number` (digits) with
    /// `companion_hello`; `push_notification` is its `should_show_push_notification`.
    CodeRequested { conn: u64, phone_number: String, push_notification: bool },
    /// A code typed on `phone_number`'s phone did not open the companion's key bundle: the
    /// phone says so, the companion hears nothing. `wrong_attempts` counts them for this code.
    WrongCode { phone_number: String, wrong_attempts: u32 },
    /// A connection ended; `error` when the fake ended it on a fault (such as a frame it could
    /// not read).
    Closed { conn: u64, error: Option<String> },
}

/// A companion's request for a pairing code, as the fake holds it. Like WhatsApp, it never
/// sees the code itself (only the companion's key wrapped with it): tests read the code from the
/// client's `PairingCode` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    /// The connection that asked.
    pub conn: u64,
    /// Digits only, from the `jid` of `companion_hello`.
    pub phone_number: String,
    /// `should_show_push_notification="true"`: WhatsApp should prompt the phone.
    pub push_notification: bool,
    /// `companion_platform_id`, such as `9` (another web client).
    pub platform_id: String,
    /// `companion_platform_display`, such as `Chrome (Linux)`.
    pub platform_display: String,
    /// Codes typed on the phone for this request (each one a `primary_hello`).
    pub attempts: u32,
    /// Of those, the ones that were not the companion's code.
    pub wrong_attempts: u32,
}

/// A way WhatsApp refuses a `companion_hello`: `<iq type="error"><error code text [backoff]/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRefusal {
    pub code: u16,
    pub text: String,
    /// Seconds the server asks the client to wait (`backoff`), which whatsapp-rust reports in
    /// `PairingCodeError::backoff` (wacore-0.7.0 `src/request.rs:281-291`).
    pub backoff: Option<u32>,
}

impl CodeRefusal {
    /// 429 `rate-overlimit`: too many codes asked for (Baileys issue #2008 shows this stanza);
    /// whatsapp-rust reports `PairCodeRejection::RateOverlimit` (wacore-0.7.0
    /// `src/pair_code.rs:689-692`).
    pub fn rate_overlimit(backoff: Option<u32>) -> Self {
        Self { code: 429, text: "rate-overlimit".into(), backoff }
    }

    /// 400 `bad-request`: a malformed request, or WhatsApp's per-number throttle
    /// (wacore-0.7.0 `src/pair_code.rs:681-686`).
    pub fn bad_request() -> Self {
        Self { code: 400, text: "bad-request".into(), backoff: None }
    }

    /// 452 `feature-not-available`: linking with a number is not enabled for this account
    /// (wacore-0.7.0 `src/pair_code.rs:693-696`).
    pub fn feature_not_available() -> Self {
        Self { code: 452, text: "feature-not-available".into(), backoff: None }
    }
}

/// A code request and what the phone needs to answer it.
struct PendingCode {
    request: CodeRequest,
    reference: Vec<u8>,
    /// The companion's ephemeral key, wrapped with the code.
    wrapped: [u8; code::WRAPPED_KEY_LEN],
    /// The companion's Noise key, which its login after the link must use.
    noise_pub: [u8; 32],
    requested: Instant,
}

impl PendingCode {
    /// Whether a code typed now can still link: within its validity, attempts left.
    fn usable(&self) -> bool {
        self.requested.elapsed() <= code::VALIDITY && self.request.attempts < code::MAX_ATTEMPTS
    }
}

/// A text that reached a contact of the fake, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedText {
    /// The sender, `user:device`.
    pub from: String,
    /// The recipient's JID as addressed (`56911111111@s.whatsapp.net`).
    pub to: String,
    pub text: String,
}

/// The fake server; stops when dropped.
pub struct FakeWhatsapp {
    shared: Arc<Shared>,
    url: String,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWhatsapp {
    fn drop(&mut self) {
        self.accept.abort();
        for conn in lock(&self.shared.state).connections.values() {
            let _ = conn.commands.send(connection::Command::Close);
        }
    }
}

struct Shared {
    config: Config,
    /// Our Noise static key: the same across connections, so restarts try IK.
    static_key: KeyPair,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    next_conn: u64,
    connections: HashMap<u64, connection::Handle>,
    /// QR references offered, to the connection that offered them.
    refs: HashMap<String, u64>,
    accounts: HashMap<String, phone::Account>,
    /// Linked companions, by `(user, device)`.
    devices: HashMap<(String, u16), signal::Companion>,
    /// Each account's phone (device 0), as a Signal party.
    phones: HashMap<String, signal::SharedParty>,
    /// Interruptions for the next connections, instead of `pair-device` or `<success>`.
    next_connections: VecDeque<Interruption>,
    log: Vec<WireEvent>,
    texts: Vec<ReceivedText>,
    /// Contacts (any number that is not an account), created when first addressed.
    contacts: HashMap<String, signal::SharedParty>,
    /// Outstanding pairing codes, by phone number (digits): WhatsApp routes by number.
    codes: HashMap<String, PendingCode>,
    /// Refusals for the next `companion_hello`s.
    code_refusals: VecDeque<CodeRefusal>,
}

impl State {
    /// The account `phone` holds, created on first use, its names updated.
    fn account(&mut self, phone: &Phone) -> phone::Account {
        let account = phone::Account::new(
            &phone.phone_number,
            &phone.push_name,
            phone.business_name.as_deref(),
        );
        let account = self.accounts.entry(account.user.clone()).or_insert(account);
        account.push_name = phone.push_name.clone();
        account.business_name = phone.business_name.clone();
        account.clone()
    }
}

/// Short sections with no `.await` inside; a poisoned state is still usable in a test fixture.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn record(&self, event: WireEvent) {
        lock(&self.state).log.push(event);
        self.changed.notify_waiters();
    }
}

impl FakeWhatsapp {
    /// Listens on `127.0.0.1:0`.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}/ws/chat", listener.local_addr()?);
        let shared = Arc::new(Shared {
            config,
            static_key: KeyPair::generate(&mut rand::rng()),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let conn = {
                    let mut state = lock(&accepting.state);
                    state.next_conn += 1;
                    state.next_conn
                };
                tokio::spawn(connection::serve(accepting.clone(), conn, socket));
            }
        });
        Ok(Self { shared, url, accept })
    }

    /// The WebSocket URL to give the client (`ws://127.0.0.1:PORT/ws/chat`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<WireEvent> {
        lock(&self.shared.state).log.clone()
    }

    /// Connections that finished the handshake: `(registrations, logins)`.
    pub fn connections(&self) -> (usize, usize) {
        let state = lock(&self.shared.state);
        state.log.iter().fold((0, 0), |(r, l), e| match e {
            WireEvent::Connected { login: None, .. } => (r + 1, l),
            WireEvent::Connected { login: Some(_), .. } => (r, l + 1),
            _ => (r, l),
        })
    }

    /// Whether the fake offered `reference` (a QR's first field) in a `<pair-device>`.
    pub fn offered(&self, reference: &str) -> bool {
        lock(&self.shared.state).refs.contains_key(reference)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.state).connections.len()
    }

    /// Waits until `check` holds for the recorded events.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&[WireEvent]) -> bool,
    ) -> anyhow::Result<()> {
        self.wait_for(what, within, |state| check(&state.log).then_some(())).await
    }

    /// Waits until `found` finds something in the state, which changes with every event.
    async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&State) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(value) = found(&lock(&self.shared.state)) {
                return Ok(value);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                anyhow::bail!("the fake WhatsApp did not see {what} within {within:?}");
            }
        }
    }

    /// The phone scans `qr` (the text exactly as the companion shows it): the fake sends a
    /// signed `pair-success` to the connection that offered the code, checks the companion's
    /// `pair-device-sign`, then restarts the stream (515). Returns the new device's JID.
    pub async fn scan(&self, qr: &str, phone: &Phone) -> anyhow::Result<String> {
        let code = QrCode::parse(qr)?;
        let (done, linked) = oneshot::channel();
        {
            let mut state = lock(&self.shared.state);
            let conn = *state.refs.get(&code.reference).context("no connection offered this QR")?;
            let handle = state.connections.get(&conn).context("the QR's connection is closed")?;
            let commands = handle.commands.clone();
            let account = state.account(phone);
            commands
                .send(connection::Command::Scanned { account: Box::new(account), code, done })
                .map_err(|_| anyhow::anyhow!("the QR's connection is closed"))?;
        }
        tokio::time::timeout(Duration::from_secs(10), linked)
            .await
            .context("the companion did not answer pair-success within 10 s")?
            .context("the connection closed during pairing")?
    }

    /// The person types `code` on `phone` ("Link with phone number instead"). WhatsApp routes
    /// by number: this reaches the companion that asked for a code for `phone`'s number, as a
    /// `primary_hello`; the phone then opens the companion's `companion_finish` and, when
    /// `code` was the companion's, links it as `scan` does (`pair-success`, then the 515
    /// restart). Returns the new device's JID. The dash and case do not matter.
    ///
    /// Errors, as the phone would show them:
    /// - no code outstanding for this number (such as a phone with another number than the one
    ///   the companion asked for): nothing is sent to any companion;
    /// - the code expired (180 s) or was already typed three times (the companion handles no
    ///   more `primary_hello` for one code): nothing sent, the companion needs a new code;
    /// - a wrong code: the companion gets its `primary_hello` and answers, but the phone cannot
    ///   open the answer, so it links nothing; the attempt counts ([`WireEvent::WrongCode`]).
    pub async fn enter_code(&self, code: &str, phone: &Phone) -> anyhow::Result<String> {
        let Some(typed) = code::normalize(code) else {
            bail!("{code:?} is not a WhatsApp code (8 of 123456789ABCDEFGHJKLMNPQRSTVWXYZ)");
        };
        let user = digits(&phone.phone_number);
        let (commands, account, reference, wrapped, noise_pub) = {
            let mut state = lock(&self.shared.state);
            let Some(pending) = state.codes.get_mut(&user) else {
                bail!(
                    "couldn't link device: no companion asked for a code for {user}; check the \
                     phone number"
                );
            };
            if !pending.usable() {
                bail!(
                    "couldn't link device: the code for {user} expired or was tried {} times; \
                     get a new code",
                    pending.request.attempts
                );
            }
            pending.request.attempts += 1;
            let (conn, reference, wrapped, noise_pub) = (
                pending.request.conn,
                pending.reference.clone(),
                pending.wrapped,
                pending.noise_pub,
            );
            let handle =
                state.connections.get(&conn).context("the companion's connection is closed")?;
            let commands = handle.commands.clone();
            (commands, state.account(phone), reference, wrapped, noise_pub)
        };
        // PBKDF2 with 2^17 rounds, twice: off the runtime, as the companion does.
        let hello = tokio::task::spawn_blocking(move || code::primary_hello(&typed, &wrapped))
            .await
            .context("the phone's key derivation panicked")?;
        let (done, linked) = oneshot::channel();
        let link = connection::link_code::CodeLink { account, hello, reference, noise_pub, done };
        commands
            .send(connection::Command::PrimaryHello(Box::new(link)))
            .map_err(|_| anyhow::anyhow!("the companion's connection is closed"))?;
        // The companion derives its bundle with the same PBKDF2 before it answers.
        tokio::time::timeout(Duration::from_secs(30), linked)
            .await
            .context("the companion did not finish linking within 30 s of primary_hello")?
            .context("the connection closed during pairing")?
    }

    /// The code request outstanding for `phone_number`, while a code typed now could still
    /// link: asked for, not expired, attempts left, not yet used.
    pub fn outstanding_code(&self, phone_number: &str) -> Option<CodeRequest> {
        let state = lock(&self.shared.state);
        let pending = state.codes.get(&digits(phone_number))?;
        pending.usable().then(|| pending.request.clone())
    }

    /// The next `companion_hello` is refused with `how` instead of answered with a ref.
    pub fn refuse_next_code_request(&self, how: CodeRefusal) {
        lock(&self.shared.state).code_refusals.push_back(how);
    }

    /// The phone removes every linked device of `phone_number`: their open connections get
    /// `<stream:error><conflict type="device_removed"/>`, and they can no longer log in.
    pub fn remove_devices(&self, phone_number: &str) -> usize {
        let user = digits(phone_number);
        let mut state = lock(&self.shared.state);
        let removed: Vec<(String, u16)> =
            state.devices.keys().filter(|(u, _)| *u == user).cloned().collect();
        for key in &removed {
            state.devices.remove(key);
        }
        for handle in state.connections.values() {
            if handle.login.as_ref().is_some_and(|(u, _)| *u == user) {
                let _ = handle
                    .commands
                    .send(connection::Command::Interrupt(Interruption::DeviceRemoved));
            }
        }
        removed.len()
    }

    /// Ends the open connections of `phone_number`'s devices with `how`.
    pub fn interrupt_logins(&self, phone_number: &str, how: Interruption) -> usize {
        let user = digits(phone_number);
        self.interrupt(|login| login.is_some_and(|(u, _)| *u == user), how)
    }

    /// Ends the open connections of devices still pairing (showing QRs) with `how`.
    pub fn interrupt_pairing(&self, how: Interruption) -> usize {
        self.interrupt(|login| login.is_none(), how)
    }

    fn interrupt(
        &self,
        which: impl Fn(Option<&(String, u16)>) -> bool,
        how: Interruption,
    ) -> usize {
        let state = lock(&self.shared.state);
        state
            .connections
            .values()
            .filter(|handle| which(handle.login.as_ref()))
            .filter(|handle| handle.commands.send(connection::Command::Interrupt(how)).is_ok())
            .count()
    }

    /// The next connection that finishes its handshake gets `how` instead of `pair-device` or
    /// `<success>`.
    pub fn refuse_next_connection(&self, how: Interruption) {
        lock(&self.shared.state).next_connections.push_back(how);
    }

    /// Asks the devices still pairing to confirm with a passkey
    /// (`<notification type="passkey_prologue_request">`), as WhatsApp does for accounts that
    /// require it.
    pub fn request_passkey(&self) -> usize {
        let state = lock(&self.shared.state);
        state
            .connections
            .values()
            .filter(|handle| handle.login.is_none())
            .filter(|handle| handle.commands.send(connection::Command::RequestPasskey).is_ok())
            .count()
    }

    /// Texts that reached the fake's contacts, decrypted.
    pub fn texts(&self) -> Vec<ReceivedText> {
        lock(&self.shared.state).texts.clone()
    }

    /// Waits for the `n`th text (1-based) to arrive.
    pub async fn wait_for_text(&self, n: usize, within: Duration) -> anyhow::Result<ReceivedText> {
        self.wait_for(&format!("text #{n}"), within, |state| state.texts.get(n - 1).cloned()).await
    }
}

fn digits(phone_number: &str) -> String {
    phone_number.chars().filter(char::is_ascii_digit).collect()
}
