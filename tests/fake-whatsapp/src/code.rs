//! The phone's side of "link with phone number": what it does with the code the person types.
//!
//! WhatsApp never learns the code. The companion's `companion_hello` carries its ephemeral key
//! wrapped with it (`salt(32) ‖ iv(16) ‖ AES-256-CTR(PBKDF2-SHA256(code, salt, 2^17), iv)`,
//! wacore-0.7.0 `src/pair_code.rs:361-394`); the phone unwraps it with the code typed, wraps its
//! own ephemeral key the same way for `primary_hello` (`:396-435`), and learns whether the code
//! was right only when it tries to open the companion's `companion_finish` key bundle
//! (AES-256-GCM under a key from the ephemeral agreement, `:539-619`): CTR decrypts a wrong code
//! into a wrong key without complaint (whatsapp-rust-0.7.0 `src/pair_code.rs:949-956`).
//!
//! The same wacore helpers the companion uses do the wrapping here: the format is symmetric, so
//! a bug in them shared by both directions would go unseen (see the crate's limits).

use anyhow::{Context, bail, ensure};
use whatsapp_rust::wacore::crypto::hkdf_sha256_into;
use whatsapp_rust::wacore::libsignal::crypto::aes_256_gcm_decrypt;
use whatsapp_rust::wacore::libsignal::protocol::{KeyPair, PublicKey};
use whatsapp_rust::wacore::pair_code::PairCodeUtils;

use crate::phone::Account;

/// `link_code_pairing_wrapped_*_ephemeral_pub`: salt(32) ‖ iv(16) ‖ key(32)
/// (wacore-0.7.0 `src/pair_code.rs:371-394`).
pub const WRAPPED_KEY_LEN: usize = 80;

/// `link_code_pairing_wrapped_key_bundle`: salt(32) ‖ iv(12) ‖ GCM(96-byte bundle) ‖ tag(16)
/// (wacore-0.7.0 `src/pair_code.rs:609-616`).
const WRAPPED_BUNDLE_LEN: usize = 32 + 12 + 96 + 16;

/// Codes typed per `companion_hello` before the code is dead: the companion handles at most
/// three `primary_hello` per code (WA Web's `MaxPrimaryHelloError`; wacore-0.7.0
/// `src/pair_code.rs:86-88`, enforced at whatsapp-rust-0.7.0 `src/pair_code.rs:713-722`).
pub const MAX_ATTEMPTS: u32 = 3;

/// How long a code is valid after `companion_hello` (wacore-0.7.0 `src/pair_code.rs:83-84`;
/// the companion ignores a later `primary_hello`, whatsapp-rust-0.7.0 `src/pair_code.rs:705-712`).
pub const VALIDITY: std::time::Duration = std::time::Duration::from_secs(180);

/// The code as the phone's keypad reads it: WhatsApp shows it as `XXXX-XXXX` and accepts either
/// case (the companion upper-cases its own, whatsapp-rust-0.7.0 `src/pair_code.rs:299-307`;
/// wacore-0.7.0 `src/pair_code.rs:333-338`). `None` when it cannot be a code at all.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>();
    let code = code.to_ascii_uppercase();
    PairCodeUtils::validate_code(&code).then_some(code)
}

/// What the phone sends in `primary_hello`, and keeps to open the answer.
pub struct PrimaryHello {
    pub ephemeral: KeyPair,
    /// The companion's ephemeral key as unwrapped with the typed code: garbage for a wrong code.
    pub companion_ephemeral: [u8; 32],
    /// The phone's ephemeral key, wrapped with the typed code.
    pub wrapped: [u8; WRAPPED_KEY_LEN],
}

/// The phone's half of `primary_hello` for `code` (two PBKDF2 runs: call off the runtime).
pub fn primary_hello(code: &str, wrapped_companion: &[u8; WRAPPED_KEY_LEN]) -> PrimaryHello {
    let ephemeral = KeyPair::generate(&mut rand::rng());
    let companion_ephemeral = PairCodeUtils::decrypt_primary_ephemeral_pub(wrapped_companion, code)
        .unwrap_or_else(|_| unreachable!("the wrapped key is {WRAPPED_KEY_LEN} bytes by type"));
    let public: [u8; 32] = ephemeral
        .public_key
        .public_key_bytes()
        .try_into()
        .unwrap_or_else(|_| unreachable!("an X25519 public key is 32 bytes"));
    let wrapped = PairCodeUtils::encrypt_ephemeral_pub(&public, code);
    PrimaryHello { ephemeral, companion_ephemeral, wrapped }
}

/// A key bundle the phone opened: who the companion is, and the secret it HMACs
/// `pair-success` with.
pub struct Opened {
    pub companion_identity: [u8; 32],
    pub adv_secret: [u8; 32],
}

