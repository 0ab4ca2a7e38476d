//! The phone's side of linking a device: what it signs when it scans a QR, and how it checks the
//! companion's answer (wacore `pair.rs`, `do_pair_crypto`, read from the verifier's side).
//!
//! The QR text is `ref,noise_pub,identity_pub,adv_secret,platform` (all keys base64). The phone
//! answers with `<pair-success>` holding an `ADVSignedDeviceIdentityHMAC`:
//! - `details`: an `ADVSignedDeviceIdentity` whose `details` is an `ADVDeviceIdentity`
//!   (`raw_id`, `timestamp`, `key_index`), signed by the phone's account key over
//!   `[6,0] ‖ details ‖ companion identity key`;
//! - `hmac`: HMAC-SHA256 keyed with the adv secret over that `ADVSignedDeviceIdentity`.
//!
//! The companion answers `<pair-device-sign>` with the same identity plus its own
//! `device_signature` over `[6,1] ‖ details ‖ companion identity key ‖ account key`.

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hmac::{KeyInit, Mac};
use whatsapp_rust::wacore::libsignal::protocol::{KeyPair, PublicKey};
use whatsapp_rust::waproto::buffa::Message as _;
use whatsapp_rust::waproto::whatsapp as wa;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];

/// A WhatsApp account as its phone holds it.
#[derive(Clone)]
pub struct Account {
    /// Digits only, as in a JID (`56912345678`).
    pub user: String,
    /// The account's LID user part.
    pub lid: String,
    pub push_name: String,
    /// A WhatsApp Business name, sent in `<biz name=…>` when set.
    pub business_name: Option<String>,
    /// Signs every device the account links (`account_signature_key`).
    pub account_key: KeyPair,
    /// Devices linked so far (numbers them: the first is device 7).
    pub linked: u16,
}

impl Account {
    pub fn new(phone_number: &str, push_name: &str, business_name: Option<&str>) -> Self {
        let user: String = phone_number.chars().filter(char::is_ascii_digit).collect();
        // A LID is an opaque number; derive a stable one from the phone for readable logs.
        let lid = format!("{}{}", 1000, user);
        Self {
            user,
            lid,
            push_name: push_name.to_owned(),
            business_name: business_name.map(str::to_owned),
            account_key: KeyPair::generate(&mut rand::rng()),
            linked: 0,
        }
    }
}

/// A QR code as the companion shows it.
#[derive(Debug, Clone)]
pub struct QrCode {
    pub reference: String,
    pub noise_pub: [u8; 32],
    pub identity_pub: [u8; 32],
    pub adv_secret: [u8; 32],
}

impl QrCode {
    /// Reads the text of a QR (`ref,noise,identity,adv,platform`).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = text.split(',').collect();
        ensure!(
            parts.len() >= 4,
            "a WhatsApp QR has at least four fields, this one {}",
            parts.len()
        );
        let key = |index: usize, name: &str| -> anyhow::Result<[u8; 32]> {
            BASE64_STANDARD
                .decode(parts[index])
                .with_context(|| format!("the QR's {name} is not base64"))?
                .try_into()
                .map_err(|_| anyhow::anyhow!("the QR's {name} is not 32 bytes"))
        };
        Ok(Self {
            reference: parts[0].to_owned(),
            noise_pub: key(1, "noise key")?,
            identity_pub: key(2, "identity key")?,
            adv_secret: key(3, "adv secret")?,
        })
    }
}

/// What the phone signed for one companion, kept to check the companion's answer.
pub struct Signed {
    /// The `ADVSignedDeviceIdentityHMAC` for `<device-identity>`.
    pub container: Vec<u8>,
    pub details: Vec<u8>,
}

