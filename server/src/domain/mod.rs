//! Domain values parsed at the boundary: handlers turn raw strings into these types once, and
//! everything inward takes only the parsed form.
//!
//! - `code`: pairing codes, as compared and as shown.
//! - `ids`: prefixed random identifiers (`qrs_…`, `ch_…`, `msg_…`, `tok_…`, `wh_…`, `evt_…`,
//!   `dlv_…`) and the account key.
//! - `phone`: E.164 phone numbers.
//! - `text`: channel names and message texts with their length rules.
//! - `scopes`: the set of scopes a token holds.
//! - `time`: RFC 3339 timestamps as the API prints them.

mod code;
mod ids;
mod phone;
mod scopes;
mod text;
mod time;

pub use code::{code_key, grouped_code};
pub use ids::{
    AccountId, ChannelId, DeliveryId, EventId, IdError, MessageId, SessionId, TokenId, WebhookId,
    random_hex,
};
pub use phone::{PhoneNumber, PhoneNumberError};
pub use scopes::Scopes;
pub use text::{ChannelName, DEFAULT_CHANNEL_NAME, MessageText, TextError};
pub use time::{WallAnchor, never, now, rfc3339_millis};
