//! The widget in a real browser: headless Chromium through `wasm-bindgen-test-runner`
//! (`scripts/test.sh` runs it with Debian's chromedriver).
#![cfg(target_arch = "wasm32")]

use keebai_protocol::{
    ConnectResponse, ConnectedEvent, FailedEvent, FailureCode, PairingCodeEvent, QrEvent,
    StreamEvent,
};
use keebai_widget::machine::{Input, Machine};
use keebai_widget::paint::Modules;
use keebai_widget::{QrConnect, QrConnectView};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const PAYLOAD: &str = "2@q0vIuQmzuVd1P9kAjH5mC3qxaSXQGw==,Jm4+oqJ0kN2b5nUZt6Zb0TZ2j6o5Nf2l0yRk8x1bq3s=,l8E5t2mB9w0HfLr0yQ1pX2m8ZkQ0n7T5v6d4c3b2a1E=,Rk9qaW5nLWFkdi1zZWNyZXQtZm9yLXRlc3RzLW9ubHk=,9";

fn container() -> web_sys::HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let element = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&element).unwrap();
    element.unchecked_into()
}

/// Lets effects and the browser run.
async fn settle(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

fn text(root: &web_sys::HtmlElement, selector: &str) -> String {
    root.query_selector(selector)
        .unwrap()
        .map(|e| e.text_content().unwrap_or_default())
        .unwrap_or_default()
}

fn button(root: &web_sys::HtmlElement) -> Option<web_sys::HtmlButtonElement> {
    root.query_selector(".kbai-action").unwrap().map(|e| e.unchecked_into())
}

fn session() -> ConnectResponse {
    ConnectResponse { session_id: "qrs_1".into(), stream_url: "/stream".into(), expires_in: 300 }
}

fn mount_view(
    machine: RwSignal<Machine, LocalStorage>,
    on_input: UnsyncCallback<Input>,
) -> web_sys::HtmlElement {
    let root = container();
    leptos::mount::mount_to(root.clone(), move || {
        view! { <QrConnectView machine=machine now=RwSignal::new_local(0.0) on_input=on_input /> }
    })
    .forget();
    root
}

/// Applies what the view asks for, as `QrConnect` does (without the network).
fn apply_inputs(machine: RwSignal<Machine, LocalStorage>) -> UnsyncCallback<Input> {
    UnsyncCallback::new(move |input| {
        machine.update(|m| {
            m.apply(input);
        })
    })
}

fn element<T: JsCast>(root: &web_sys::HtmlElement, selector: &str) -> T {
    root.query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no {selector}"))
        .unchecked_into()
}

fn visible(root: &web_sys::HtmlElement, selector: &str) -> bool {
    let element: web_sys::HtmlElement = element(root, selector);
    element.offset_parent().is_some()
}

fn focused_class() -> String {
    let document = web_sys::window().unwrap().document().unwrap();
    document.active_element().map(|e| e.class_name()).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn the_canvas_shows_the_modules_of_the_payload_dark_on_light_with_a_quiet_zone() {
    let machine = RwSignal::new_local(Machine::default());
    machine.update(|m| {
        m.apply(Input::Start);
        m.apply(Input::Started { session: session(), now: 0.0 });
        m.apply(Input::Stream(StreamEvent::Qr(QrEvent { data: PAYLOAD.into(), expires_at: None })));
    });
    let root = mount_view(machine, UnsyncCallback::new(|_| {}));
    settle(0).await;

    let canvas: web_sys::HtmlCanvasElement =
        root.query_selector("canvas").unwrap().unwrap().unchecked_into();
    assert!(canvas.get_attribute("aria-label").unwrap().contains("QR code"));
    let modules = Modules::encode(PAYLOAD).unwrap();
    let size = modules.size as u32;
    assert_eq!(canvas.width() % size, 0, "whole device pixels per module");
    let module_px = canvas.width() / size;
    let context: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").unwrap().unwrap().unchecked_into();
    let pixels = context
        .get_image_data(0.0, 0.0, canvas.width().into(), canvas.height().into())
        .unwrap()
        .data();
    for y in 0..modules.size {
        for x in 0..modules.size {
            let (px, py) =
                (x as u32 * module_px + module_px / 2, y as u32 * module_px + module_px / 2);
            let red = pixels[((py * canvas.width() + px) * 4) as usize];
            let expected = if modules.is_dark(x, y) { 0 } else { 255 };
            assert_eq!(red, expected, "module ({x}, {y})");
        }
    }
}

#[wasm_bindgen_test]
async fn every_state_renders_its_text_and_try_again_starts_over() {
    let machine = RwSignal::new_local(Machine::default());
    let clicks = RwSignal::new_local(0);
    let root = mount_view(
        machine,
        UnsyncCallback::new(move |input| {
            if input == Input::Start {
                clicks.update(|n| *n += 1)
            }
        }),
    );
    let status = |root: &web_sys::HtmlElement| text(root, "[role=status]");
    settle(0).await;
    assert_eq!(button(&root).unwrap().text_content().unwrap(), "Connect WhatsApp");

    let steps: Vec<(Input, &str)> = vec![
        (Input::Start, "Preparing a code"),
        (Input::Started { session: session(), now: 0.0 }, "Waiting for a code"),
        (
            Input::Stream(StreamEvent::Qr(QrEvent { data: PAYLOAD.into(), expires_at: None })),
            "Linked devices",
        ),
        (Input::Stream(StreamEvent::Connecting), "Scanned. Linking your phone"),
        (
            Input::Stream(StreamEvent::Connected(ConnectedEvent {
                channel_id: "ch_1".into(),
                phone_number: "+56912345678".into(),
                push_name: "Lucio".into(),
            })),
            "Connected: +56912345678 (Lucio).",
        ),
    ];
    for (input, expected) in steps {
        machine.update(|m| {
            m.apply(input);
        });
        settle(0).await;
        assert!(
            status(&root).contains(expected),
            "{:?} does not contain {expected:?}",
            status(&root)
        );
    }

    machine.set(Machine::default());
    machine.update(|m| {
        m.apply(Input::Start);
        m.apply(Input::Started { session: session(), now: 0.0 });
        m.apply(Input::Stream(StreamEvent::Failed(FailedEvent {
            code: FailureCode::Expired,
            reason: String::new(),
        })));
    });
    settle(0).await;
    assert!(status(&root).contains("expired"));
    let retry = button(&root).expect("a Try again button");
    assert_eq!(retry.text_content().unwrap(), "Try again");
    retry.click();
    assert_eq!(clicks.get_untracked(), 1);
}

#[wasm_bindgen_test]
async fn a_start_that_fails_shows_why_and_try_again_starts_again() {
    let root = container();
    let failures = RwSignal::new_local(Vec::<String>::new());
    let on_failed = UnsyncCallback::new(move |(code, _reason): (String, String)| {
        failures.update(|f| f.push(code));
    });
    leptos::mount::mount_to(root.clone(), move || {
        view! { <QrConnect start_url="/no-such-route" on_failed=Some(on_failed) /> }
    })
    .forget();
    settle(0).await;
    let wait_for_failures = |count: usize| async move {
        let mut waited = 0;
        while failures.with_untracked(Vec::len) < count {
            assert!(waited < 5000, "waited for failure {count}");
            settle(20).await;
            waited += 20;
        }
    };

    button(&root).unwrap().click();
    wait_for_failures(1).await;
    settle(0).await;
    let status = text(&root, "[role=status]");
    assert!(status.contains("could not be reached"), "{status}");
    assert_eq!(button(&root).unwrap().text_content().as_deref(), Some("Try again"));

    // Try again really starts a new session (which fails the same way here).
    button(&root).unwrap().click();
    wait_for_failures(2).await;
    assert_eq!(failures.get_untracked(), ["start_failed", "start_failed"]);
}

#[wasm_bindgen_test]
fn the_widget_reads_every_event_the_server_writes() {
    use keebai_protocol::{DisconnectCode, DisconnectedEvent};
    let channel = ConnectedEvent {
        channel_id: "ch_1".into(),
        phone_number: "+56912345678".into(),
        push_name: "Lucio".into(),
    };
    let mut events = vec![
        StreamEvent::Qr(QrEvent {
            data: PAYLOAD.into(),
            expires_at: Some("2026-11-25T10:00:00.000Z".into()),
        }),
        StreamEvent::PairingCode(PairingCodeEvent {
            code: "ABCD-EFGH".into(),
            phone_number: "+56912345678".into(),
            expires_at: "2026-11-25T10:03:00.000Z".into(),
        }),
        StreamEvent::Connecting,
        StreamEvent::Connected(channel),
        StreamEvent::Disconnected(DisconnectedEvent {
            code: DisconnectCode::Unlinked,
            reason: "The phone removed this device.".into(),
        }),
    ];
    for code in FailureCode::ALL {
        events.push(StreamEvent::Failed(FailedEvent { code, reason: "why".into() }));
    }
    for event in events {
        // `data_json` is what the server writes on the stream.
        let read = keebai_widget::wire::parse_event(event.name().as_str(), &event.data_json());
        assert_eq!(read, Some(event));
    }

    let parse = keebai_widget::wire::parse_event;
    assert_eq!(
        parse("qr", r#""2@bare""#),
        Some(StreamEvent::Qr(QrEvent { data: "2@bare".into(), expires_at: None }))
    );
    assert_eq!(
        parse("failed", r#"{"code":"brand_new","reason":"r"}"#),
        Some(StreamEvent::Failed(FailedEvent { code: FailureCode::Other, reason: "r".into() }))
    );
    // Data that does not fit its event, and unknown events, are ignored.
    assert_eq!(parse("connected", r#"{"channel_id":"ch_1"}"#), None);
    assert_eq!(parse("qr", "{not json"), None);
    assert_eq!(parse("qr", "42"), None);
    assert_eq!(parse("ping", "{}"), None);

    let answer = serde_json::to_string(&session()).unwrap();
    assert_eq!(keebai_widget::wire::connect_response(&answer), Some(session()));
    assert_eq!(keebai_widget::wire::connect_response(r#"{"session_id":"qrs_1"}"#), None);
    assert_eq!(
        keebai_widget::wire::error_message(r#"{"error":{"code":"X","message":"Nope."}}"#),
        Some("Nope.".into())
    );
}

#[wasm_bindgen_test]
fn the_browser_reads_the_servers_times_as_the_native_parser_does() {
    use keebai_widget::machine::parse_millis;
    // 2026-11-25T10:00:00Z, as the `time` crate counts it in the native tests.
    assert_eq!(parse_millis("2026-11-25T10:00:00.000Z"), Some(1_795_600_800_000.0));
    assert_eq!(parse_millis("2026-11-25T10:00:00.250Z"), Some(1_795_600_800_250.0));
    assert_eq!(parse_millis("not a time"), None);
}

#[wasm_bindgen_test]
async fn the_phone_form_is_labelled_and_keyboard_focus_follows_it() {
    let machine = RwSignal::new_local(Machine::default());
    machine.update(|m| {
        m.apply(Input::Start);
        m.apply(Input::Started { session: session(), now: 0.0 });
        m.apply(Input::Stream(StreamEvent::Qr(QrEvent { data: PAYLOAD.into(), expires_at: None })));
    });
    let root = mount_view(machine, apply_inputs(machine));
    settle(50).await;
    assert!(!visible(&root, ".kbai-phone"), "the form waits to be asked for");
    let link: web_sys::HtmlButtonElement = element(&root, ".kbai-use-phone");
    assert_eq!(link.text_content().unwrap(), "Can't scan? Link with phone number");
    assert_eq!(link.type_(), "button");
    link.click();
    settle(50).await;

    // The field has its label, its hint and (once wrong) its error as its description.
    assert!(visible(&root, ".kbai-phone") && !visible(&root, "canvas"));
    let field: web_sys::HtmlInputElement = element(&root, ".kbai-phone input");
    assert_eq!(focused_class(), "", "focus is in the field (which has no class)");
    let document = web_sys::window().unwrap().document().unwrap();
    assert_eq!(document.active_element().unwrap().id(), field.id());
    assert_eq!(field.type_(), "tel");
    let labels = field.labels().unwrap();
    assert_eq!(labels.length(), 1);
    assert_eq!(labels.get(0).unwrap().text_content().unwrap(), "Phone number, with country code");
    let described: Vec<String> = field
        .get_attribute("aria-describedby")
        .unwrap()
        .split(' ')
        .map(|id| document.get_element_by_id(id).expect("a described-by id").class_name())
        .collect();
    assert_eq!(described, ["kbai-hint", "kbai-error"]);
    field.set_value("+56 9 1234");
    let form: web_sys::HtmlFormElement = element(&root, ".kbai-phone");
    form.request_submit().unwrap();
    settle(50).await;
    assert_eq!(field.get_attribute("aria-invalid").as_deref(), Some("true"));
    assert!(text(&root, ".kbai-error[role=alert]").contains("8 to 15 digits"));

    // Back to the QR: focus returns to the link that opened the form.
    let close: web_sys::HtmlButtonElement = element(&root, ".kbai-close-form");
    assert_eq!(close.text_content().unwrap(), "Scan a QR code instead");
    close.click();
    settle(50).await;
    assert!(visible(&root, "canvas"));
    assert_eq!(focused_class(), "kbai-use-phone");

    // A valid number asks for a code; the code takes the QR's place and the focus.
    link.click();
    settle(50).await;
    field.set_value("+56 9 1234 5678");
    form.request_submit().unwrap();
    settle(50).await;
    assert!(element::<web_sys::HtmlButtonElement>(&root, ".kbai-get-code").disabled(), "once");
    machine.update(|m| {
        m.apply(Input::Stream(StreamEvent::PairingCode(PairingCodeEvent {
            code: "ABCD-EFGH".into(),
            phone_number: "+56912345678".into(),
            expires_at: "2026-11-25T10:03:00.000Z".into(),
        })));
    });
    settle(50).await;
    assert!(!visible(&root, ".kbai-phone") && !visible(&root, "canvas"));
    let group: web_sys::HtmlElement = element(&root, ".kbai-pairing-code");
    assert_eq!(group.get_attribute("role").as_deref(), Some("group"));
    assert_eq!(group.get_attribute("aria-label").as_deref(), Some("Pairing code"));
    assert_eq!(text(&root, ".kbai-code"), "ABCD-EFGH");
    assert_eq!(text(&root, ".kbai-steps li:nth-child(3)"), "Tap “Link with phone number instead”.");
    assert_eq!(focused_class(), "kbai-copy");
    assert_eq!(text(&root, ".kbai-use-phone"), "Wrong number?");
}

/// The page's `lang` chooses the language when the host does not; the host's `locale` and
/// `messages` win over it.
#[wasm_bindgen_test]
async fn the_language_follows_the_page_unless_the_host_chooses() {
    let html = web_sys::window().unwrap().document().unwrap().document_element().unwrap();
    let before = html.get_attribute("lang");
    html.set_attribute("lang", "pt-BR").unwrap();
    let page = container();
    leptos::mount::mount_to(page.clone(), || view! { <QrConnect start_url="/no-such-route" /> })
        .forget();
    let chosen = container();
    leptos::mount::mount_to(chosen.clone(), || {
        view! {
            <QrConnect
                start_url="/no-such-route"
                locale=Some("es".to_owned())
                messages=vec![("intro".to_owned(), "Vincula tu número de ventas.".to_owned())]
            />
        }
    })
    .forget();
    match before {
        Some(lang) => html.set_attribute("lang", &lang).unwrap(),
        None => html.remove_attribute("lang").unwrap(),
    }
    settle(50).await;

    let section: web_sys::HtmlElement = element(&page, "section");
    assert_eq!(section.get_attribute("lang").as_deref(), Some("pt-BR"));
    assert_eq!(button(&page).unwrap().text_content().unwrap(), "Conectar WhatsApp");
    assert!(text(&page, "[role=status]").contains("escaneando um código QR"));
    let label: web_sys::HtmlElement = element(&page, "canvas");
    assert!(label.get_attribute("aria-label").unwrap().starts_with("Código QR para conectar"));

    let section: web_sys::HtmlElement = element(&chosen, "section");
    assert_eq!(section.get_attribute("lang").as_deref(), Some("es"));
    assert_eq!(text(&chosen, "[role=status]"), "Vincula tu número de ventas.");
    assert_eq!(button(&chosen).unwrap().text_content().unwrap(), "Conectar WhatsApp");
    assert_eq!(text(&chosen, ".kbai-get-code"), "Obtener código");
}
