//! Sending a text on a live channel's client, and what whatsapp-rust's send errors mean to the
//! API.

use whatsapp_rust::{Client, Jid};

use crate::channels::SendError;
use crate::domain::{MessageText, PhoneNumber};

/// Sends `text` to `to`. whatsapp-rust would wait for a socket; this answers `NotConnected` at
/// once instead, so that API callers retry on their own schedule.
pub async fn send_text(
    client: &Client,
    to: &PhoneNumber,
    text: &MessageText,
) -> Result<(), SendError> {
    if !client.is_connected() {
        return Err(SendError::NotConnected);
    }
    let jid = Jid::pn(to.as_str().trim_start_matches('+'));
    match client.send_text(jid, text.as_str()).await {
        Ok(_) => Ok(()),
        // A linked device that is merely offline also says "not logged in"; only a device
        // without a phone number has really lost its link.
        Err(whatsapp_rust::send::SendError::NotLoggedIn) if client.pn().is_none() => {
            Err(SendError::NotLoggedIn)
        }
        Err(whatsapp_rust::send::SendError::NotLoggedIn) => Err(SendError::NotConnected),
        Err(error) if whatsapp_rust::ErrorChainExt::is_transport_unavailable(&error) => {
            Err(SendError::NotConnected)
        }
        Err(error) => Err(SendError::Other(anyhow::anyhow!("sending failed: {error}"))),
    }
}
