//! What the fake answers to the client's IQs, and why (whatsapp-rust 0.7.0 waits on each):
//! - `passive` (`<active/>`): a result, then `<ib><offline count="0"/></ib>`, which sends wait
//!   for;
//! - `w:sync:app:state`: every requested collection echoed, empty, at version 0 (an error or an
//!   omitted collection means no `Connected` for 180 s);
//! - `encrypt`: prekey uploads stored, prekey bundles served, `<digest/>` answered 501 (404
//!   would make the client re-upload in a loop);
//! - `usync`: devices of contacts (device 0) and of the account (0 and its companions, with a
//!   key-index list); no LIDs for contacts, so sends stay on phone-number addressing;
//! - `md` `link_code_companion_reg`: the pairing-code flow (`link_code.rs`);
//! - `abt`, `blocklist`, `privacy`, `w:p`: empty results; any other IQ: error 501 (an
//!   unanswered IQ makes the client reconnect within about 20–50 s).

use std::sync::Arc;

use whatsapp_rust::wacore::libsignal::protocol::PublicKey;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Jid, Node};
use whatsapp_rust::waproto::buffa::Message as _;
use whatsapp_rust::waproto::whatsapp as wa;

use super::{Conn, attr, bytes, children, error, now, result, user_of};
use crate::lock;
use crate::signal::{Party, SharedParty};

