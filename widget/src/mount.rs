//! The plain JavaScript entry, for dashboards in any framework:
//!
//! ```js
//! import init, { mount } from "/keebai-widget.js";
//! await init();
//! const widget = mount(document.getElementById("whatsapp"), {
//!   startUrl: "/widget/sessions",          // optional
//!   name: "Ventas",                         // optional
//!   locale: "es",                           // optional: en, es, pt-BR built in
//!   messages: { connect: "Vincular" },      // optional: any text, by key
//!   onConnected: (channel) => { … },        // { channel_id, phone_number, push_name }
//!   onFailed: ({ code, reason }) => { … },
//!   onQr: (payload) => { … },               // each new QR, optional
//!   onPairingCode: (code) => { … },         // { code, phone_number, expires_at }, optional
//! });
//! widget.unmount();                          // closes the stream
//! ```

use keebai_protocol::{ConnectedEvent, PairingCodeEvent};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::component::QrConnect;
use crate::wire;

/// A mounted view, whatever its type. Naming the type instead (through `into_any()`) would link
/// Leptos's type-erased views, which nothing else here needs: 3 KB of the bundle, gzipped.
trait Mounted {
    /// Leaves the view on the page for good.
    fn forget(self: Box<Self>);
}

impl<S: leptos::tachys::view::Mountable + 'static> Mounted for leptos::mount::UnmountHandle<S> {
    fn forget(self: Box<Self>) {
        (*self).forget();
    }
}

/// A mounted widget; `unmount()` removes it and closes its stream.
#[wasm_bindgen]
pub struct MountedWidget {
    handle: Option<Box<dyn Mounted>>,
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

/// The string fields of an object option (`messages`), in its own order.
fn strings_option(options: &JsValue, key: &str) -> Vec<(String, String)> {
    let Ok(object) = js_sys::Reflect::get(options, &JsValue::from_str(key)) else {
        return Vec::new();
    };
    let Some(object) = object.dyn_ref::<js_sys::Object>() else { return Vec::new() };
    js_sys::Object::entries(object)
        .iter()
        .filter_map(|entry| {
            let entry: js_sys::Array = entry.dyn_into().ok()?;
            Some((entry.get(0).as_string()?, entry.get(1).as_string()?))
        })
        .collect()
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
    let on_pairing_code = function_option(&options, "onPairingCode");
    let locale = string_option(&options, "locale");
    let messages = strings_option(&options, "messages");
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
        let on_pairing_code = on_pairing_code.clone().map(|f| {
            UnsyncCallback::new(move |code: PairingCodeEvent| {
                let _ = f.call1(
                    &JsValue::NULL,
                    &wire::object(&[
                        ("code", &code.code),
                        ("phone_number", &code.phone_number),
                        ("expires_at", &code.expires_at),
                    ]),
                );
            })
        });
        view! {
            <QrConnect
                start_url=start_url.clone()
                name=name.clone()
                locale=locale.clone()
                messages=messages.clone()
                on_connected=on_connected
                on_failed=on_failed
                on_qr=on_qr
                on_pairing_code=on_pairing_code
            />
        }
    });
    MountedWidget { handle: Some(Box::new(handle)) }
}
