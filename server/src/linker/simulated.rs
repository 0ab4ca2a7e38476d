//! The simulated phone: a linker that behaves like WhatsApp's side of QR pairing, for tests and
//! demos on machines that cannot reach WhatsApp.
//!
//! Codes have WhatsApp's shape (`ref,noise_b64,identity_b64,adv_b64,9`) and schedule: the first is
//! valid for 60 s, each next one for 20 s, six per attempt (about 160 s), after which the attempt
//! reports `Exhausted` exactly like a real connection whose codes ran out. The "phone" scans
//! through `POST /sim/scan`, naming the outcome it wants.
//!
//! Every ref carries a keyed tag (SHA-256 of a per-process key and the ref's nonce), so a code
//! this process issued is recognised without remembering it: any such code that is not the current
//! code of a live attempt is *expired* (409); a string we never issued is *unknown* (404).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use futures::future::BoxFuture;
use keebai_protocol::sim::{ScanOutcome, SimMessage};
use keebai_protocol::{DisconnectCode, FailureCode};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::channels::{Channel, LinkerKind, LiveChannels, SendError};
use crate::domain::{ChannelId, MessageId, MessageText, PhoneNumber, code_key};
use crate::pairing::{Attempt, Control, Linker, LinkerEvent};
use crate::store::StoreError;
use crate::sync::lock;

/// The simulated schedule.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Validity of an attempt's first code (WhatsApp: 60 s).
    pub first_qr_ttl: Duration,
    /// Validity of each later code (WhatsApp: 20 s).
    pub qr_ttl: Duration,
    /// Codes per attempt before `Exhausted` (WhatsApp: 6).
    pub codes_per_attempt: u32,
    /// Time from `connecting` to `connected`.
    pub link_delay: Duration,
    /// Validity of a pairing code (WhatsApp: 180 s, whatsapp-rust 0.7.0 `pair_code.rs`); a
    /// new one follows while the attempt runs.
    pub code_ttl: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            first_qr_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            codes_per_attempt: 6,
            link_delay: Duration::from_millis(1500),
            code_ttl: Duration::from_secs(180),
        }
    }
}

/// Why a typed pairing code did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// 404: no session asked for a code for this phone's number.
    #[error("no session asked for a pairing code for this number")]
    NotFound,
    /// 409: not the current code; `left` more tries before the code is dead and the session
    /// fails (`code_rejected`).
    #[error("wrong code")]
    Wrong { left: u32 },
}

/// Wrong tries WhatsApp allows per code (whatsapp-rust 0.7.0, `MaxPrimaryHelloError`).
const CODE_TRIES: u32 = 3;

/// WhatsApp's alphabet for pairing codes: no 0, I, O or U (whatsapp-rust 0.7.0, `pair_code.rs`).
const CODE_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";

/// Why a scan did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// 409: a code this server issued, but not the current code of a live session.
    #[error("this QR code has expired or was already used")]
    Expired,
    /// 404: not a code this server ever issued.
    #[error("no session ever showed this QR code")]
    Unknown,
}

/// The most texts remembered per simulated channel (oldest are dropped first).
const INBOX_LIMIT: usize = 1000;

/// The simulated linker; cheap to clone.
#[derive(Clone)]
pub struct SimulatedLinker {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimConfig,
    /// In cluster mode: the simulated WhatsApp is one for every server, as the real one is.
    cluster: Option<SimCluster>,
    key: [u8; 32],
    /// The current code of every live attempt, and where to deliver its scan.
    current: Mutex<HashMap<String, ScanSlot>>,
    /// What each simulated channel "sent", as WhatsApp would have received it.
    inbox: Mutex<HashMap<ChannelId, VecDeque<SimMessage>>>,
    /// The outstanding pairing code of each number that asked for one.
    codes: Mutex<HashMap<PhoneNumber, CodeSlot>>,
}

/// A pairing code waiting to be typed on the phone of its number.
struct CodeSlot {
    code: String,
    wrong: u32,
    deliver: Option<oneshot::Sender<Scan>>,
    /// Told after the last wrong try: the attempt fails the session.
    rejected: Option<oneshot::Sender<()>>,
}

