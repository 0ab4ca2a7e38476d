//! The `QrConnect` component: renders the [`Machine`] in the [`Messages`]' language and
//! performs its effects (the start request, the `EventSource`, the pairing code request, the
//! callbacks, the canvas, the clipboard and the focus).

use std::time::Duration;

use keebai_protocol::{ConnectResponse, ConnectedEvent, EventName, PairingCodeEvent};
use leptos::ev::SubmitEvent;
use leptos::html::{Button, Canvas, Input as InputElement};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::i18n::{Messages, Text};
use crate::machine::{CodeRefusal, Effect as Action, Input, Machine};
use crate::paint::{Modules, layout};
use crate::wire;

/// The canvas's size in CSS pixels (before rounding to whole device pixels per module).
const QR_CSS_SIZE: f64 = 264.0;
/// Where inputs go: set once the component is built, read by async tasks and stream handlers.
type Dispatch = StoredValue<Option<std::rc::Rc<dyn Fn(Input)>>, LocalStorage>;

/// The User Timing measure recorded for each code painted (`performance.getEntriesByName`).
pub const PAINT_MEASURE: &str = "kbai-qr-paint";

/// The texts for the host's `locale` (if any) and `messages` overrides, in this page and
/// browser: see [`Messages::resolve`]. An override with an unknown key is reported on the
/// console and skipped.
pub fn messages_for(locale: Option<&str>, overrides: &[(String, String)]) -> Messages {
    let window = web_sys::window();
    let page_lang = window
        .as_ref()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|html| html.get_attribute("lang"));
    let browser: Vec<String> = window
        .map(|w| w.navigator().languages().iter().filter_map(|l| l.as_string()).collect())
        .unwrap_or_default();
    let mut messages =
        Messages::resolve(locale, page_lang.as_deref(), browser.iter().map(String::as_str));
    for (key, value) in overrides {
        if !messages.set(key, value.as_str()) {
            web_sys::console::warn_1(&JsValue::from_str(&format!(
                "keebai widget: no text is named {key}; see the README for the keys"
            )));
        }
    }
    messages
}

/// Links a WhatsApp number by QR code or by phone number, through the widget host on the
/// page's origin.
///
/// It holds no token: the host behind `start_url` starts the session with its own and binds it
/// to this browser with an HttpOnly cookie.
#[component]
pub fn QrConnect(
    /// Where sessions start (`POST`), on the page's origin. A session's pairing code is asked
    /// for at `{start_url}/{session_id}/pairing-code`.
    #[prop(into, default = keebai_protocol::WIDGET_SESSIONS_PATH.to_owned())]
    start_url: String,
    /// The channel's name (the server's default when absent).
    #[prop(default = None)]
    name: Option<String>,
    /// The language: `en`, `es` or `pt-BR` are built in. By default the page's `lang`, then
    /// the browser's languages, then English.
    #[prop(default = None)]
    locale: Option<String>,
    /// Texts that replace the built-in ones, by key (`("connect", "Vincular WhatsApp")`).
    #[prop(default = Vec::new())]
    messages: Vec<(String, String)>,
    /// Called once with the channel when the phone is linked.
    #[prop(default = None)]
    on_connected: Option<UnsyncCallback<ConnectedEvent>>,
    /// Called with `(code, reason)` when pairing fails, expires or is lost. The reason is the
    /// server's (in English); the widget shows its own text for the code.
    #[prop(default = None)]
    on_failed: Option<UnsyncCallback<(String, String)>>,
    /// Called with each new QR payload (for a page that mirrors the code, like the demo's
    /// simulated phone).
    #[prop(default = None)]
    on_qr: Option<UnsyncCallback<String>>,
    /// Called with each new pairing code.
    #[prop(default = None)]
    on_pairing_code: Option<UnsyncCallback<PairingCodeEvent>>,
) -> impl IntoView {
    let texts = StoredValue::new_local(messages_for(locale.as_deref(), &messages));
    let machine = RwSignal::new_local(Machine::default());
    let now = RwSignal::new_local(js_sys::Date::now());
    let stream: StoredValue<Option<Stream>, LocalStorage> = StoredValue::new_local(None);

    let clock =
        set_interval_with_handle(move || now.set(js_sys::Date::now()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(clock) = clock {
            clock.clear();
        }
        // Unmounting closes the stream.
        stream.set_value(None);
    });

    // One place applies inputs and performs what they ask for.
    let dispatch: Dispatch = StoredValue::new_local(None);
    let send = move |input: Input| {
        if let Some(dispatch) = dispatch.get_value() {
            dispatch(input);
        }
    };
    let run = {
        let start_url = start_url.clone();
        move |input: Input| {
            // The countdowns count from now, not from the clock's last tick.
            now.set(js_sys::Date::now());
            let effects = machine.try_update(|m| m.apply(input)).unwrap_or_default();
            for effect in effects {
                match effect {
                    Action::OpenStream(url) => open_stream(&url, stream, dispatch),
                    Action::CloseStream => stream.set_value(None),
                    // One task type for every request: each kind would add its own to the
                    // bundle.
                    effect @ (Action::StartSession
                    | Action::RequestCode { .. }
                    | Action::WriteClipboard(_)) => {
                        let (url, name) = (start_url.clone(), name.clone());
                        spawn_local(async move {
                            if let Some(input) = perform(effect, &url, name).await {
                                send(input);
                            }
                        });
                    }
                    Action::NotifyPairingCode(code) => {
                        if let Some(callback) = on_pairing_code {
                            callback.run(code);
                        }
                    }
                    Action::NotifyConnected(channel) => {
                        if let Some(callback) = on_connected {
                            callback.run(channel);
                        }
                    }
                    Action::NotifyFailed { code, reason } => {
                        if let Some(callback) = on_failed {
                            callback.run((code, reason));
                        }
                    }
                }
            }
        }
    };
    dispatch.set_value(Some(std::rc::Rc::new(run)));

    view! {
        <QrConnectView
            machine=machine
            now=now
            messages=texts.get_value()
            on_input=UnsyncCallback::new(send)
            on_qr=on_qr
        />
    }
}

