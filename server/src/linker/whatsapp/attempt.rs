//! One pairing attempt: one client on a fresh device file, from its first code to the hand-over
//! of the linked device (or its release).

use std::sync::Arc;

use keebai_protocol::FailureCode;

use super::adapter::{PairingAdapter, Reaction};
use super::client::{self, Device};
use super::config::WhatsappConfig;
use super::devices::DeviceKeys;
use super::live::LiveDevices;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, sleep_until};
use whatsapp_rust::pair_code::PairCodeOptions;

use crate::domain::{ChannelId, PhoneNumber, never};
use crate::pairing::{Attempt, Control, Gone, LinkerEvent};

/// Runs `attempt` to its end. Whatever way it ends short of a saved channel (cancel, expiry,
/// failure, shutdown, a store error), its client is stopped and its files deleted before this
/// returns.
pub async fn run(
    config: Arc<WhatsappConfig>,
    files: DeviceKeys,
    live: LiveDevices,
    mut attempt: Attempt,
) {
    let id = attempt.device.clone();
    let built = tokio::select! {
        built = client::build(&config, &files, &id) => built,
        () = attempt.cancel.cancelled() => {
            remove(&files, &id).await;
            return;
        }
    };
    let (bot, events) = match built {
        Ok(built) => built,
        Err(error) => {
            tracing::error!(session = %attempt.session_id, error = ?error, "cannot start a WhatsApp client");
            remove(&files, &id).await;
            let reason = "The server could not start a WhatsApp client. Try again.".to_owned();
            let _ =
                attempt.report(LinkerEvent::Failed { code: FailureCode::Internal, reason }).await;
            return;
        }
    };
    let device = Device::start(bot, events);
    let mut adapter = PairingAdapter::default();
    // Linking by phone number: the number, and when its code needs renewing (whatsapp-rust
    // asks for no new code by itself when one expires unused).
    let mut by_code: Option<(PhoneNumber, Instant)> = None;
    let linked = loop {
        let renew_at = by_code.as_ref().map(|(_, at)| *at);
        // The number to ask a (new) code for, if this turn calls for one.
        let ask = tokio::select! {
            () = attempt.cancel.cancelled() => break None,
            Some(Control::PairCode { phone }) = attempt.control.next() => Some(phone),
            () = sleep_until(renew_at.unwrap_or_else(never)), if renew_at.is_some() => {
                by_code.take().map(|(phone, _)| phone)
            }
            event = device.events.recv() => {
                let Ok(event) = event else { break None };
                match adapter.react(&event) {
                    Reaction::Report(report) => {
                        let last = report.is_last();
                        if attempt.report(report).await.is_err() || last {
                            break None;
                        }
                        None
                    }
                    Reaction::Linked { phone } => break Some(phone),
                    Reaction::NewCode => by_code.take().map(|(phone, _)| phone),
                    Reaction::PushName(_) | Reaction::Ignore => None,
                }
            }
        };
        if let Some(phone) = ask {
            if request_code(&device, &phone, config.code_validity, &mut attempt).await.is_err() {
                break None;
            }
            by_code = Some((phone, Instant::now() + config.code_validity));
        }
    };
    let Some(phone) = linked else {
        return discard(&files, &id, device).await;
    };
    let push_name = settle_push_name(&config, &mut adapter, &device, &attempt).await;
    // From here the device belongs to the channel pairing records, or to nobody.
    match attempt.linked(phone, push_name).await {
        Some(channel) => live.adopt(&id, &channel, device).await,
        None => discard(&files, &id, device).await,
    }
}

/// Asks WhatsApp for a (new) code for `phone`, valid for `validity`, and reports it, or why
/// none came. `Err(Gone)`: nobody listens any more.
async fn request_code(
    device: &Device,
    phone: &PhoneNumber,
    validity: Duration,
    attempt: &mut Attempt,
) -> Result<(), Gone> {
    let client = device.handle.client();
    // A code still outstanding would refuse the new one (`CodeAlreadyOutstanding`).
    client.cancel_pair_code().await;
    let options = PairCodeOptions {
        phone_number: phone.as_str().trim_start_matches('+').to_owned(),
        ..PairCodeOptions::default()
    };
    let report = match client.pair_with_code(options).await {
        Ok(code) => LinkerEvent::PairingCode { code, ttl: validity },
        Err(error) => {
            tracing::warn!(session = %attempt.session_id, %error, "WhatsApp gave no pairing code");
            LinkerEvent::CodeRefused { reason: error.to_string() }
        }
    };
    attempt.report(report).await
}

/// The push name: the client's if known, else one pushed within `push_name_wait`, else the
/// business name, else empty.
async fn settle_push_name(
    config: &WhatsappConfig,
    adapter: &mut PairingAdapter,
    device: &Device,
    attempt: &Attempt,
) -> String {
    let client = device.handle.client();
    if !client.push_name().is_empty() {
        return adapter.push_name(&client.push_name());
    }
    let wait = tokio::time::sleep(config.push_name_wait);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            () = &mut wait => break,
            () = attempt.cancel.cancelled() => break,
            event = device.events.recv() => match event {
                Ok(event) => {
                    if let Reaction::PushName(name) = adapter.react(&event) && !name.is_empty() {
                        break;
                    }
                }
                Err(_) => break,
            },
        }
    }
    adapter.push_name(&client.push_name())
}

/// Stops a device that will not serve a channel, and deletes its files.
async fn discard(files: &DeviceKeys, id: &ChannelId, device: Device) {
    device.stop().await;
    remove(files, id).await;
}

async fn remove(files: &DeviceKeys, id: &ChannelId) {
    if let Err(error) = files.remove(id).await {
        tracing::warn!(device = %id, error = ?error, "cannot delete a device's keys");
    }
}