/// The simulated phone in cluster mode.
struct SimCluster {
    /// What every simulated channel sent, in `sim_messages`, whichever server sent it.
    pool: PgPool,
    /// The channels this server keeps live (whose lease it holds); only these can send.
    live: Mutex<BTreeSet<ChannelId>>,
}

/// Where an attempt takes its one scan; emptied by the first scan of any of its codes.
type ScanSlot = Arc<Mutex<Option<oneshot::Sender<Scan>>>>;

#[derive(Debug)]
struct Scan {
    phone_number: PhoneNumber,
    push_name: String,
    outcome: ScanOutcome,
}

impl SimulatedLinker {
    /// The simulated phone of one server: every paired simulated channel can send, and what
    /// channels sent is kept in memory.
    pub fn new(config: SimConfig) -> Self {
        Self::build(config, None)
    }

    /// The simulated phone of a cluster: a channel sends only from the server that keeps it
    /// live, and what channels sent is kept in Postgres, for every server to show.
    pub fn in_cluster(config: SimConfig, pool: PgPool) -> Self {
        Self::build(config, Some(SimCluster { pool, live: Mutex::new(BTreeSet::new()) }))
    }

    fn build(config: SimConfig, cluster: Option<SimCluster>) -> Self {
        let mut key = [0u8; 32];
        // Same reasoning as `random_hex`: no OS randomness means no safe way to go on.
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        Self {
            inner: Arc::new(Inner {
                config,
                cluster,
                key,
                current: Mutex::new(HashMap::new()),
                inbox: Mutex::new(HashMap::new()),
                codes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The phone scans `qr`. Delivered only when `qr` is the current code of a live attempt.
    pub fn scan(
        &self,
        qr: &str,
        phone_number: PhoneNumber,
        push_name: String,
        outcome: ScanOutcome,
    ) -> Result<(), ScanError> {
        // Delivery happens under the lock, so it is ordered against the attempt rotating its
        // code (which also takes the lock): a scan is either in the queue before the old code is
        // withdrawn, or sees it gone.
        let current = lock(&self.inner.current);
        match current.get(qr) {
            Some(slot) => lock(slot)
                .take()
                .and_then(|deliver| deliver.send(Scan { phone_number, push_name, outcome }).ok())
                // The slot holds one scan; a second scan of the same code lost the race.
                .ok_or(ScanError::Expired),
            None if self.inner.issued_here(qr) => Err(ScanError::Expired),
            None => Err(ScanError::Unknown),
        }
    }

    /// The phone of `phone_number` types `code` (with or without the dash, any case).
    pub fn enter_code(
        &self,
        code: &str,
        phone_number: PhoneNumber,
        push_name: String,
        outcome: ScanOutcome,
    ) -> Result<(), CodeError> {
        let typed = code_key(code);
        let mut codes = lock(&self.inner.codes);
        let slot = codes.get_mut(&phone_number).ok_or(CodeError::NotFound)?;
        if slot.code != typed {
            slot.wrong += 1;
            if slot.wrong >= CODE_TRIES {
                if let Some(rejected) = slot.rejected.take() {
                    let _ = rejected.send(());
                }
                codes.remove(&phone_number);
                return Err(CodeError::Wrong { left: 0 });
            }
            return Err(CodeError::Wrong { left: CODE_TRIES - slot.wrong });
        }
        let deliver = slot.deliver.take().ok_or(CodeError::NotFound)?;
        codes.remove(&phone_number);
        deliver.send(Scan { phone_number, push_name, outcome }).map_err(|_| CodeError::NotFound)
    }

    /// Texts sent on a simulated channel, oldest first (the last [`INBOX_LIMIT`]).
    pub async fn messages(&self, channel: &ChannelId) -> Result<Vec<SimMessage>, StoreError> {
        let Some(cluster) = &self.inner.cluster else {
            return Ok(lock(&self.inner.inbox)
                .get(channel)
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default());
        };
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT message_id, recipient, text FROM (
                 SELECT seq, message_id, recipient, text FROM sim_messages
                 WHERE channel_id = $1 ORDER BY seq DESC LIMIT $2
             ) newest ORDER BY seq",
        )
        .bind(channel.as_str())
        .bind(INBOX_LIMIT as i64)
        .fetch_all(&cluster.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, to, text)| SimMessage { message_id, to, text })
            .collect())
    }

    /// Cluster mode: the channels this server keeps live, sorted; `None` on a server on its
    /// own, where every simulated channel is live.
    pub fn live(&self) -> Option<Vec<ChannelId>> {
        let cluster = self.inner.cluster.as_ref()?;
        Some(lock(&cluster.live).iter().cloned().collect())
    }

    /// Codes that a phone could scan right now (one per live attempt).
    pub fn live_codes(&self) -> usize {
        lock(&self.inner.current).len()
    }
}

impl Inner {
    fn tag(&self, nonce: &[u8]) -> [u8; 8] {
        let digest = Sha256::new().chain_update(self.key).chain_update(nonce).finalize();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        tag
    }