/// Renders a [`Machine`]: the QR canvas or the pairing code with the steps on the phone, the
/// phone number form, the live status, the countdowns and the buttons. [`QrConnect`] drives it
/// from the network; tests drive it directly.
#[component]
pub fn QrConnectView(
    /// The state to render.
    machine: RwSignal<Machine, LocalStorage>,
    /// The current time (ms since the epoch), ticking for the countdowns. A plain local signal
    /// like `machine`: a `Signal` would link Leptos's derived signals and memos into the bundle.
    now: RwSignal<f64, LocalStorage>,
    /// The texts, in the widget's language.
    #[prop(default = Messages::default())]
    messages: Messages,
    /// What the person did (a button, the form).
    on_input: UnsyncCallback<Input>,
    /// Called with each new QR payload.
    #[prop(default = None)]
    on_qr: Option<UnsyncCallback<String>>,
) -> impl IntoView {
    let t = StoredValue::new_local(messages);
    let text = move |text: Text| t.with_value(|t| t.get(text).to_owned());
    let canvas = NodeRef::<Canvas>::new();
    let phone = NodeRef::<InputElement>::new();
    let copy = NodeRef::<Button>::new();
    let phone_link = NodeRef::<Button>::new();
    // Ids tie the phone field to its hint and error; unique per widget on the page.
    let id = next_id();
    let (hint_id, error_id) = (format!("{id}-hint"), format!("{id}-error"));

    // Each binding computes the view again (about fifteen times a second while a countdown
    // runs, microseconds each): a `Memo` would compute it once, and cost the bundle 2 KB.
    let view_model = move || machine.with(|m| t.with_value(|t| m.view(now.get(), t)));
    // One effect (each costs the bundle a task of its own) paints each new QR and moves the
    // keyboard focus with the phone number form: into the field when it opens, then to the code
    // it brought (or back to the link that opened it). It keeps the QR it painted last and
    // whether the form was open.
    Effect::new(move |last: Option<(Option<String>, bool)>| {
        let (qr, open) = machine.with(|m| {
            let view = m.view(0.0, &Messages::default());
            (view.qr, view.form.is_some())
        });
        let first = last.is_none();
        let (painted, was_open) = last.unwrap_or_default();
        if let (Some(qr), Some(canvas)) = (&qr, canvas.get())
            && painted.as_ref() != Some(qr)
        {
            // A User Timing measure per code painted, for the page's own monitoring and
            // for the budget benchmark (click to first code, repaint time).
            let performance = web_sys::window().and_then(|w| w.performance());
            if let Some(performance) = &performance {
                let _ = performance.mark(PAINT_MEASURE);
            }
            paint(&canvas, qr);
            if let Some(performance) = &performance {
                let _ = performance.measure_with_start_mark(PAINT_MEASURE, PAINT_MEASURE);
                performance.clear_marks_with_mark_name(PAINT_MEASURE);
            }
            if let Some(callback) = on_qr {
                callback.run(qr.clone());
            }
        }
        if !first && was_open != open {
            let (field, copy, link) =
                (phone.get_untracked(), copy.get_untracked(), phone_link.get_untracked());
            let to_code = untrack(view_model).pairing_code.is_some();
            // After this turn's DOM updates: the target may be unhidden by one of them.
            request_animation_frame(move || {
                if open {
                    if let Some(field) = field {
                        // The caret after what is there (the `+`), ready to type.
                        let _ = field.focus();
                        let end = field.value().len() as u32;
                        let _ = field.set_selection_range(end, end);
                    }
                } else if let Some(target) = if to_code { copy } else { link } {
                    let _ = target.focus();
                }
            });
        }
        // While the form hides the QR, the canvas keeps the last one painted.
        (qr.or(painted), open)
    });
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        on_input
            .run(Input::SubmitPhone(phone.get_untracked().map(|p| p.value()).unwrap_or_default()));
    };

    view! {
        <section class="kbai-qr-connect" lang=t.with_value(|t| t.lang().to_owned()) data-phase=move || view_model().phase>
            <div class="kbai-qr-frame" hidden=move || view_model().qr.is_none()>
                <canvas node_ref=canvas role="img" aria-label=text(Text::QrLabel)></canvas>
            </div>
            <div class="kbai-pairing-code" role="group" aria-label=text(Text::CodeLabel)
                hidden=move || view_model().pairing_code.is_none()>
                <p class="kbai-code">{move || view_model().pairing_code.unwrap_or_default()}</p>
                <button class="kbai-copy" type="button" node_ref=copy on:click=move |_| on_input.run(Input::CopyCode)>
                    {move || text(if view_model().copied { Text::Copied } else { Text::Copy })}
                </button>
                <ol class="kbai-steps">
                    <li>{text(Text::StepOpen)}</li>
                    <li>{text(Text::StepLinkDevice)}</li>
                    <li>{text(Text::StepWithPhone)}</li>
                    <li>{text(Text::StepType)}</li>
                </ol>
            </div>
            <form class="kbai-phone" novalidate=true on:submit=submit hidden=move || view_model().form.is_none()>
                <label for=id.clone()>{text(Text::PhoneLabel)}</label>
                <input
                    id=id
                    node_ref=phone
                    type="tel"
                    inputmode="tel"
                    autocomplete="tel"
                    value="+"
                    aria-describedby=format!("{hint_id} {error_id}")
                    aria-invalid=move || view_model().form.is_some_and(|f| f.error.is_some()).to_string()
                />
                <p class="kbai-hint" id=hint_id>{text(Text::PhoneHint)}</p>
                <p class="kbai-error" id=error_id role="alert">
                    {move || view_model().form.as_ref().and_then(|f| f.error.clone()).unwrap_or_default()}
                </p>
                <button class="kbai-get-code" type="submit" disabled=move || view_model().form.as_ref().is_some_and(|f| f.busy)>
                    {text(Text::GetCode)}
                </button>
                <button class="kbai-close-form" type="button" on:click=move |_| on_input.run(Input::ClosePhoneForm)>
                    {move || view_model().form.as_ref().map(|f| f.close.clone()).unwrap_or_default()}
                </button>
            </form>
            <p class="kbai-status" role="status" aria-live="polite">{move || view_model().status}</p>
            <p class="kbai-countdown">{move || view_model().countdown}</p>
            <button class="kbai-use-phone" type="button" node_ref=phone_link
                hidden=move || !view_model().offers_phone
                on:click=move |_| on_input.run(Input::OpenPhoneForm)>
                {move || text(if view_model().pairing_code.is_some() { Text::WrongNumber } else { Text::UsePhone })}
            </button>
            <button class="kbai-action" type="button" hidden=move || view_model().action.is_none()
                on:click=move |_| on_input.run(Input::Start)>
                {move || view_model().action.unwrap_or_default()}
            </button>
        </section>
    }
}

