//! The plain JavaScript entry, for dashboards in any framework:
//!
//! ```js
//! import init, { mount } from "/keebai-widget.js";
//! await init();
//! const widget = mount(document.getElementById("whatsapp"), {
//!   startUrl: "/widget/sessions",          // optional
//!   name: "Ventas",                         // optional
//!   onConnected: (channel) => { … },        // { channel_id, phone_number, push_name }
//!   onFailed: ({ code, reason }) => { … },
//!   onQr: (payload) => { … },               // each new code, optional
//! });
//! widget.unmount();                          // closes the stream
//! ```

use keebai_protocol::ConnectedEvent;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::component::QrConnect;
use crate::wire;

/// A mounted widget; `unmount()` removes it and closes its stream.
#[wasm_bindgen]
pub struct MountedWidget {
    handle: Option<leptos::mount::UnmountHandle<leptos::tachys::view::any_view::AnyViewState>>,
}

#[wasm_bindgen]
impl MountedWidget {
    /// Removes the widget and closes its stream.
    pub fn unmount(&mut self) {
        self.handle.take();
    }
}

/// JavaScript garbage-collects a handle the page did not keep; that must not remove the widget.
/// Only `unmount()` does.
impl Drop for MountedWidget {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.forget();
        }
    }
}

fn string_option(options: &JsValue, key: &str) -> Option<String> {
    js_sys::Reflect::get(options, &JsValue::from_str(key)).ok().and_then(|v| v.as_string())
}

fn function_option(options: &JsValue, key: &str) -> Option<js_sys::Function> {
    js_sys::Reflect::get(options, &JsValue::from_str(key)).ok().and_then(|v| v.dyn_into().ok())
}

/// Mounts the widget into `element`.
#[wasm_bindgen]
pub fn mount(element: web_sys::HtmlElement, options: JsValue) -> MountedWidget {
    let start_url = string_option(&options, "startUrl")
        .unwrap_or_else(|| keebai_protocol::WIDGET_SESSIONS_PATH.into());
    let name = string_option(&options, "name");
    let on_connected = function_option(&options, "onConnected");
    let on_failed = function_option(&options, "onFailed");
    let on_qr = function_option(&options, "onQr");
    let handle = leptos::mount::mount_to(element, move || {
        let on_connected = on_connected.clone().map(|f| {
            UnsyncCallback::new(move |channel: ConnectedEvent| {
                let _ = f.call1(
                    &JsValue::NULL,
                    &wire::object(&[
                        ("channel_id", &channel.channel_id),
                        ("phone_number", &channel.phone_number),
                        ("push_name", &channel.push_name),
                    ]),
                );
            })
        });
        let on_failed = on_failed.clone().map(|f| {
            UnsyncCallback::new(move |(code, reason): (String, String)| {
                let _ =
                    f.call1(&JsValue::NULL, &wire::object(&[("code", &code), ("reason", &reason)]));
            })
        });
        let on_qr = on_qr.clone().map(|f| {
            UnsyncCallback::new(move |qr: String| {
                let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&qr));
            })
        });
        view! { <QrConnect on_qr=on_qr start_url=start_url.clone() name=name.clone() on_connected=on_connected on_failed=on_failed /> }
            .into_any()
    });
    MountedWidget { handle: Some(handle) }
}
