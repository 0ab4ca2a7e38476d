//! Linking by phone number in the browser, end to end with the simulated phone: in each
//! built-in language (chosen by the page, by the host's `locale`, by the browser), with a text
//! overridden by the host, and with the keyboard alone.

use fantoccini::key::Key;
use keebai_e2e::browser::Browser;
use keebai_e2e::{Build, wait_for};
use keebai_protocol::sim::ScanOutcome;
use keebai_test_support::PHONE;
use reqwest::StatusCode;
use serde_json::json;

use super::{Setup, click_action};

/// What the widget says along the way, in one language.
struct Expected {
    connect: &'static str,
    use_phone: &'static str,
    get_code: &'static str,
    invalid: &'static str,
    step_with_phone: &'static str,
    /// The countdown's words around its two times.
    countdown: [&'static str; 2],
    connected: &'static str,
}

const SPANISH: Expected = Expected {
    connect: "Vincular WhatsApp", // the host's override of "Conectar WhatsApp"
    use_phone: "¿No puedes escanear? Vincular con número de teléfono",
    get_code: "Obtener código",
    invalid: "de 8 a 15 dígitos en total",
    step_with_phone: "Toca «Vincular con el número de teléfono».",
    countdown: ["Código válido por ", " · la sesión termina en "],
    connected: "Conectado: +56912345678 (Lucio).",
};

const PORTUGUESE: Expected = Expected {
    connect: "Conectar WhatsApp",
    use_phone: "Não consegue escanear? Conectar com número de telefone",
    get_code: "Gerar código",
    invalid: "de 8 a 15 dígitos no total",
    step_with_phone: "Toque em “Conectar com número de telefone”.",
    countdown: ["Código válido por ", " · a sessão termina em "],
    connected: "Conectado: +56912345678 (Lucio).",
};

/// Replaces the dashboard's widget with one mounted by `mount(element, options)`, the plain
/// JavaScript entry a host page uses.
async fn mount_widget(browser: &Browser, options: serde_json::Value) {
    wait_for("the widget's JavaScript entry", || async {
        let ready = browser.eval("return !!(window.wasmBindings && window.wasmBindings.mount);");
        ready.await.as_bool().filter(|ready| *ready)
    })
    .await;
    let script = format!(
        "const host = document.createElement('div');
         document.getElementById('whatsapp-connect').replaceWith(host);
         window.wasmBindings.mount(host, {options});"
    );
    browser.eval(&script).await;
}

/// The pairing code the widget shows, once it shows one.
async fn code_on_screen(browser: &Browser) -> String {
    wait_for("a pairing code on screen", || async {
        let code = browser.text(".kbai-pairing-code:not([hidden]) .kbai-code").await;
        let grouped = code.len() == 9
            && code.char_indices().all(|(i, c)| {
                if i == 4 { c == '-' } else { c.is_ascii_uppercase() || c.is_ascii_digit() }
            });
        grouped.then_some(code)
    })
    .await
}

/// Clicks through the code path, checking each text in the widget's language, and links.
async fn link_by_phone_number(setup: &Setup, expected: &Expected) {
    let browser = &setup.browser;
    click_action(browser, expected.connect).await;
    browser.next_qr(&[]).await;
    assert_eq!(browser.text(".kbai-use-phone").await, expected.use_phone);
    browser.click(".kbai-use-phone").await;
    assert_eq!(browser.text(".kbai-get-code").await, expected.get_code);

    // A number without its country code is refused in the widget's language.
    browser.click(".kbai-phone input").await;
    browser.type_keys("123456").await;
    browser.click(".kbai-get-code").await;
    let error = wait_for("the error", || async {
        let error = browser.text(".kbai-error").await;
        (!error.is_empty()).then_some(error)
    })
    .await;
    assert!(error.contains(expected.invalid), "{error}");

    browser.eval("document.querySelector('.kbai-phone input').value = '+56 9 1234 5678';").await;
    browser.click(".kbai-get-code").await;
    let code = code_on_screen(browser).await;
    assert_eq!(browser.text(".kbai-steps li:nth-child(3)").await, expected.step_with_phone);
    // A 180 s code in a 300 s window: "3:00" or just under, never more.
    let countdown = browser.text(".kbai-countdown").await;
    let [code_valid, session_ends] = expected.countdown;
    let times = countdown.strip_prefix(code_valid).and_then(|rest| rest.split_once(session_ends));
    let (code_left, session_left) = times.unwrap_or_else(|| panic!("{countdown}"));
    assert!(code_left == "3:00" || code_left.starts_with("2:5"), "{countdown}");
    assert!(session_left.starts_with("4:") || session_left == "5:00", "{countdown}");
    assert!(browser.qr_on_screen().await.is_none(), "the code took the QR's place");

    let entered = setup.server.sim_enter_code(&code, PHONE, ScanOutcome::Success).await;
    assert_eq!(entered.status(), StatusCode::ACCEPTED);
    browser.status_contains(expected.connected).await;
}

/// The host chooses Spanish through `mount()`'s `locale`, and overrides one text.
async fn in_spanish_chosen_by_the_host_with_one_text_overridden(build: Build) {
    let setup = Setup::new(build, 1.0, |_| {}).await;
    let options = json!({ "locale": "es", "messages": { "connect": "Vincular WhatsApp" } });
    mount_widget(&setup.browser, options).await;
    let lang = setup.browser.eval("return document.querySelector('.kbai-qr-connect').lang;");
    assert_eq!(lang.await, "es", "screen readers read the widget as Spanish");
    let intro = setup.browser.text(".kbai-status").await;
    assert!(intro.starts_with("Vincula un número de WhatsApp"), "the rest is Spanish: {intro}");
    link_by_phone_number(&setup, &SPANISH).await;
    setup.finish().await;
}

/// A page that declares no language: the widget follows the browser's (Brazilian Portuguese).
async fn in_portuguese_from_the_browsers_language(build: Build) {
    let setup = Setup::new_in(build, "pt-BR", |_| {}).await;
    setup.browser.eval("document.documentElement.removeAttribute('lang');").await;
    mount_widget(&setup.browser, json!({})).await;
    let lang = setup.browser.eval("return document.querySelector('.kbai-qr-connect').lang;");
    assert_eq!(lang.await, "pt-BR");
    link_by_phone_number(&setup, &PORTUGUESE).await;
    setup.finish().await;
}

/// Presses Tab until the focus is on `target` (`tag.class`), as a keyboard user does.
async fn tab_to(browser: &Browser, target: &str) {
    for _ in 0..20 {
        if browser.focused().await == target {
            return;
        }
        browser.type_keys(&char::from(Key::Tab).to_string()).await;
    }
    panic!("Tab never reached {target} (focus is on {})", browser.focused().await);
}

/// English, from the dashboard's own `lang`, with the keyboard alone: Tab and Enter reach and
/// use every control, focus moves where the person needs it, and each control has the name a
/// screen reader announces. The dashboard's simulated phone types the code (it learns it
/// through `onPairingCode`).
async fn a_person_links_by_phone_number_with_the_keyboard_only(build: Build) {
    let setup = Setup::new(build, 1.0, |_| {}).await;
    let browser = &setup.browser;
    let enter = char::from(Key::Enter).to_string();
    tab_to(browser, "button.kbai-action").await;
    assert_eq!(browser.text(".kbai-action").await, "Connect WhatsApp");
    browser.type_keys(&enter).await;
    browser.next_qr(&[]).await;
    let label = browser.eval("return document.querySelector('canvas').getAttribute('aria-label');");
    assert!(label.await.as_str().unwrap_or_default().starts_with("QR code to link WhatsApp"));

    tab_to(browser, "button.kbai-use-phone").await;
    browser.type_keys(&enter).await;
    wait_for("the focus in the phone field", || async {
        (browser.focused().await == "input").then_some(())
    })
    .await;
    let field = browser
        .eval(
            "const f = document.activeElement;
             return { type: f.type, label: f.labels[0].textContent,
                      described: f.getAttribute('aria-describedby').split(' ')
                          .map(id => document.getElementById(id).className) };",
        )
        .await;
    assert_eq!(
        field,
        json!({ "type": "tel", "label": "Phone number, with country code",
                "described": ["kbai-hint", "kbai-error"] })
    );
    browser.type_keys(&format!("56 9 1234{enter}")).await;
    wait_for("the field marked invalid", || async {
        let invalid = browser.eval(
            "return document.querySelector('.kbai-phone input').getAttribute('aria-invalid');",
        );
        (invalid.await == "true").then_some(())
    })
    .await;
    assert_eq!(browser.eval("return document.querySelector('.kbai-error').role;").await, "alert");
    browser.type_keys(&format!(" 5678{enter}")).await;

    let code = code_on_screen(browser).await;
    wait_for("the focus on Copy code", || async {
        (browser.focused().await == "button.kbai-copy").then_some(())
    })
    .await;
    assert_eq!(browser.text(".kbai-copy").await, "Copy code");
    let group = browser.eval(
        "const g = document.querySelector('.kbai-pairing-code');
         return [g.getAttribute('role'), g.getAttribute('aria-label')];",
    );
    assert_eq!(group.await, json!(["group", "Pairing code"]));
    let status = browser.text(".kbai-status").await;
    assert_eq!(status, format!("Enter this code in WhatsApp on {PHONE}."));

    // The dashboard's simulated phone types the code the widget announced.
    wait_for("the simulated phone to have the code", || async {
        let enabled = browser.eval("return !document.getElementById('sim-enter-code').disabled;");
        (enabled.await == true).then_some(())
    })
    .await;
    browser.click("#sim-enter-code").await;
    browser.status_contains(&format!("Connected: {PHONE} (Lucio).")).await;
    wait_for("the number in the dashboard's list", || async {
        browser.text("#numbers tbody").await.contains(PHONE).then_some(())
    })
    .await;
    assert!(!code.is_empty());
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_in_spanish_chosen_by_the_host_with_one_text_overridden() {
    in_spanish_chosen_by_the_host_with_one_text_overridden(Build::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_in_portuguese_from_the_browsers_language() {
    in_portuguese_from_the_browsers_language(Build::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_build_a_person_links_by_phone_number_with_the_keyboard_only() {
    a_person_links_by_phone_number_with_the_keyboard_only(Build::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_build_a_person_links_by_phone_number_with_the_keyboard_only() {
    a_person_links_by_phone_number_with_the_keyboard_only(Build::Release).await;
}
