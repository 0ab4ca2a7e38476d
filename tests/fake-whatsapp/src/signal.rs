//! Signal parties the fake plays, with in-memory stores (wacore-libsignal ships only the
//! traits): a contact that receives texts, and the phone's own device (device 0), which shares
//! the app-state keys with a new companion.
//!
//! Bundles go on the wire as `<user jid><registration/><type/><identity/><skey/><key/></user>`
//! (wacore `iq/prekeys.rs`, `PreKeyBundleUserNode`). The companion's plaintexts are a
//! `wa::Message` padded with N bytes of value N (`wacore::messages::decode_plaintext`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::iq::prekeys::PreKeyBundleUserNode;
use whatsapp_rust::wacore::libsignal::protocol::{
    CiphertextMessage, Direction, GenericSignedPreKey as _, IdentityChange, IdentityKey,
    IdentityKeyPair, IdentityKeyStore, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord,
    PreKeySignalMessage, PreKeyStore, ProtocolAddress, PublicKey, SessionRecord, SessionStore,
    SignalMessage, SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore,
    Timestamp, UsePQRatchet, message_decrypt, message_encrypt, process_prekey_bundle,
};
use whatsapp_rust::wacore::protocol::ProtocolNode as _;
use whatsapp_rust::wacore_binary::{Jid, Node};
use whatsapp_rust::waproto::whatsapp as wa;

type Result<T> = std::result::Result<T, SignalProtocolError>;

/// The registration keys a new companion sent in its ClientPayload, plus the one-time prekeys
/// it uploaded after logging in: what another party needs to open a session to it.
#[derive(Clone)]
pub struct Companion {
    pub noise_pub: [u8; 32],
    pub registration_id: u32,
    pub identity: IdentityKey,
    pub signed_prekey: (u32, PublicKey, Vec<u8>),
    pub prekeys: Vec<(u32, PublicKey)>,
    /// The companion's `ADVSignedDeviceIdentity`, as the phone signed it.
    pub adv_identity: Vec<u8>,
    /// Whether it has logged in since it was linked (the phone greets it once).
    pub logged_in: bool,
    /// Nodes for it that it has not acknowledged yet, delivered again at each login.
    pub offline: Vec<Node>,
}

impl Companion {
    /// Reads `device_pairing_data` (all keys raw; ids big-endian).
    pub fn from_registration(
        noise_pub: [u8; 32],
        data: &wa::client_payload::DevicePairingRegistrationData,
    ) -> anyhow::Result<Self> {
        let be = |bytes: &Option<Vec<u8>>, name: &str| -> anyhow::Result<u32> {
            let bytes = bytes.as_deref().with_context(|| format!("no {name}"))?;
            anyhow::ensure!(bytes.len() <= 4, "{name} is longer than 4 bytes");
            Ok(bytes.iter().fold(0, |n, b| (n << 8) | u32::from(*b)))
        };
        let key = |bytes: &Option<Vec<u8>>, name: &str| -> anyhow::Result<PublicKey> {
            PublicKey::from_djb_public_key_bytes(
                bytes.as_deref().with_context(|| format!("no {name}"))?,
            )
            .with_context(|| format!("{name} is not a Curve25519 key"))
        };
        Ok(Self {
            noise_pub,
            registration_id: be(&data.e_regid, "registration id")?,
            identity: IdentityKey::new(key(&data.e_ident, "identity key")?),
            signed_prekey: (
                be(&data.e_skey_id, "signed prekey id")?,
                key(&data.e_skey_val, "signed prekey")?,
                data.e_skey_sig.clone().context("no signed prekey signature")?,
            ),
            prekeys: Vec::new(),
            adv_identity: Vec::new(),
            logged_in: false,
            offline: Vec::new(),
        })
    }

    /// A bundle for opening a session to the companion (`device` is its device number).
    pub fn bundle(&self, device: u16) -> anyhow::Result<PreKeyBundle> {
        let prekey = self.prekeys.first().map(|(id, key)| ((*id).into(), *key));
        let (id, key, signature) = &self.signed_prekey;
        Ok(PreKeyBundle::new(
            self.registration_id,
            u32::from(device).into(),
            prekey,
            (*id).into(),
            *key,
            signature.clone(),
            self.identity,
        )?)
    }
}

/// One party's keys and sessions.
pub struct Party {
    identity: Identities,
    prekeys: PreKeys,
    signed_prekeys: SignedPreKeys,
    sessions: Sessions,
    bundle_keys: (KeyPair, KeyPair, Vec<u8>),
}

impl Party {
    pub fn new() -> Self {
        let mut rng = rand::rng();
        let pair = IdentityKeyPair::generate(&mut rng);
        let registration_id = rand::random::<u32>() & 0x3FFF;
        let signed = KeyPair::generate(&mut rng);
        let signature = pair
            .private_key()
            .calculate_signature(&signed.public_key.serialize(), &mut rng)
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let one_time = KeyPair::generate(&mut rng);
        let mut prekeys = PreKeys::default();
        prekeys.0.insert(1.into(), PreKeyRecord::new(1.into(), &one_time));
        let mut signed_prekeys = SignedPreKeys::default();
        signed_prekeys.0.insert(
            1.into(),
            SignedPreKeyRecord::new(1.into(), Timestamp::from_epoch_millis(0), &signed, &signature),
        );
        Self {
            identity: Identities { pair, registration_id, known: HashMap::new() },
            prekeys,
            signed_prekeys,
            sessions: Sessions::default(),
            bundle_keys: (signed, one_time, signature),
        }
    }