/// Opens the companion's `companion_finish` bundle and derives the ADV secret, mirroring
/// `prepare_key_bundle` (wacore-0.7.0 `src/pair_code.rs:549-619`) from the primary's side. Fails
/// when the code typed was not the companion's: the GCM tag does not verify.
pub fn open_key_bundle(
    hello: &PrimaryHello,
    account: &Account,
    wrapped_bundle: &[u8],
) -> anyhow::Result<Opened> {
    ensure!(
        wrapped_bundle.len() == WRAPPED_BUNDLE_LEN,
        "the key bundle is {} bytes, not {WRAPPED_BUNDLE_LEN}",
        wrapped_bundle.len()
    );
    let (salt, rest) = wrapped_bundle.split_at(32);
    let (iv, sealed) = rest.split_at(12);
    let companion_ephemeral = PublicKey::from_djb_public_key_bytes(&hello.companion_ephemeral)?;
    let ephemeral_shared = hello.ephemeral.calculate_agreement(&companion_ephemeral)?;
    let mut key = [0u8; 32];
    hkdf_sha256_into(
        &ephemeral_shared,
        Some(salt),
        b"link_code_pairing_key_bundle_encryption_key",
        &mut key,
    )
    .map_err(|e| anyhow::anyhow!("deriving the bundle key: {e:?}"))?;
    let iv: &[u8; 12] = iv.try_into().context("the bundle's iv")?;
    let mut bundle = Vec::with_capacity(96);
    if aes_256_gcm_decrypt(&key, iv, b"", sealed, &mut bundle).is_err() {
        bail!("wrong code: the companion's key bundle does not open with the code typed");
    }
    ensure!(bundle.len() == 96, "the key bundle holds {} bytes, not 96", bundle.len());
    let (companion_identity, rest) = bundle.split_at(32);
    let (primary_identity, random) = rest.split_at(32);
    ensure!(
        primary_identity == account.account_key.public_key.public_key_bytes(),
        "the key bundle names another phone's identity key"
    );
    let companion_identity: [u8; 32] = companion_identity.try_into()?;
    let identity_shared = account
        .account_key
        .calculate_agreement(&PublicKey::from_djb_public_key_bytes(&companion_identity)?)?;
    let secret = [&ephemeral_shared[..], &identity_shared, random].concat();
    let mut adv_secret = [0u8; 32];
    hkdf_sha256_into(&secret, None, b"adv_secret", &mut adv_secret)
        .map_err(|e| anyhow::anyhow!("deriving the adv secret: {e:?}"))?;
    Ok(Opened { companion_identity, adv_secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The companion's side, as whatsapp-rust runs it, against the phone's.
    fn link(companion_code: &str, typed: &str) -> anyhow::Result<(Opened, [u8; 32], [u8; 32])> {
        let account = Account::new("+56912345678", "Lucio", None);
        let identity = KeyPair::generate(&mut rand::rng());
        let ephemeral = KeyPair::generate(&mut rand::rng());
        let public: [u8; 32] = ephemeral.public_key.public_key_bytes().try_into().unwrap();
        let wrapped = PairCodeUtils::encrypt_ephemeral_pub(&public, companion_code);

        let hello = primary_hello(typed, &wrapped);

        let primary_ephemeral =
            PairCodeUtils::decrypt_primary_ephemeral_pub(&hello.wrapped, companion_code).unwrap();
        let primary_identity: [u8; 32] =
            account.account_key.public_key.public_key_bytes().try_into().unwrap();
        let (bundle, adv_secret) = PairCodeUtils::prepare_key_bundle(
            &ephemeral,
            &primary_ephemeral,
            &primary_identity,
            &identity,
        )
        .unwrap();
        let identity: [u8; 32] = identity.public_key.public_key_bytes().try_into().unwrap();
        Ok((open_key_bundle(&hello, &account, &bundle)?, adv_secret, identity))
    }

    #[test]
    fn the_right_code_opens_the_bundle_and_both_sides_derive_one_adv_secret() {
        let (opened, adv_secret, identity) = link("ABCD1234", "ABCD1234").unwrap();
        assert_eq!(opened.adv_secret, adv_secret);
        assert_eq!(opened.companion_identity, identity);
    }

    #[test]
    fn a_wrong_code_does_not_open_the_bundle() {
        let error = link("ABCD1234", "ABCD1235").err().expect("a wrong code fails");
        assert!(error.to_string().contains("wrong code"), "{error:#}");
    }

    #[test]
    fn codes_are_read_without_dash_or_case() {
        assert_eq!(normalize("abcd-1234").as_deref(), Some("ABCD1234"));
        assert_eq!(normalize(" ABCD1234 ").as_deref(), Some("ABCD1234"));
        assert_eq!(normalize("ABCD-123"), None);
        assert_eq!(normalize("ABCD-123O"), None, "O is not in the alphabet");
    }
}