/// A prefix for element ids, unique among the widgets of a page.
fn next_id() -> String {
    thread_local!(static NEXT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    let n = NEXT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    format!("kbai-{n}")
}

/// Performs a request the machine asked for; what it answered, as an input.
async fn perform(effect: Action, start_url: &str, name: Option<String>) -> Option<Input> {
    Some(match effect {
        Action::StartSession => match start(start_url, name).await {
            Ok(session) => Input::Started { session, now: js_sys::Date::now() },
            Err(reason) => Input::StartFailed { reason },
        },
        Action::RequestCode { session_id, phone_number } => {
            let url = format!("{start_url}/{session_id}/pairing-code");
            Input::CodeAnswered(request_code(&url, &phone_number).await)
        }
        // Without a clipboard (a page not served over HTTPS), the code stays selectable.
        Action::WriteClipboard(text) => {
            let clipboard = web_sys::window()?.navigator().clipboard();
            wasm_bindgen_futures::JsFuture::from(clipboard.write_text(&text)).await.ok()?;
            Input::Copied(text)
        }
        _ => return None,
    })
}

/// `POST url` `{"phone_number"}`: taken, or why it was refused.
async fn request_code(url: &str, phone_number: &str) -> Result<(), CodeRefusal> {
    let body = wire::object(&[("phone_number", phone_number)]);
    let (status, text) = post_json(url, &body).await.ok_or(CodeRefusal::Other)?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(CodeRefusal::from_error_code(wire::error_code(&text).as_deref()))
}

/// `POST`s a JSON body on the page's origin: the answer's status and text; `None` when nothing
/// answered.
async fn post_json(url: &str, body: &JsValue) -> Option<(u16, String)> {
    let body = js_sys::JSON::stringify(body).map(String::from).unwrap_or_else(|_| "{}".into());
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = web_sys::Headers::new().ok()?;
    let _ = headers.set("content-type", "application/json");
    init.set_headers(&headers);
    let window = web_sys::window()?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .ok()?;
    let response: web_sys::Response = response.unchecked_into();
    let text = match response.text() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    };
    Some((response.status(), text.unwrap_or_default()))
}
/// `POST start_url` `{"name"?}`: the session, or why not (for `on_failed`; the widget shows its
/// own text).
async fn start(url: &str, name: Option<String>) -> Result<ConnectResponse, String> {
    let body = match &name {
        Some(name) => wire::object(&[("name", name)]),
        None => wire::object(&[]),
    };
    let Some((status, text)) = post_json(url, &body).await else {
        return Err("The pairing service could not be reached.".into());
    };
    if (200..300).contains(&status) {
        return wire::connect_response(&text).ok_or_else(|| {
            "The pairing service sent an answer this page does not understand.".into()
        });
    }
    Err(wire::error_message(&text)
        .unwrap_or_else(|| format!("The pairing service answered {status}.")))
}

