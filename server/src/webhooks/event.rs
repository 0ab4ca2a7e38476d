//! [`Event`]: a change worth a webhook, and the body every delivery of it carries.

use keebai_protocol::{
    ChannelEventData, FailureCode, MessageEventData, PairingFailedData, WebhookEvent,
    WebhookEventData, WebhookEventType, WebhookTestData,
};

use crate::domain::{self, ChannelId, MessageId, PhoneNumber, SessionId, WebhookId};

/// One change, as its webhook reports it. Built where the change is made, and written to the
/// outbox in the same transaction (see [`super::Outbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: WebhookEventType,
    data: WebhookEventData,
}

impl Event {
    /// A number linked: a new channel (`channel.connected`) or one the account had linked
    /// before (`channel.reconnected`).
    pub fn channel_linked(again: bool, channel: &ChannelId, phone: &PhoneNumber) -> Self {
        let kind = if again {
            WebhookEventType::ChannelReconnected
        } else {
            WebhookEventType::ChannelConnected
        };
        Self { kind, data: channel_data(channel, phone, None) }
    }

    /// A connected channel became `disconnected`, with why: a stable `code` and a `reason`
    /// for people (the channels module's `Unlinked`).
    pub fn channel_disconnected(
        channel: &ChannelId,
        phone: &PhoneNumber,
        code: &str,
        reason: &str,
    ) -> Self {
        Self {
            kind: WebhookEventType::ChannelDisconnected,
            data: channel_data(channel, phone, Some((code, reason))),
        }
    }

    /// A pairing session ended with `failed`.
    pub fn pairing_failed(session: &SessionId, code: FailureCode, reason: &str) -> Self {
        Self {
            kind: WebhookEventType::PairingFailed,
            data: WebhookEventData::Pairing(PairingFailedData {
                session_id: session.to_string(),
                code,
                reason: reason.to_owned(),
            }),
        }
    }

    /// A text's outcome. Never its text.
    pub fn message(sent: bool, message: &MessageId, channel: &ChannelId) -> Self {
        let kind =
            if sent { WebhookEventType::MessageSent } else { WebhookEventType::MessageFailed };
        Self {
            kind,
            data: WebhookEventData::Message(MessageEventData {
                message_id: message.to_string(),
                channel_id: channel.to_string(),
            }),
        }
    }

    /// `webhook.test`, for one endpoint.
    pub fn test(webhook: &WebhookId) -> Self {
        Self {
            kind: WebhookEventType::WebhookTest,
            data: WebhookEventData::Test(WebhookTestData { webhook_id: webhook.to_string() }),
        }
    }

    pub fn kind(&self) -> WebhookEventType {
        self.kind
    }

    /// The JSON body, stamped now: what is signed and sent, byte for byte, on every try.
    pub fn body(&self) -> String {
        let event = WebhookEvent {
            event_type: self.kind,
            timestamp: domain::now(),
            data: self.data.clone(),
        };
        // Serializing our own plain structs cannot fail.
        serde_json::to_string(&event).unwrap_or_default()
    }
}

fn channel_data(
    channel: &ChannelId,
    phone: &PhoneNumber,
    why: Option<(&str, &str)>,
) -> WebhookEventData {
    WebhookEventData::Channel(ChannelEventData {
        channel_id: channel.to_string(),
        phone_number: phone.to_string(),
        code: why.map(|(code, _)| code.to_owned()),
        reason: why.map(|(_, reason)| reason.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_documented_envelope() {
        let channel = ChannelId::generate();
        let phone = PhoneNumber::parse("+56912345678").unwrap();
        let event = Event::channel_disconnected(
            &channel,
            &phone,
            "removed_on_phone",
            "removed on the phone",
        );
        let body: serde_json::Value = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(body["type"], "channel.disconnected");
        assert_eq!(body["data"]["channel_id"], channel.as_str());
        assert_eq!(body["data"]["phone_number"], "+56912345678");
        assert_eq!(body["data"]["code"], "removed_on_phone");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let parsed: WebhookEvent = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.event_type, WebhookEventType::ChannelDisconnected);

        let linked = Event::channel_linked(false, &channel, &phone);
        let body: serde_json::Value = serde_json::from_str(&linked.body()).unwrap();
        assert_eq!(body["type"], "channel.connected");
        assert!(body["data"].get("code").is_none() && body["data"].get("reason").is_none());
        assert_eq!(
            Event::channel_linked(true, &channel, &phone).kind().as_str(),
            "channel.reconnected"
        );
    }
}
