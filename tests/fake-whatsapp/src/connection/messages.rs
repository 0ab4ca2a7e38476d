//! Messages both ways: the companion's texts to contacts (decrypted, recorded, acked) and the
//! phone's app-state key share to its new companion (a Signal `pkmsg` from device 0).

use anyhow::Context;
use whatsapp_rust::wacore::libsignal::protocol::ProtocolAddress;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Jid, Node};
use whatsapp_rust::waproto::buffa::{Message as _, MessageField};
use whatsapp_rust::waproto::whatsapp as wa;

use super::{Conn, attr, bytes, children, now, user_of};
use crate::{ReceivedText, lock};

impl Conn {
    /// A text from the companion: decrypt the copy of every contact, record it, ack.
    pub(super) async fn message(&mut self, node: Node) -> anyhow::Result<()> {
        let Some((user, device)) = self.login.clone() else { return Ok(()) };
        let id = attr(&node, "id").unwrap_or_default();
        let to = attr(&node, "to").unwrap_or_default();
        let sender = ProtocolAddress::new(&format!("{user}:{device}@c.us"), 0.into());
        let copies = node.get_optional_child("participants").map(children).unwrap_or_default();
        for copy in copies {
            let Some(jid) = attr(copy, "jid") else { continue };
            let (digits, _) = user_of(&jid);
            let Some(enc) = copy.get_optional_child("enc") else { continue };
            let kind = attr(enc, "type").unwrap_or_default();
            let party = {
                let state = lock(&self.shared.state);
                if digits == user { None } else { state.contacts.get(&digits).cloned() }
            };
            // The copy for the account's own phone is a DeviceSentMessage; only contacts count.
            let Some(party) = party else { continue };
            let decrypted =
                party.lock().await.decrypt(&sender, &kind, bytes(enc).unwrap_or_default()).await;
            match decrypted {
                Ok(message) => {
                    let text = message.conversation.clone().unwrap_or_default();
                    lock(&self.shared.state).texts.push(ReceivedText {
                        from: format!("{user}:{device}"),
                        to: jid.clone(),
                        text,
                    });
                    self.shared.changed.notify_waiters();
                }
                Err(error) => {
                    tracing::warn!(%jid, error = %format!("{error:#}"), "the fake contact cannot decrypt")
                }
            }
        }
        let ack = NodeBuilder::new("ack")
            .attr("class", "message")
            .attr("id", id)
            .attr("from", to)
            .attr("t", now().to_string())
            .build();
        self.send(ack).await
    }

    /// The phone (device 0) shares an app-state key with its new companion, Signal-encrypted.
    pub(super) async fn app_state_key_share(
        &mut self,
        user: &str,
        device: u16,
    ) -> anyhow::Result<Node> {
        let (phone, bundle) = {
            let state = lock(&self.shared.state);
            let phone = state.phones.get(user).cloned().context("no phone for this account")?;
            let companion =
                state.devices.get(&(user.to_owned(), device)).context("no such companion")?;
            (phone, companion.bundle(device)?)
        };
        let key = wa::message::AppStateSyncKey {
            key_id: MessageField::some(wa::message::AppStateSyncKeyId {
                key_id: Some(rand::random::<[u8; 6]>().to_vec()),
            }),
            key_data: MessageField::some(wa::message::AppStateSyncKeyData {
                key_data: Some(rand::random::<[u8; 32]>().to_vec()),
                fingerprint: MessageField::some(wa::message::AppStateSyncKeyFingerprint {
                    raw_id: Some(1),
                    current_index: Some(0),
                    device_indexes: vec![0],
                }),
                timestamp: Some(now() as i64 * 1000),
            }),
        };
        let message = wa::Message {
            protocol_message: MessageField::some(wa::message::ProtocolMessage {
                r#type: Some(wa::message::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
                app_state_sync_key_share: MessageField::some(wa::message::AppStateSyncKeyShare {
                    keys: vec![key],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut plaintext = message.encode_to_vec();
        let pad = 1 + rand::random::<u8>() % 16;
        plaintext.extend(std::iter::repeat_n(pad, usize::from(pad)));
        let companion = ProtocolAddress::new(&format!("{user}:{device}@c.us"), 0.into());
        let (kind, ciphertext) =
            phone.lock().await.encrypt(&companion, &bundle, &plaintext).await?;
        let id = format!("3EB0{:018X}", rand::random::<u64>() as u128 * 1000);
        let enc =
            NodeBuilder::new("enc").attr("v", "2").attr("type", kind).bytes(ciphertext).build();
        Ok(NodeBuilder::new("message")
            .attr("from", Jid::pn(user.to_owned()))
            .attr("id", id)
            .attr("t", now().to_string())
            .attr("type", "text")
            .attr("category", "peer")
            .children([enc])
            .build())
    }
}
