//! What a paired channel is: its record, which linker serves it, and why one may be unlinked.

use keebai_protocol::{ChannelStatus, FailureCode};
use time::OffsetDateTime;

use crate::domain::{AccountId, ChannelId, PhoneNumber};

/// A paired channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub account: AccountId,
    pub name: String,
    pub phone_number: PhoneNumber,
    pub push_name: String,
    /// Which linker paired it; only that linker can send on it.
    pub linker: LinkerKind,
    pub status: ChannelStatus,
    pub created_at: OffsetDateTime,
}

/// Which implementation links devices. Stored with each channel (`linker` column): only the
/// linker that paired a channel can send on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkerKind {
    /// whatsapp-rust, a real WhatsApp linked device.
    Whatsapp,
    /// The declared test and demo device.
    Simulated,
}

impl LinkerKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Simulated => "simulated",
        }
    }

    /// The stored spelling back; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "whatsapp" => Some(Self::Whatsapp),
            "simulated" => Some(Self::Simulated),
            _ => None,
        }
    }
}

/// Why a channel became `disconnected`; every way there goes through
/// [`ChannelBook::unlink`](super::ChannelBook::unlink), which logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    /// The phone removed the linked device (WhatsApp logged it out).
    RemovedOnPhone,
    /// The simulated phone unlinked it (`POST /sim/unlink`).
    Simulated,
    /// A send found the device no longer logged in.
    NotLoggedIn,
    /// At start, the channel's device file was gone or no longer linked.
    DeviceGone,
    /// WhatsApp ended the connection for a reason after which nobody reconnects (replaced by
    /// another connection, banned, outdated client, refused); re-linking the phone reconnects.
    Stopped(FailureCode),
}

impl Unlinked {
    /// The stable code webhooks report (`channel.disconnected`'s `data.code`).
    pub fn code(self) -> &'static str {
        match self {
            Self::RemovedOnPhone => "removed_on_phone",
            Self::Simulated => "simulated",
            Self::NotLoggedIn => "not_logged_in",
            Self::DeviceGone => "device_gone",
            Self::Stopped(code) => code.as_str(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::RemovedOnPhone => "removed on the phone",
            Self::Simulated => "unlinked by the simulated phone",
            Self::NotLoggedIn => "not logged in when sending",
            Self::DeviceGone => "device not linked at start",
            Self::Stopped(_) => "connection ended by WhatsApp",
        }
    }
}

impl std::fmt::Display for Unlinked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stopped(code) => write!(f, "{} ({})", self.as_str(), code.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linker_kinds_round_trip_through_their_stored_spelling() {
        for kind in [LinkerKind::Whatsapp, LinkerKind::Simulated] {
            assert_eq!(LinkerKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(LinkerKind::parse("Whatsapp"), None);
    }
}