    fn new_code(&self) -> String {
        let mut random = [0u8; 16 + 32 * 3];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        let (nonce, keys) = random.split_at(16);
        let mut reference = nonce.to_vec();
        reference.extend_from_slice(&self.tag(nonce));
        format!(
            "2@{},{},{},{},9",
            STANDARD.encode(&reference),
            STANDARD.encode(&keys[..32]),
            STANDARD.encode(&keys[32..64]),
            STANDARD.encode(&keys[64..]),
        )
    }

    fn new_pair_code(&self) -> String {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        random
            .iter()
            .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
            .collect()
    }

    fn issued_here(&self, qr: &str) -> bool {
        let Some(reference) = qr.split(',').next().and_then(|r| r.strip_prefix("2@")) else {
            return false;
        };
        match STANDARD.decode(reference) {
            Ok(bytes) if bytes.len() == 24 => self.tag(&bytes[..16]) == bytes[16..],
            _ => false,
        }
    }
}

/// A code offered for scanning; withdrawn when dropped, whichever way the attempt moves on.
struct Offered<'a> {
    inner: &'a Inner,
    code: String,
}

impl<'a> Offered<'a> {
    fn new(inner: &'a Inner, code: String, slot: ScanSlot) -> Self {
        lock(&inner.current).insert(code.clone(), slot);
        Self { inner, code }
    }
}

impl Drop for Offered<'_> {
    fn drop(&mut self) {
        lock(&self.inner.current).remove(&self.code);
    }
}

async fn run_attempt(inner: Arc<Inner>, mut attempt: Attempt) {
    let (deliver, mut scanned) = oneshot::channel();
    let slot: ScanSlot = Arc::new(Mutex::new(Some(deliver)));
    for index in 0..inner.config.codes_per_attempt {
        let ttl = if index == 0 { inner.config.first_qr_ttl } else { inner.config.qr_ttl };
        let code = inner.new_code();
        let offered = Offered::new(&inner, code.clone(), slot.clone());
        if attempt.report(LinkerEvent::Qr { code, ttl }).await.is_err() {
            return;
        }
        let scan = tokio::select! {
            () = attempt.cancel.cancelled() => return,
            () = tokio::time::sleep(ttl) => None,
            scan = &mut scanned => scan.ok(),
            Some(Control::PairCode { phone }) = attempt.control.next() => {
                // No more QR codes: the one shown is withdrawn, so scanning it does nothing.
                drop(offered);
                return Box::pin(by_code(inner, attempt, phone)).await;
            }
        };
        drop(offered);
        // A scan accepted just before the code was withdrawn is still honoured.
        if let Some(scan) = scan.or_else(|| scanned.try_recv().ok()) {
            // Boxed: an attempt waits for a scan far longer than it links.
            return Box::pin(link(&inner, attempt, scan)).await;
        }
    }
    let _ = attempt.report(LinkerEvent::Exhausted).await;
}

