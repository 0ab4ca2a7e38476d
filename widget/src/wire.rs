//! Reading the server's JSON in the browser.
//!
//! The browser's `JSON.parse` does the parsing; this module reads the few fields the widget
//! needs from the parsed objects. It does not go through serde (`serde_json` or
//! `serde-wasm-bindgen`) on purpose: serde's error path prints floats
//! (`Unexpected::Float`), which links Rust's float formatting into the bundle. Measured with
//! `trunk build --release`: serde here cost 24 KB of the 90 KB gzipped budget. The browser
//! tests check that every event the server writes (`StreamEvent::data_json`) reads back equal.

use keebai_protocol::{
    ConnectResponse, ConnectedEvent, DisconnectCode, DisconnectedEvent, EventName, FailedEvent,
    FailureCode, PairingCodeEvent, QrEvent, StreamEvent,
};
use wasm_bindgen::JsValue;

fn get(object: &JsValue, key: &str) -> Option<JsValue> {
    if !object.is_object() {
        return None;
    }
    js_sys::Reflect::get(object, &JsValue::from_str(key)).ok()
}

fn string(object: &JsValue, key: &str) -> Option<String> {
    get(object, key)?.as_string()
}

/// An SSE message's event from its `event:` and `data:` fields; `None` when the data does not
/// fit the event (the widget ignores such a message, as it ignores unknown events).
pub fn parse_event(name: &str, data: &str) -> Option<StreamEvent> {
    let name = EventName::parse(name)?;
    let data = js_sys::JSON::parse(data).ok()?;
    Some(match name {
        // `qr` data is `{"data", "expires_at"}` or, from older servers, the bare string.
        EventName::Qr => StreamEvent::Qr(match data.as_string() {
            Some(bare) => QrEvent { data: bare, expires_at: None },
            None => {
                QrEvent { data: string(&data, "data")?, expires_at: string(&data, "expires_at") }
            }
        }),
        EventName::PairingCode => StreamEvent::PairingCode(PairingCodeEvent {
            code: string(&data, "code")?,
            phone_number: string(&data, "phone_number")?,
            expires_at: string(&data, "expires_at")?,
        }),
        EventName::Connecting => StreamEvent::Connecting,
        EventName::Connected => StreamEvent::Connected(ConnectedEvent {
            channel_id: string(&data, "channel_id")?,
            phone_number: string(&data, "phone_number")?,
            push_name: string(&data, "push_name").unwrap_or_default(),
        }),
        EventName::Failed => StreamEvent::Failed(FailedEvent {
            code: FailureCode::from_wire(&string(&data, "code")?),
            reason: string(&data, "reason")?,
        }),
        EventName::Disconnected => StreamEvent::Disconnected(DisconnectedEvent {
            code: DisconnectCode::from_wire(&string(&data, "code")?),
            reason: string(&data, "reason")?,
        }),
    })
}

/// The connect answer, from its JSON text.
pub fn connect_response(json: &str) -> Option<ConnectResponse> {
    let json = js_sys::JSON::parse(json).ok()?;
    let expires_in = get(&json, "expires_in")?.as_f64()?;
    Some(ConnectResponse {
        session_id: string(&json, "session_id")?,
        stream_url: string(&json, "stream_url")?,
        expires_in: (expires_in >= 0.0).then_some(expires_in as u64)?,
    })
}

fn error_field(json: &str, field: &str) -> Option<String> {
    let json = js_sys::JSON::parse(json).ok()?;
    string(&get(&json, "error")?, field)
}

/// `error.message` of an error answer's JSON text.
pub fn error_message(json: &str) -> Option<String> {
    error_field(json, "message")
}

/// `error.code` of an error answer's JSON text.
pub fn error_code(json: &str) -> Option<String> {
    error_field(json, "code")
}

/// A plain object of string fields, for JavaScript callbacks and request bodies.
pub fn object(fields: &[(&str, &str)]) -> JsValue {
    let object = js_sys::Object::new();
    for (key, value) in fields {
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), &JsValue::from_str(value));
    }
    object.into()
}
