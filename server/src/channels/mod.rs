//! Paired channels: the only owner of channel rows and their status, and the boundary to the
//! connections that keep them live.
//!
//! - `channel`: [`Channel`], [`LinkerKind`] and the causes of [`Unlinked`].
//! - `book`: [`ChannelBook`], the one writer of channel rows: link (new or again) and unlink.
//! - `live`: [`LiveChannels`], the trait a linker's run-time side implements (send, stop).
//! - `placement`: [`Placement`], cluster mode's view of which server runs a channel, and a
//!   send carried out there.
//! - `service`: [`Channels`], what the API calls: list, get, send a text, unlink (simulated).
//!
//! Pairing records a linked device with [`ChannelBook::link`]; the linker then keeps its
//! connection under [`LiveChannels`]. Every way a channel becomes `disconnected` (the phone
//! removed the device, a send found it logged out, the simulated phone, a device gone at
//! start) is one [`ChannelBook::unlink`] with its cause.

mod book;
mod channel;
mod live;
mod placement;
mod service;

pub use book::{ChannelBook, NewLink};
pub use channel::{Channel, LinkerKind, Unlinked};
pub use live::{LiveChannels, SendError};
pub use placement::{ForwardError, ForwardedSend, Placement, Runs, SendOutcome};
pub use service::{ChannelError, Channels};

#[cfg(test)]
pub(crate) use book::tests as testing;
