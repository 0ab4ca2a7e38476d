//! What the engine answers its callers, shared by the engine, the session drivers, the registry
//! and the cluster peers (a leaf, so that none of them imports another for these).

/// Why the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// 404: unknown id, another account's session, or ended more than `replay` ago.
    #[error("no such pairing session")]
    NotFound,
    /// 429: the account holds `limit` live sessions already.
    #[error("this account already has {limit} live pairing sessions")]
    TooManySessions { limit: usize },
    /// 503: the server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// 503: cluster mode, and the database cannot be reached right now (logged where it
    /// happened).
    #[error("the cluster's database is unavailable")]
    Unavailable,
    /// 409: a pairing code was asked for a session that was scanned already, or ended.
    #[error("the session no longer waits for a phone")]
    NotWaiting,
    /// 429: the session asked for codes for [`MAX_CODE_NUMBERS`] numbers already.
    #[error("this session asked for pairing codes too many times")]
    TooManyCodeRequests,
    /// 429: WhatsApp gave no code (the reason says why).
    #[error("WhatsApp gave no pairing code: {0}")]
    CodeRefused(String),
}

/// How many different numbers one session may ask pairing codes for. WhatsApp limits code
/// requests itself; asking again for the same number returns the current code and sends the
/// phone no new notification.
pub const MAX_CODE_NUMBERS: u32 = 3;

/// A pairing code given to the API, also shown on the stream as `pairing_code`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeGranted {
    /// `ABCD-EFGH`.
    pub code: String,
    /// RFC 3339.
    pub expires_at: String,
}