/// Signs a companion into `account` as device `key_index` (the phone's ADV signature).
pub fn sign_companion(account: &Account, qr: &QrCode, key_index: u32) -> anyhow::Result<Signed> {
    let mut rng = rand::rng();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(rand::random::<u32>()),
        timestamp: Some(now),
        key_index: Some(key_index),
        account_type: Some(wa::ADVEncryptionType::E2EE),
        device_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let message = [&ACCOUNT_SIGNATURE_PREFIX[..], &details, &qr.identity_pub].concat();
    let account_signature = account.account_key.calculate_signature(&message, &mut rng)?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details.clone()),
        account_signature_key: Some(account.account_key.public_key.public_key_bytes().to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&qr.adv_secret)?;
    mac.update(&signed);
    let container = wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    Ok(Signed { container, details })
}

/// Checks the companion's `<pair-device-sign>` identity: same details, same account
/// signature, and a device signature by the identity key from the QR.
pub fn verify_device_sign(
    account: &Account,
    qr: &QrCode,
    signed: &Signed,
    answer: &[u8],
) -> anyhow::Result<()> {
    let identity =
        wa::ADVSignedDeviceIdentity::decode_from_slice(answer).context("decoding the answer")?;
    ensure!(identity.details.as_deref() == Some(&signed.details[..]), "the details changed");
    let account_pub = account.account_key.public_key.public_key_bytes();
    ensure!(
        identity.account_signature_key.as_deref() == Some(account_pub),
        "the account key changed"
    );
    let Some(device_signature) = identity.device_signature.as_deref() else {
        bail!("no device signature");
    };
    let message =
        [&DEVICE_SIGNATURE_PREFIX[..], &signed.details, &qr.identity_pub, account_pub].concat();
    let companion = PublicKey::from_djb_public_key_bytes(&qr.identity_pub)?;
    ensure!(
        companion.verify_signature(&message, device_signature),
        "the device signature does not verify with the QR's identity key"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::wacore::pair::{DeviceState, PairUtils};

    use super::*;

    fn companion() -> (DeviceState, QrCode) {
        let state = DeviceState {
            identity_key: KeyPair::generate(&mut rand::rng()),
            noise_key: KeyPair::generate(&mut rand::rng()),
            adv_secret_key: rand::random(),
        };
        let key = |pair: &KeyPair| BASE64_STANDARD.encode(pair.public_key.public_key_bytes());
        let text = format!(
            "2@ref,{},{},{},9",
            key(&state.noise_key),
            key(&state.identity_key),
            BASE64_STANDARD.encode(state.adv_secret_key)
        );
        let qr = QrCode::parse(&text).unwrap();
        (state, qr)
    }

    #[test]
    fn the_companion_accepts_what_the_phone_signs_and_the_phone_accepts_its_answer() {
        let (state, qr) = companion();
        let account = Account::new("+56912345678", "Lucio", None);
        let signed = sign_companion(&account, &qr, 1).unwrap();
        // whatsapp-rust's own check of a pair-success, as the companion runs it.
        let (answer, key_index) = PairUtils::do_pair_crypto(&state, &signed.container).unwrap();
        assert_eq!(key_index, 1);
        verify_device_sign(&account, &qr, &signed, &answer).unwrap();
    }

    #[test]
    fn a_code_signed_with_another_secret_is_refused_and_so_is_a_forged_answer() {
        let (state, mut qr) = companion();
        let account = Account::new("+56912345678", "Lucio", None);
        let signed = sign_companion(&account, &qr, 1).unwrap();
        let (answer, _) = PairUtils::do_pair_crypto(&state, &signed.container).unwrap();
        let other = Account::new("+56912345678", "Lucio", None);
        assert!(verify_device_sign(&other, &qr, &signed, &answer).is_err(), "another account key");

        qr.adv_secret = [0; 32];
        let forged = sign_companion(&account, &qr, 1).unwrap();
        let refused = PairUtils::do_pair_crypto(&state, &forged.container).unwrap_err();
        assert_eq!(refused.code, 401, "hmac-mismatch");
    }
}
