//! "Link with phone number" against the fake: an unmodified whatsapp-rust 0.7.0 client asks for
//! a pairing code (`pair_with_code`), the fake phone types it (`enter_code`), and the client
//! links and logs in as that phone's account, as through WhatsApp.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keebai_fake_whatsapp::{CodeRefusal, Config, FakeWhatsapp, Phone, WireEvent};
use whatsapp_rust::Client;
use whatsapp_rust::async_channel;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::pair_code::{PairCodeOptions, PairCodeRejection};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};

const PHONE: &str = "+56912345678";
const USER: &str = "56912345678";
/// Pairing and the first login take a few round trips and PBKDF2 runs on a loaded machine.
const WITHIN: Duration = Duration::from_secs(30);

/// Forwards every event in order (whatsapp-rust calls handlers inline).
struct Forward(async_channel::Sender<Arc<Event>>);

impl EventHandler for Forward {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.try_send(event);
    }
}

/// A whatsapp-rust client on a fresh device, pointed at the fake.
struct Companion {
    client: Arc<Client>,
    handle: BotHandle,
    events: async_channel::Receiver<Arc<Event>>,
    dir: PathBuf,
}

impl Companion {
    /// Starts it and waits for the fake's first QR, after which the socket can ask for a code.
    async fn start(fake: &FakeWhatsapp) -> Self {
        // A directory of our own rather than a new dev-dependency (tempfile).
        let dir = std::env::temp_dir().join(format!(
            "keebai-fake-pair-code-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("device.db");
        let store = SqliteStore::new(path.to_str().unwrap()).await.unwrap();
        let (sender, events) = async_channel::unbounded();
        let bot = Bot::builder()
            .with_backend(store)
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(fake.url()))
            // A version, so the client does not fetch WhatsApp Web's over HTTPS.
            .with_version((2, 3000, 1023456789))
            .with_event_handler(Forward(sender))
            .build()
            .await
            .unwrap();
        let handle = bot.spawn();
        let client = handle.client();
        let mut companion = Self { client, handle, events, dir };
        companion.next("a QR", |e| matches!(e, Event::PairingQrCode(_)).then_some(())).await;
        companion
    }

    /// The next event `pick` accepts, skipping the others.
    async fn next<T>(&mut self, what: &str, pick: impl Fn(&Event) -> Option<T>) -> T {
        let found = tokio::time::timeout(WITHIN, async {
            loop {
                let event = self.events.recv().await.expect("the client's events ended");
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
        });
        found.await.unwrap_or_else(|_| panic!("the client emitted no {what} within {WITHIN:?}"))
    }

    /// Asks for a code for `PHONE` and returns it as the client shows it (8 characters).
    async fn ask_code(&mut self) -> String {
        let options = PairCodeOptions { phone_number: PHONE.into(), ..Default::default() };
        let code = self.client.pair_with_code(options).await.unwrap();
        let event = self
            .next("PairingCode", |e| match e {
                Event::PairingCode(p) => Some(p.code.clone()),
                _ => None,
            })
            .await;
        assert_eq!(event, code, "the event carries the returned code");
        code
    }

    /// Requires `PairSuccess` as `USER`, then `Connected`.
    async fn linked(&mut self) {
        let user = self
            .next("PairSuccess", |e| match e {
                Event::PairSuccess(p) => Some(p.id.user.to_string()),
                Event::PairError(p) => panic!("pair error: {}", p.error),
                _ => None,
            })
            .await;
        assert_eq!(user, USER);
        self.next("Connected", |e| matches!(e, Event::Connected(_)).then_some(())).await;
    }

    async fn stop(self) {
        if tokio::time::timeout(Duration::from_secs(1), self.client.disconnect()).await.is_err() {
            self.handle.abort();
        }
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.handle).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A valid code that is not `code`: its last character changed.
fn another_code(code: &str) -> String {
    let last = if code.ends_with('Z') { 'Y' } else { 'Z' };
    format!("{}{last}", &code[..7])
}

fn phone() -> Phone {
    Phone::new(PHONE, "Lucio")
}

/// `primary_hello` notifications the fake sent so far.
fn primary_hellos(fake: &FakeWhatsapp) -> usize {
    fake.events()
        .iter()
        .filter(|e| match e {
            WireEvent::Sent { node, .. } => {
                node.tag == "notification"
                    && node
                        .attrs
                        .get("type")
                        .is_some_and(|t| t.as_str() == "link_code_companion_reg")
            }
            _ => false,
        })
        .count()
}

fn logins(fake: &FakeWhatsapp) -> Vec<(String, u16)> {
    fake.events()
        .into_iter()
        .filter_map(|e| match e {
            WireEvent::Connected { login: Some(login), .. } => Some(login),
            _ => None,
        })
        .collect()
}

/// Whether a `link_code_companion_reg` node went from the client to the fake with `stage`.
fn companion_sent(fake: &FakeWhatsapp, stage: &str) -> usize {
    fake.events()
        .iter()
        .filter(|e| match e {
            WireEvent::Received { node, .. } => node
                .get_optional_child("link_code_companion_reg")
                .and_then(|reg| reg.attrs.get("stage"))
                .is_some_and(|s| s.as_str() == stage),
            _ => false,
        })
        .count()
}

#[tokio::test]
async fn the_code_typed_on_the_phone_links_the_companion_and_it_logs_in() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let mut companion = Companion::start(&fake).await;
    let code = companion.ask_code().await;
    assert_eq!(code.len(), 8, "{code}");

    let requested = fake.events().into_iter().find_map(|e| match e {
        WireEvent::CodeRequested { phone_number, push_notification, .. } => {
            Some((phone_number, push_notification))
        }
        _ => None,
    });
    assert_eq!(requested, Some((USER.to_owned(), true)), "WA Web's default asks for the push");
    let request = fake.outstanding_code(PHONE).expect("the code is outstanding");
    assert_eq!((request.attempts, request.wrong_attempts), (0, 0));
    assert!(request.platform_display.contains('('), "{request:?}");

    // As the phone shows it: grouped, and typed in lower case.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let device = fake.enter_code(&typed, &phone()).await.unwrap();
    assert_eq!(device, format!("{USER}:7@s.whatsapp.net"));
    companion.linked().await;
    assert!(companion.client.is_logged_in());

    assert_eq!(logins(&fake), vec![(USER.to_owned(), 7)], "it logged in as the phone's device 7");
    assert_eq!(companion_sent(&fake, "companion_finish"), 1);
    assert!(fake.outstanding_code(PHONE).is_none(), "a code links once");
    assert!(fake.enter_code(&code, &phone()).await.is_err(), "and is gone after");
    companion.stop().await;
}

#[tokio::test]
async fn a_wrong_code_or_another_phone_links_nothing_and_the_right_code_still_does() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let mut companion = Companion::start(&fake).await;
    let code = companion.ask_code().await;

    // A wrong code: the companion gets its primary_hello and answers (it cannot tell), the phone
    // cannot open the answer.
    let wrong = another_code(&code);
    let error = fake.enter_code(&wrong, &phone()).await.unwrap_err();
    assert!(format!("{error:#}").contains("wrong code"), "{error:#}");
    assert_eq!(primary_hellos(&fake), 1);
    assert_eq!(companion_sent(&fake, "companion_finish"), 1);
    let request = fake.outstanding_code(PHONE).expect("a wrong code leaves the code usable");
    assert_eq!((request.attempts, request.wrong_attempts), (1, 1));
    assert!(
        fake.events().iter().any(|e| matches!(e, WireEvent::WrongCode { wrong_attempts: 1, .. }))
    );
    assert!(!fake.events().iter().any(|e| matches!(e, WireEvent::Paired { .. })), "nothing linked");

    // The right code on a phone with another number: WhatsApp routes by number, nobody asked.
    let other = Phone::new("+56987654321", "Otra");
    let error = fake.enter_code(&code, &other).await.unwrap_err();
    assert!(format!("{error:#}").contains("check the phone number"), "{error:#}");
    assert_eq!(primary_hellos(&fake), 1, "nothing was sent to the companion");
    assert_eq!(fake.outstanding_code(PHONE).map(|r| r.attempts), Some(1), "and it did not count");

    // The right code on the right phone, inside the client's 60 s wait after the first try.
    fake.enter_code(&code, &phone()).await.unwrap();
    companion.linked().await;
    assert_eq!(logins(&fake), vec![(USER.to_owned(), 7)]);
    companion.stop().await;
}

#[tokio::test]
async fn three_wrong_codes_kill_the_code() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let mut companion = Companion::start(&fake).await;
    let code = companion.ask_code().await;
    let wrong = another_code(&code);
    for attempt in 1..=3 {
        let error = fake.enter_code(&wrong, &phone()).await.unwrap_err();
        assert!(format!("{error:#}").contains("wrong code"), "attempt {attempt}: {error:#}");
    }
    assert!(fake.outstanding_code(PHONE).is_none(), "the code is dead");
    let error = fake.enter_code(&code, &phone()).await.unwrap_err();
    assert!(format!("{error:#}").contains("get a new code"), "{error:#}");
    assert_eq!(primary_hellos(&fake), 3, "no fourth primary_hello");
    assert!(!fake.events().iter().any(|e| matches!(e, WireEvent::Paired { .. })));
    companion.stop().await;
}

#[tokio::test]
async fn a_refused_code_request_reaches_the_client_as_a_rate_limit() {
    let fake = FakeWhatsapp::start(Config::default()).await.unwrap();
    let mut companion = Companion::start(&fake).await;
    fake.refuse_next_code_request(CodeRefusal::rate_overlimit(Some(30)));
    let options = PairCodeOptions { phone_number: PHONE.into(), ..Default::default() };
    let error = companion.client.pair_with_code(options).await.unwrap_err();
    assert_eq!(error.rejection(), Some(PairCodeRejection::RateOverlimit), "{error}");
    let (rejection, backoff) = companion
        .next("PairingCodeError", |e| match e {
            Event::PairingCodeError(p) => Some((p.rejection, p.backoff)),
            _ => None,
        })
        .await;
    assert_eq!(rejection, Some(PairCodeRejection::RateOverlimit));
    assert_eq!(backoff, Some(Duration::from_secs(30)));
    assert!(fake.outstanding_code(PHONE).is_none());

    // The refusal was for one request: the next one gets a code, and it links.
    let code = companion.ask_code().await;
    fake.enter_code(&code, &phone()).await.unwrap();
    companion.linked().await;
    companion.stop().await;
}
