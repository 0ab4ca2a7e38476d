//! Token scopes.

use serde::{Deserialize, Serialize};

/// What a personal access token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Start, watch and cancel pairing sessions.
    #[serde(rename = "channels:connect")]
    ChannelsConnect,
    /// List paired numbers.
    #[serde(rename = "channels:read")]
    ChannelsRead,
    /// Send messages on paired channels.
    #[serde(rename = "messages:send")]
    MessagesSend,
    /// Create, list, test and remove webhook endpoints, and see their deliveries.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 4] =
        [Scope::ChannelsConnect, Scope::ChannelsRead, Scope::MessagesSend, Scope::WebhooksManage];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChannelsConnect => "channels:connect",
            Self::ChannelsRead => "channels:read",
            Self::MessagesSend => "messages:send",
            Self::WebhooksManage => "webhooks:manage",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl std::fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown scope `{}` (known: channels:connect, channels:read, messages:send, webhooks:manage)",
            self.0
        )
    }
}

impl std::error::Error for UnknownScope {}

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_their_wire_names_only() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("channels:*".parse::<Scope>().is_err());
        assert!("CHANNELS:CONNECT".parse::<Scope>().is_err());
    }
}