/// Linking by phone number: a code for `phone`, a new one each `code_ttl`, until the phone
/// types it (then as after a scan), the tries run out (`code_rejected`), or the attempt ends.
async fn by_code(inner: Arc<Inner>, mut attempt: Attempt, mut phone: PhoneNumber) {
    loop {
        let code = inner.new_pair_code();
        let (deliver, mut typed) = oneshot::channel();
        let (alive, mut dead) = oneshot::channel();
        let slot = CodeSlot {
            code: code.clone(),
            wrong: 0,
            deliver: Some(deliver),
            rejected: Some(alive),
        };
        lock(&inner.codes).insert(phone.clone(), slot);
        let _withdraw = Withdraw { inner: &inner, phone: phone.clone(), code: code.clone() };
        let ttl = inner.config.code_ttl;
        if attempt.report(LinkerEvent::PairingCode { code, ttl }).await.is_err() {
            return;
        }
        tokio::select! {
            () = attempt.cancel.cancelled() => return,
            () = tokio::time::sleep(ttl) => {}
            // (A dropped sender is the slot going away after the last wrong try: see `dead`.)
            Ok(scan) = &mut typed => return Box::pin(link(&inner, attempt, scan)).await,
            Ok(()) = &mut dead => {
                let _ = attempt
                    .report(LinkerEvent::Failed {
                        code: FailureCode::CodeRejected,
                        reason: "The pairing code was typed wrong 3 times on the phone. Start \
                                 again to get a new code."
                            .into(),
                    })
                    .await;
                return;
            }
            Some(Control::PairCode { phone: next }) = attempt.control.next() => phone = next,
        }
    }
}

/// A code offered for typing; withdrawn when dropped, unless a newer code replaced it.
struct Withdraw<'a> {
    inner: &'a Inner,
    phone: PhoneNumber,
    code: String,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let mut codes = lock(&self.inner.codes);
        if codes.get(&self.phone).is_some_and(|slot| slot.code == self.code) {
            codes.remove(&self.phone);
        }
    }
}

/// After a scan: the events of the outcome the phone asked for.
async fn link(inner: &Inner, mut attempt: Attempt, scan: Scan) {
    let last = match scan.outcome {
        ScanOutcome::DeviceLimit => LinkerEvent::Failed {
            code: FailureCode::DeviceLimit,
            reason: "This phone already has the maximum of 4 linked devices. Remove one in \
                     WhatsApp > Linked devices, then try again."
                .into(),
        },
        ScanOutcome::Rejected => LinkerEvent::Failed {
            code: FailureCode::PairingRejected,
            reason: "WhatsApp rejected the pairing. Scan a new code to try again.".into(),
        },
        ScanOutcome::Unlinked => LinkerEvent::Disconnected {
            code: DisconnectCode::Unlinked,
            reason: "The phone removed this linked device right after linking it.".into(),
        },
        ScanOutcome::Success => {
            // A simulated device holds nothing to hand over or release.
            if settle(inner, &mut attempt).await
                && let Some(channel) = attempt.linked(scan.phone_number, scan.push_name).await
                && let Some(cluster) = &inner.cluster
            {
                // The server that pairs a channel keeps it live (it took the lease first).
                lock(&cluster.live).insert(channel.id);
            }
            return;
        }
    };
    // The device limit is checked by the phone before anything is linked; every other outcome
    // first goes through WhatsApp establishing the session.
    if scan.outcome == ScanOutcome::DeviceLimit || settle(inner, &mut attempt).await {
        let _ = attempt.report(last).await;
    }
}

/// `connecting`, then the time WhatsApp takes to establish the session; `false` if the
/// attempt was cancelled meanwhile.
async fn settle(inner: &Inner, attempt: &mut Attempt) -> bool {
    if attempt.report(LinkerEvent::Scanned).await.is_err() {
        return false;
    }
    tokio::select! {
        () = attempt.cancel.cancelled() => false,
        () = tokio::time::sleep(inner.config.link_delay) => true,
    }
}

