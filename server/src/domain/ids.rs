use std::fmt;

/// An account's key in the store. Accounts are created by `token create` and never exposed by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// `n` bytes from the operating system's CSPRNG, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing means the machine cannot do cryptography at all; there is
    // no meaningful fallback, and minting predictable ids or tokens would be worse than stopping.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// An id that does not have the expected prefix and length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind} id (expected `{prefix}` and {hex_len} lowercase hex digits)"
)]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub hex_len: usize,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal, $bytes:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id with the given number of random bytes.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_hex($bytes)))
            }

            pub fn parse(value: &str) -> Result<Self, IdError> {
                let ok = value
                    .strip_prefix($prefix)
                    .is_some_and(|hex| {
                        hex.len() == $bytes * 2
                            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    });
                if ok {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError {
                        kind: $kind,
                        prefix: $prefix,
                        hex_len: $bytes * 2,
                        value: value.chars().take(80).collect(),
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

prefixed_id!(
    /// A pairing session: `qrs_` + 128 random bits, unguessable, so holding it is not enough to
    /// watch a session anyway (the stream also needs the owning account's token).
    SessionId, "session", "qrs_", 16
);
prefixed_id!(
    /// A paired channel: `ch_` + 128 random bits.
    ChannelId, "channel", "ch_", 16
);
prefixed_id!(
    /// A sent message: `msg_` + 128 random bits.
    MessageId, "message", "msg_", 16
);
prefixed_id!(
    /// A token's public id (what `token list` shows and `token revoke` takes): `tok_` + 64 bits.
    TokenId, "token", "tok_", 8
);
prefixed_id!(
    /// A webhook endpoint: `wh_` + 128 random bits.
    WebhookId, "webhook", "wh_", 16
);
prefixed_id!(
    /// A webhook event: `evt_` + 128 random bits. It is the `webhook-id` header of every
    /// delivery of the event, tries and resends alike.
    EventId, "event", "evt_", 16
);
prefixed_id!(
    /// One event's delivery to one endpoint: `dlv_` + 128 random bits.
    DeliveryId, "delivery", "dlv_", 16
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = SessionId::generate();
        assert!(id.as_str().starts_with("qrs_"));
        assert_eq!(id.as_str().len(), 4 + 32);
        assert_eq!(SessionId::parse(id.as_str()), Ok(id));
        let ch = ChannelId::generate();
        assert_eq!(ChannelId::parse(ch.as_str()), Ok(ch));
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }

    #[test]
    fn ids_with_wrong_prefix_length_or_case_are_rejected() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert!(SessionId::parse(&format!("qrs_{hex}")).is_ok());
        assert!(SessionId::parse(&format!("ch_{hex}")).is_err());
        assert!(SessionId::parse(&format!("qrs_{}", &hex[1..])).is_err());
        assert!(SessionId::parse(&format!("qrs_{}", hex.to_uppercase())).is_err());
        assert!(SessionId::parse(&format!("qrs_{hex}0")).is_err());
        assert!(SessionId::parse("").is_err());
        assert!(ChannelId::parse(&format!("ch_{}", &hex[..31])).is_err());
    }
}
