//! The simulated phone's routes (`/sim/*`, only with `--linker simulated`). A declared test and demo
//! device: it stands for a person's phone, so these routes take no API token.

use serde::{Deserialize, Serialize};

/// `POST`: the phone scans a code ([`SimScanRequest`]).
pub const SCAN_PATH: &str = "/sim/scan";
/// `POST`: the phone removes a linked device ([`SimUnlinkRequest`]).
pub const UNLINK_PATH: &str = "/sim/unlink";
/// `GET ?channel_id=`: what a simulated channel sent ([`SimMessages`]).
pub const MESSAGES_PATH: &str = "/sim/messages";
/// `POST` [`SimEnterCodeRequest`]: the phone types a pairing code.
pub const ENTER_CODE_PATH: &str = "/sim/enter-code";
/// `GET`: the simulated channels that this server keeps live ([`SimLive`]); in cluster mode,
/// the ones whose lease it holds.
pub const LIVE_PATH: &str = "/sim/live";

/// What the simulated phone does after scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanOutcome {
    /// `connecting`, then `connected`.
    #[default]
    Success,
    /// `failed` with code `device_limit` (the phone has 4 linked devices already).
    DeviceLimit,
    /// `connecting`, then `failed` with code `pairing_rejected`.
    Rejected,
    /// `connecting`, then `disconnected` with code `unlinked`.
    Unlinked,
}

/// `POST /sim/scan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimScanRequest {
    /// The QR string exactly as the stream showed it.
    pub qr: String,
    /// E.164 number of the simulated phone.
    pub phone_number: String,
    #[serde(default)]
    pub push_name: String,
    #[serde(default)]
    pub outcome: ScanOutcome,
}

/// `POST /sim/enter-code`: the phone of `phone_number` types `code` (Linked devices > Link a
/// device > Link with phone number instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimEnterCodeRequest {
    /// As the stream showed it (`ABCD-EFGH`); the dash and the letters' case do not matter.
    pub code: String,
    /// E.164 number of the simulated phone; only the number the code was asked for can use it.
    pub phone_number: String,
    #[serde(default)]
    pub push_name: String,
    #[serde(default)]
    pub outcome: ScanOutcome,
}

/// `POST /sim/unlink`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimUnlinkRequest {
    pub channel_id: String,
}

/// One text the simulated WhatsApp received from a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMessage {
    pub message_id: String,
    pub to: String,
    pub text: String,
}

/// `GET /sim/messages?channel_id=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMessages {
    pub data: Vec<SimMessage>,
}

/// `GET /sim/live`: channel ids, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimLive {
    pub data: Vec<String>,
}
