//! The `QrConnect` component: renders the [`Machine`] and performs its effects (the start
//! request, the `EventSource`, the callbacks, the canvas).

use std::time::Duration;

use futures::StreamExt;
use gloo_net::eventsource::futures::EventSource;
use keebai_protocol::{ConnectResponse, ConnectedEvent};
use leptos::html::Canvas;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use crate::machine::{Effect as Action, Input, Machine};
use crate::paint::{Modules, layout};
use crate::wire;

/// The canvas's size in CSS pixels (before rounding to whole device pixels per module).
const QR_CSS_SIZE: f64 = 264.0;
/// Where inputs go: set once the component is built, read by async tasks and stream handlers.
type Dispatch = StoredValue<Option<std::rc::Rc<dyn Fn(Input)>>, LocalStorage>;

/// The User Timing measure recorded for each code painted (`performance.getEntriesByName`).
pub const PAINT_MEASURE: &str = "kbai-qr-paint";

/// The stream's event names.
const EVENTS: [&str; 5] = ["qr", "connecting", "connected", "failed", "disconnected"];

/// Links a WhatsApp number by QR code, through the widget host on the page's origin.
///
/// It holds no token: the host behind `start_url` starts the session with its own and binds it
/// to this browser with an HttpOnly cookie.
#[component]
pub fn QrConnect(
    /// Where sessions start (`POST`), on the page's origin.
    #[prop(into, default = keebai_protocol::WIDGET_SESSIONS_PATH.to_owned())]
    start_url: String,
    /// The channel's name (the server's default when absent).
    #[prop(default = None)]
    name: Option<String>,
    /// Called once with the channel when the phone is linked.
    #[prop(default = None)]
    on_connected: Option<UnsyncCallback<ConnectedEvent>>,
    /// Called with `(code, reason)` when pairing fails, expires or is lost.
    #[prop(default = None)]
    on_failed: Option<UnsyncCallback<(String, String)>>,
    /// Called with each new QR payload (for a page that mirrors the code, like the demo's
    /// simulated phone).
    #[prop(default = None)]
    on_qr: Option<UnsyncCallback<String>>,
) -> impl IntoView {
    let machine = RwSignal::new_local(Machine::default());
    let now = RwSignal::new(js_sys::Date::now());
    let source: StoredValue<Option<EventSource>, LocalStorage> = StoredValue::new_local(None);

    let clock =
        set_interval_with_handle(move || now.set(js_sys::Date::now()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(clock) = clock {
            clock.clear();
        }
        // Unmounting closes the stream.
        source.update_value(|s| {
            if let Some(s) = s.take() {
                s.close();
            }
        });
    });

    // One place applies inputs and performs what they ask for.
    let dispatch: Dispatch = StoredValue::new_local(None);
    let run = {
        let start_url = start_url.clone();
        move |input: Input| {
            let effects = machine.try_update(|m| m.apply(input)).unwrap_or_default();
            for effect in effects {
                match effect {
                    Action::StartSession => {
                        let (url, name) = (start_url.clone(), name.clone());
                        spawn_local(async move {
                            let input = match start(&url, name).await {
                                Ok(session) => Input::Started { session, now: js_sys::Date::now() },
                                Err(reason) => Input::StartFailed { reason },
                            };
                            if let Some(dispatch) = dispatch.get_value() {
                                dispatch(input);
                            }
                        });
                    }
                    Action::OpenStream(url) => open_stream(&url, source, dispatch),
                    Action::CloseStream => source.update_value(|s| {
                        if let Some(s) = s.take() {
                            s.close();
                        }
                    }),
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
    let send = move |input: Input| {
        if let Some(dispatch) = dispatch.get_value() {
            dispatch(input);
        }
    };

    view! { <QrConnectView machine=machine now=now on_action=UnsyncCallback::new(move |()| send(Input::Start)) on_qr=on_qr /> }
}

/// Renders a [`Machine`]: the QR canvas, the live status, the countdowns and the action button.
/// [`QrConnect`] drives it from the network; tests drive it directly.
#[component]
pub fn QrConnectView(
    /// The state to render.
    machine: RwSignal<Machine, LocalStorage>,
    /// The current time (ms since the epoch), ticking for the countdowns.
    #[prop(into)]
    now: Signal<f64>,
    /// "Connect WhatsApp" or "Try again" was clicked.
    on_action: UnsyncCallback<()>,
    /// Called with each new QR payload.
    #[prop(default = None)]
    on_qr: Option<UnsyncCallback<String>>,
) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    // Paint each new code.
    Effect::new(move |_| {
        let qr = machine.with(|m| m.view(0.0).qr);
        if let (Some(qr), Some(canvas)) = (qr, canvas.get()) {
            // A User Timing measure per code painted, for the page's own monitoring and for
            // the budget benchmark (click to first code, repaint time).
            let performance = web_sys::window().and_then(|w| w.performance());
            if let Some(performance) = &performance {
                let _ = performance.mark(PAINT_MEASURE);
            }
            paint(&canvas, &qr);
            if let Some(performance) = &performance {
                let _ = performance.measure_with_start_mark(PAINT_MEASURE, PAINT_MEASURE);
                performance.clear_marks_with_mark_name(PAINT_MEASURE);
            }
            if let Some(callback) = on_qr {
                callback.run(qr);
            }
        }
    });

    let view_model = move || machine.with(|m| m.view(now.get()));
    view! {
        <section class="kbai-qr-connect" data-phase=move || view_model().phase>
            <div class="kbai-qr-frame" hidden=move || view_model().qr.is_none()>
                <canvas
                    node_ref=canvas
                    role="img"
                    aria-label="QR code to link WhatsApp: scan it with the WhatsApp app on your phone"
                ></canvas>
            </div>
            <p class="kbai-status" role="status" aria-live="polite">{move || view_model().status}</p>
            <p class="kbai-countdown" hidden=move || view_model().qr.is_none()>
                {move || {
                    let v = view_model();
                    let code = v.code_seconds_left.map(|s| format!("Code refreshes in {s} s · ")).unwrap_or_default();
                    let session = v.session_seconds_left.map(|s| format!("session ends in {}:{:02}", s / 60, s % 60)).unwrap_or_default();
                    format!("{code}{session}")
                }}
            </p>
            {move || view_model().action.map(|label| view! {
                <button class="kbai-action" type="button" on:click=move |_| on_action.run(())>{label}</button>
            })}
        </section>
    }
}

/// `POST start_url` `{"name"?}`: the session, or a sentence for people.
async fn start(url: &str, name: Option<String>) -> Result<ConnectResponse, String> {
    let body = match &name {
        Some(name) => wire::object(&[("name", name)]),
        None => wire::object(&[]),
    };
    let body = js_sys::JSON::stringify(&body).map(String::from).unwrap_or_else(|_| "{}".into());
    let unreachable =
        |_| "The pairing service could not be reached. Check your connection and try again.";
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = web_sys::Headers::new().map_err(unreachable)?;
    let _ = headers.set("content-type", "application/json");
    init.set_headers(&headers);
    let window = web_sys::window().ok_or("no window")?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(unreachable)?;
    let response: web_sys::Response = response.unchecked_into();
    let text = match response.text() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    };
    let text = text.unwrap_or_default();
    if response.ok() {
        return wire::connect_response(&text).ok_or_else(|| {
            "The pairing service sent an answer this page does not understand.".to_owned()
        });
    }
    Err(wire::error_message(&text).unwrap_or_else(|| {
        format!("The pairing service answered {}. Try again.", response.status())
    }))
}

/// Opens the stream; each event becomes an input. The browser reconnects by itself after a
/// network drop, sending `Last-Event-ID`; a stream that closes for good (the server answered
/// 404: the session is gone) is reported as lost.
fn open_stream(
    url: &str,
    source: StoredValue<Option<EventSource>, LocalStorage>,
    dispatch: Dispatch,
) {
    let mut es = match EventSource::new(url) {
        Ok(es) => es,
        Err(_) => {
            if let Some(dispatch) = dispatch.get_value() {
                dispatch(Input::StreamLost);
            }
            return;
        }
    };
    // One task per event name: closing the source (on a terminal event or on unmount) fires
    // `error` on every subscription, which ends each task.
    for name in EVENTS {
        let Ok(mut events) = es.subscribe(name) else { continue };
        spawn_local(async move {
            while let Some(item) = events.next().await {
                let input = match item {
                    Ok((name, message)) => {
                        let data = message.data().as_string().unwrap_or_default();
                        match wire::parse_event(&name, &data) {
                            Some(event) => Input::Stream(event),
                            None => continue,
                        }
                    }
                    // Also fired by our own `close()`; the machine ignores it once the session
                    // ended.
                    Err(_) => Input::StreamLost,
                };
                let lost = input == Input::StreamLost;
                if let Some(dispatch) = dispatch.get_value() {
                    dispatch(input);
                }
                if lost {
                    break;
                }
            }
        });
    }
    source.set_value(Some(es));
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