impl Conn {
    pub(super) async fn iq(&mut self, node: Node) -> anyhow::Result<()> {
        let id = attr(&node, "id").unwrap_or_default();
        match attr(&node, "type").as_deref() {
            Some("result") | Some("error") => {
                if self.pairing.as_ref().is_some_and(|p| p.iq_id == id) {
                    self.pair_device_sign(&node).await?;
                }
                return Ok(());
            }
            _ => {}
        }
        let xmlns = attr(&node, "xmlns").unwrap_or_default();
        let first = children(&node).first().map(|c| c.tag.to_string()).unwrap_or_default();
        let answer = match (xmlns.as_str(), first.as_str()) {
            ("passive", _) => {
                self.send(result(&id, vec![])).await?;
                // WhatsApp ends the offline backlog (none here) after the active IQ; sends
                // wait for this marker.
                let offline = NodeBuilder::new("offline").attr("count", "0").build();
                self.send(NodeBuilder::new("ib").children([offline]).build()).await?;
                return Ok(());
            }
            ("encrypt", "digest") => error(&id, 501),
            ("encrypt", "key") => self.prekey_bundles(&id, &node).await?,
            ("encrypt", "count") => {
                result(&id, vec![NodeBuilder::new("count").attr("value", "812").build()])
            }
            ("encrypt", _) => {
                self.store_prekeys(&node);
                result(&id, vec![])
            }
            ("usync", _) => self.usync(&id, &node),
            ("w:sync:app:state", _) => {
                let collections = node
                    .get_optional_child("sync")
                    .map(children)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| attr(c, "name"))
                    .map(|name| {
                        NodeBuilder::new("collection")
                            .attr("name", name)
                            .attr("version", "0")
                            .build()
                    })
                    .collect::<Vec<_>>();
                result(&id, vec![NodeBuilder::new("sync").children(collections).build()])
            }
            ("md", "link_code_companion_reg") => return self.link_code_iq(&id, &node).await,
            ("abt", _) => {
                result(&id, vec![NodeBuilder::new("props").attr("protocol", "1").build()])
            }
            ("privacy", "privacy") => result(&id, vec![NodeBuilder::new("privacy").build()]),
            ("blocklist" | "privacy" | "w:p" | "urn:xmpp:ping" | "md", _) => result(&id, vec![]),
            _ => error(&id, 501),
        };
        self.send(answer).await
    }

    /// The companion's prekey upload: kept so the phone can open a session to it.
    fn store_prekeys(&mut self, node: &Node) {
        let Some((user, device)) = self.login.clone() else { return };
        let Some(list) = node.get_optional_child("list") else { return };
        let prekeys: Vec<(u32, PublicKey)> = children(list)
            .iter()
            .filter_map(|key| {
                let id = key.get_optional_child("id").and_then(bytes)?;
                let value = key.get_optional_child("value").and_then(bytes)?;
                let id = id.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b));
                let value = PublicKey::from_djb_public_key_bytes(value).ok()?;
                Some((id, value))
            })
            .collect();
        if let Some(companion) = lock(&self.shared.state).devices.get_mut(&(user, device)) {
            companion.prekeys = prekeys;
        }
    }

    /// `usync`: a contact has one device (0); the account has its phone (0) and its companions.
    fn usync(&mut self, id: &str, node: &Node) -> Node {
        let usync = node.get_optional_child("usync");
        let wants_devices = usync
            .and_then(|u| u.get_optional_child("query"))
            .is_some_and(|q| q.get_optional_child("devices").is_some());
        let users =
            usync.and_then(|u| u.get_optional_child("list")).map(children).unwrap_or_default();
        let state = lock(&self.shared.state);
        let own = self.login.as_ref().map(|(user, _)| user.clone()).unwrap_or_default();
        let own_lid = state.accounts.get(&own).map(|a| a.lid.clone()).unwrap_or_default();
        let answered = users
            .iter()
            .filter_map(|user| {
                let jid = attr(user, "jid")?;
                let (digits, _) = user_of(&jid);
                let entry = NodeBuilder::new("user").attr("jid", jid.clone());
                if !wants_devices {
                    return Some(entry.build());
                }
                let is_own = digits == own || (!own_lid.is_empty() && digits == own_lid);
                let mut devices = vec![NodeBuilder::new("device").attr("id", "0").build()];
                let mut lists = Vec::new();
                if is_own {
                    let mut indexes = Vec::new();
                    for ((u, device), _) in state.devices.iter() {
                        if *u == own {
                            let key_index = u32::from(*device) - 6;
                            indexes.push(key_index);
                            devices.push(
                                NodeBuilder::new("device")
                                    .attr("id", device.to_string())
                                    .attr("key-index", key_index.to_string())
                                    .build(),
                            );
                        }
                    }
                    lists.push(key_index_list(&indexes));
                }
                let mut content = vec![NodeBuilder::new("device-list").children(devices).build()];
                content.extend(lists);
                Some(
                    entry.children([NodeBuilder::new("devices").children(content).build()]).build(),
                )
            })
            .collect::<Vec<_>>();
        result(
            id,
            vec![
                NodeBuilder::new("usync")
                    .children([NodeBuilder::new("list").children(answered).build()])
                    .build(),
            ],
        )
    }

    /// Prekey bundles: the account's phone for the account's own JIDs, a contact for any other.
    async fn prekey_bundles(&mut self, id: &str, node: &Node) -> anyhow::Result<Node> {
        let own = self.login.as_ref().map(|(user, _)| user.clone()).unwrap_or_default();
        let requested: Vec<String> = node
            .get_optional_child("key")
            .map(children)
            .unwrap_or_default()
            .iter()
            .filter_map(|user| attr(user, "jid"))
            .collect();
        let mut users = Vec::new();
        for jid in requested {
            let (digits, device) = user_of(&jid);
            let party = {
                let mut state = lock(&self.shared.state);
                let own_lid = state.accounts.get(&own).map(|a| a.lid.clone()).unwrap_or_default();
                if digits == own || digits == own_lid {
                    if device != 0 {
                        continue;
                    }
                    state.phones.get(&own).cloned()
                } else {
                    Some(state.contacts.entry(digits.clone()).or_insert_with(new_party).clone())
                }
            };
            let Some(party) = party else { continue };
            let parsed: Jid = jid.parse().map_err(|e| anyhow::anyhow!("{jid}: {e:?}"))?;
            users.push(party.lock().await.bundle_node(parsed)?);
        }
        Ok(result(id, vec![NodeBuilder::new("list").children(users).build()]))
    }
}

fn new_party() -> SharedParty {
    Arc::new(tokio::sync::Mutex::new(Party::new()))
}

/// An `ADVSignedKeyIndexList` listing the companions' key indexes (the client decodes only the
/// details; its signature is not checked by whatsapp-rust 0.7.0).
fn key_index_list(indexes: &[u32]) -> Node {
    let details = wa::ADVKeyIndexList {
        raw_id: Some(1),
        timestamp: Some(now()),
        current_index: indexes.iter().copied().max(),
        valid_indexes: indexes.to_vec(),
        ..Default::default()
    };
    let signed =
        wa::ADVSignedKeyIndexList { details: Some(details.encode_to_vec()), ..Default::default() };
    NodeBuilder::new("key-index-list")
        .attr("ts", now().to_string())
        .bytes(signed.encode_to_vec())
        .build()
}