    /// This party's prekey bundle, as a `<user jid=…>` node of an `encrypt` answer.
    pub fn bundle_node(&self, jid: Jid) -> anyhow::Result<Node> {
        let (signed, one_time, signature) = &self.bundle_keys;
        let bundle = PreKeyBundle::new(
            self.identity.registration_id,
            u32::from(jid.device).into(),
            Some((1.into(), one_time.public_key)),
            1.into(),
            signed.public_key,
            signature.clone(),
            *self.identity.pair.identity_key(),
        )?;
        Ok(PreKeyBundleUserNode::from_bundle(jid, &bundle, None)?.into_node())
    }

    /// Decrypts an `<enc type="pkmsg"|"msg">` from `sender` into the message it carries.
    pub async fn decrypt(
        &mut self,
        sender: &ProtocolAddress,
        kind: &str,
        bytes: &[u8],
    ) -> anyhow::Result<wa::Message> {
        let ciphertext = match kind {
            "pkmsg" => {
                CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(bytes)?)
            }
            "msg" => CiphertextMessage::SignalMessage(SignalMessage::try_from(bytes)?),
            other => bail!("an <enc> of type {other}"),
        };
        let decrypted = message_decrypt(
            &ciphertext,
            sender,
            &mut self.sessions,
            &mut self.identity,
            &mut self.prekeys,
            &self.signed_prekeys,
            &mut rand::make_rng::<rand::rngs::StdRng>(),
            UsePQRatchet::No,
        )
        .await?;
        whatsapp_rust::wacore::messages::decode_plaintext(&decrypted.plaintext, 2)
            .context("decoding the decrypted message")
    }

    /// Encrypts `plaintext` to `remote`, opening a session from `bundle` first if none exists.
    /// Returns the `<enc type>` and its bytes.
    pub async fn encrypt(
        &mut self,
        remote: &ProtocolAddress,
        bundle: &PreKeyBundle,
        plaintext: &[u8],
    ) -> anyhow::Result<(&'static str, Vec<u8>)> {
        if !self.sessions.0.contains_key(remote) {
            process_prekey_bundle(
                remote,
                &mut self.sessions,
                &mut self.identity,
                bundle,
                &mut rand::make_rng::<rand::rngs::StdRng>(),
                UsePQRatchet::No,
            )
            .await?;
        }
        let message =
            message_encrypt(plaintext, remote, &mut self.sessions, &mut self.identity).await?;
        let kind = match message {
            CiphertextMessage::PreKeySignalMessage(_) => "pkmsg",
            _ => "msg",
        };
        Ok((kind, message.serialize().to_vec()))
    }
}

/// Shared so that the connection tasks can use a party without holding the state's lock.
pub type SharedParty = Arc<tokio::sync::Mutex<Party>>;

struct Identities {
    pair: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<ProtocolAddress, IdentityKey>,
}

#[async_trait]
impl IdentityKeyStore for Identities {
    async fn get_identity_key_pair(&self) -> Result<IdentityKeyPair> {
        Ok(self.pair.clone())
    }
    async fn get_local_registration_id(&self) -> Result<u32> {
        Ok(self.registration_id)
    }
    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> Result<IdentityChange> {
        let changed =
            self.known.insert(address.clone(), *identity).is_some_and(|old| old != *identity);
        Ok(IdentityChange::from_changed(changed))
    }
    async fn is_trusted_identity(
        &self,
        _: &ProtocolAddress,
        _: &IdentityKey,
        _: Direction,
    ) -> Result<bool> {
        Ok(true)
    }
    async fn get_identity(&self, address: &ProtocolAddress) -> Result<Option<IdentityKey>> {
        Ok(self.known.get(address).copied())
    }
}

#[derive(Default)]
struct PreKeys(HashMap<PreKeyId, PreKeyRecord>);

#[async_trait]
impl PreKeyStore for PreKeys {
    async fn get_pre_key(&self, id: PreKeyId) -> Result<PreKeyRecord> {
        self.0.get(&id).cloned().ok_or(SignalProtocolError::InvalidPreKeyId)
    }
    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> Result<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }
    // Kept: the companion repeats `pkmsg` with the same prekey until we answer, which we never do.
    async fn remove_pre_key(&mut self, _: PreKeyId) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct SignedPreKeys(HashMap<SignedPreKeyId, SignedPreKeyRecord>);

#[async_trait]
impl SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> Result<SignedPreKeyRecord> {
        self.0.get(&id).cloned().ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }
    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> Result<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }
}

#[derive(Default)]
struct Sessions(HashMap<ProtocolAddress, SessionRecord>);

#[async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> Result<Option<SessionRecord>> {
        Ok(self.0.get(address).cloned())
    }
    async fn has_session(&self, address: &ProtocolAddress) -> Result<bool> {
        Ok(self.0.contains_key(address))
    }
    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: SessionRecord,
    ) -> Result<()> {
        self.0.insert(address.clone(), record);
        Ok(())
    }
}