/// An open `EventSource` and the listeners it calls; dropping it closes the stream.
///
/// `web_sys::EventSource` directly rather than gloo-net's stream of events: one listener here
/// does what gloo's channels and futures did, and kept 3 KB (gzipped) out of the bundle.
struct Stream {
    source: web_sys::EventSource,
    _on_event: Closure<dyn Fn(web_sys::MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Opens the stream; each event becomes an input. The browser reconnects by itself after a
/// network drop, sending `Last-Event-ID`; a stream that closes for good (the server answered
/// 404: the session is gone) is reported as lost.
fn open_stream(url: &str, stream: StoredValue<Option<Stream>, LocalStorage>, dispatch: Dispatch) {
    let send = move |input| {
        if let Some(dispatch) = dispatch.get_value() {
            dispatch(input);
        }
    };
    let Ok(source) = web_sys::EventSource::new(url) else {
        send(Input::StreamLost);
        return;
    };
    // One listener for every event name: a message's type is its event name.
    let on_event =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |message: web_sys::MessageEvent| {
            let data = message.data().as_string().unwrap_or_default();
            if let Some(event) = wire::parse_event(&message.type_(), &data) {
                send(Input::Stream(event));
            }
        });
    for name in EventName::ALL {
        let listener = on_event.as_ref().unchecked_ref();
        let _ = source.add_event_listener_with_callback(name.as_str(), listener);
    }
    // `error` also fires while the browser reconnects (CONNECTING); only CLOSED is final.
    let closed = source.clone();
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |_: web_sys::Event| {
        if closed.ready_state() == web_sys::EventSource::CLOSED {
            send(Input::StreamLost);
        }
    });
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    stream.set_value(Some(Stream { source, _on_event: on_event, _on_error: on_error }));
}

/// Paints the code dark on light (whatever the page's theme), with its quiet zone, in whole
/// device pixels per module.
fn paint(canvas: &web_sys::HtmlCanvasElement, data: &str) {
    let Ok(modules) = Modules::encode(data) else { return };
    let ratio = web_sys::window().map(|w| w.device_pixel_ratio()).unwrap_or(1.0);
    let layout = layout(QR_CSS_SIZE, ratio, modules.size);
    // Resizing clears and reallocates the canvas: only when the size changes.
    if canvas.width() != layout.canvas_px || canvas.height() != layout.canvas_px {
        canvas.set_width(layout.canvas_px);
        canvas.set_height(layout.canvas_px);
    }
    let style = web_sys::HtmlElement::style(canvas);
    // JavaScript prints the number: Rust's float formatting would add 10 KB to the bundle.
    let css_px = js_sys::Number::from(layout.css_px).to_string_with_radix(10);
    let css_px = css_px.map(String::from).unwrap_or_default() + "px";
    let _ = style.set_property("width", &css_px);
    let _ = style.set_property("height", &css_px);
    let Some(context) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let size = f64::from(layout.canvas_px);
    let module = f64::from(layout.module_px);
    context.set_fill_style_str("#ffffff");
    context.fill_rect(0.0, 0.0, size, size);
    context.set_fill_style_str("#000000");
    for (x, y, length) in modules.dark_runs() {
        context.fill_rect(x as f64 * module, y as f64 * module, length as f64 * module, module);
    }
}