impl Linker for SimulatedLinker {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Simulated
    }

    fn attempt(&self, attempt: Attempt) -> BoxFuture<'static, ()> {
        Box::pin(run_attempt(self.inner.clone(), attempt))
    }

    fn first_qr_timeout(&self) -> Option<Duration> {
        None
    }
}

impl LiveChannels for SimulatedLinker {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Simulated
    }

    /// "Sends" into the channel's inbox, which `GET /sim/messages` reads.
    fn send_text<'a>(
        &'a self,
        channel: &'a Channel,
        id: &'a MessageId,
        to: &'a PhoneNumber,
        text: &'a MessageText,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            if let Some(cluster) = &self.inner.cluster {
                if !lock(&cluster.live).contains(&channel.id) {
                    return Err(SendError::NotConnected);
                }
                sqlx::query(
                    "INSERT INTO sim_messages (channel_id, message_id, recipient, text)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(channel.id.as_str())
                .bind(id.as_str())
                .bind(to.as_str())
                .bind(text.as_str())
                .execute(&cluster.pool)
                .await
                .map_err(|e| SendError::Other(e.into()))?;
                return Ok(());
            }
            let mut inbox = lock(&self.inner.inbox);
            let messages = inbox.entry(channel.id.clone()).or_default();
            if messages.len() == INBOX_LIMIT {
                messages.pop_front();
            }
            messages.push_back(SimMessage {
                message_id: id.to_string(),
                to: to.to_string(),
                text: text.as_str().to_owned(),
            });
            Ok(())
        })
    }

    /// Nothing runs between texts.
    fn start<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, ()> {
        if let Some(cluster) = &self.inner.cluster {
            lock(&cluster.live).insert(channel.id.clone());
        }
        Box::pin(async {})
    }

    fn stop_one<'a>(&'a self, id: &'a ChannelId) -> BoxFuture<'a, ()> {
        if let Some(cluster) = &self.inner.cluster {
            lock(&cluster.live).remove(id);
        }
        Box::pin(async {})
    }

    fn is_live(&self, id: &ChannelId) -> bool {
        self.inner.cluster.as_ref().is_none_or(|cluster| lock(&cluster.live).contains(id))
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        if let Some(cluster) = &self.inner.cluster {
            lock(&cluster.live).clear();
        }
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionId;
    use crate::pairing::Report;
    use futures::StreamExt;
    use futures::channel::mpsc;
    use tokio_util::sync::CancellationToken;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+56912345678").unwrap()
    }

    /// An attempt's reports, read the way the engine reads them.
    struct Reports(mpsc::Receiver<Report>);

    impl Reports {
        /// The next progress event (`None` once the attempt ended); a hand-over is a panic.
        async fn next(&mut self) -> Option<LinkerEvent> {
            match self.0.next().await? {
                Report::Event(event) => Some(event),
                linked => panic!("expected an event, got {linked:?}"),
            }
        }

        /// The hand-over of a linked device: its phone and push name.
        async fn linked(&mut self) -> (PhoneNumber, String) {
            match self.0.next().await {
                Some(Report::Linked { phone_number, push_name, .. }) => (phone_number, push_name),
                other => panic!("expected a linked device, got {other:?}"),
            }
        }
    }

    fn start(linker: &SimulatedLinker) -> (Reports, CancellationToken) {
        let cancel = CancellationToken::new();
        let (attempt, reports, _controls) = Attempt::new(SessionId::generate(), 1, cancel.clone());
        tokio::spawn(linker.attempt(attempt));
        (Reports(reports), cancel)
    }

    async fn next_code(rx: &mut Reports) -> (String, Duration) {
        match rx.next().await {
            Some(LinkerEvent::Qr { code, ttl }) => (code, ttl),
            other => panic!("expected a QR, got {other:?}"),
        }
    }

    #[test]
    fn codes_have_whatsapps_shape() {
        let linker = SimulatedLinker::new(SimConfig::default());
        let code = linker.inner.new_code();
        let parts: Vec<_> = code.split(',').collect();
        assert_eq!(parts.len(), 5, "{code}");
        assert!(parts[0].starts_with("2@"));
        for key in &parts[1..4] {
            assert_eq!(STANDARD.decode(key).unwrap().len(), 32);
        }
        assert_eq!(parts[4], "9");
        assert!(linker.inner.issued_here(&code));
        assert!(!SimulatedLinker::new(SimConfig::default()).inner.issued_here(&code));
    }

    #[tokio::test(start_paused = true)]
    async fn codes_rotate_on_whatsapps_schedule_then_the_attempt_is_exhausted() {
        let linker = SimulatedLinker::new(SimConfig::default());
        let (mut rx, _cancel) = start(&linker);
        let started = tokio::time::Instant::now();
        let mut ttls = Vec::new();
        let mut codes = std::collections::HashSet::new();
        for _ in 0..6 {
            let (code, ttl) = next_code(&mut rx).await;
            assert_eq!(linker.live_codes(), 1);
            codes.insert(code);
            ttls.push(ttl.as_secs());
        }
        assert_eq!(rx.next().await, Some(LinkerEvent::Exhausted));
        assert_eq!(ttls, [60, 20, 20, 20, 20, 20]);
        assert_eq!(codes.len(), 6, "every code is new");
        assert_eq!(started.elapsed(), Duration::from_secs(160));
        assert_eq!(linker.live_codes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_current_code_can_be_scanned() {
        let linker =
            SimulatedLinker::new(SimConfig { link_delay: Duration::ZERO, ..SimConfig::default() });
        let (mut rx, _cancel) = start(&linker);
        let (first, _) = next_code(&mut rx).await;
        let (second, _) = next_code(&mut rx).await;

        let stale = linker.scan(&first, phone(), "L".into(), ScanOutcome::Success);
        let unknown = linker.scan("2@AAAA,b,c,d,9", phone(), "L".into(), ScanOutcome::Success);
        let current = linker.scan(&second, phone(), "Lucio".into(), ScanOutcome::Success);
        let again = linker.scan(&second, phone(), "Lucio".into(), ScanOutcome::Success);

        assert_eq!(stale, Err(ScanError::Expired));
        assert_eq!(unknown, Err(ScanError::Unknown));
        assert_eq!(current, Ok(()));
        assert_eq!(again, Err(ScanError::Expired));
        assert_eq!(rx.next().await, Some(LinkerEvent::Scanned));
        assert_eq!(rx.linked().await, (phone(), "Lucio".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_an_attempt_withdraws_its_code() {
        let linker = SimulatedLinker::new(SimConfig::default());
        let (mut rx, cancel) = start(&linker);
        let (code, _) = next_code(&mut rx).await;
        cancel.cancel();
        assert_eq!(rx.next().await, None, "the attempt ended");
        assert_eq!(linker.live_codes(), 0);
        assert_eq!(
            linker.scan(&code, phone(), String::new(), ScanOutcome::Success),
            Err(ScanError::Expired)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_outcome_reports_its_events() {
        let linker = SimulatedLinker::new(SimConfig::default());
        for (outcome, expect_scanned, last) in [
            (ScanOutcome::DeviceLimit, false, "device_limit"),
            (ScanOutcome::Rejected, true, "pairing_rejected"),
            (ScanOutcome::Unlinked, true, "unlinked"),
        ] {
            let (mut rx, _cancel) = start(&linker);
            let (code, _) = next_code(&mut rx).await;
            linker.scan(&code, phone(), String::new(), outcome).unwrap();
            if expect_scanned {
                assert_eq!(rx.next().await, Some(LinkerEvent::Scanned));
            }
            let code = match rx.next().await {
                Some(LinkerEvent::Failed { code, reason }) => {
                    if code == FailureCode::DeviceLimit {
                        assert!(reason.contains("4 linked devices"), "{reason}");
                    }
                    code.as_str()
                }
                Some(LinkerEvent::Disconnected { code, .. }) => code.as_str(),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(code, last);
        }
    }
}
