//! `keebai`: connect a WhatsApp channel by QR code from the terminal, list numbers, send texts,
//! manage webhook endpoints.
//!
//! - `args`: the command line (clap), with `KEEBAI_API_URL` and `KEEBAI_TOKEN`.
//! - `api`: a small client of the v1 API over HTTP (reqwest), including the SSE stream.
//! - `connect`: `keebai whatsapp connect --qr`: follows a pairing session to its end.
//! - `render`: the QR drawn with Unicode half blocks, and the screen it lives on.
//! - `exit`: the exit codes, one per way a command can end.
//!
//! It depends on `keebai-protocol` for the wire types and on nothing of the server.

pub mod api;
pub mod args;
pub mod connect;
pub mod exit;
pub mod render;

use std::io::IsTerminal;

use args::{Cli, Command, MessagesCommand, WebhooksCommand, WhatsappCommand};
use exit::Exit;

/// Runs one command and tells how it ended. Errors are printed here, on stderr.
pub async fn run(cli: Cli) -> Exit {
    let api = match cli.api() {
        Ok(api) => api,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Usage;
        }
    };
    let result = match cli.command {
        Command::Whatsapp(WhatsappCommand::Connect(args)) => {
            let tty = !args.json && std::io::stdout().is_terminal();
            return connect::run(&api, args, tty).await;
        }
        Command::Whatsapp(WhatsappCommand::Numbers { json }) => numbers(&api, json).await,
        Command::Messages(MessagesCommand::SendText { channel, to, text, json }) => {
            send_text(&api, channel, to, text, json).await
        }
        Command::Webhooks(command) => webhooks(&api, command).await,
    };
    match result {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Error
        }
    }
}

async fn numbers(api: &api::Api, json: bool) -> Result<(), api::ApiError> {
    let numbers = api.numbers().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&numbers).unwrap_or_default());
        return Ok(());
    }
    if numbers.data.is_empty() {
        println!("No numbers yet. Connect one with: keebai whatsapp connect --qr");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = numbers
        .data
        .iter()
        .map(|n| {
            [
                n.channel_id.clone(),
                n.name.clone(),
                n.phone_number.clone(),
                n.push_name.clone(),
                n.status.as_str().to_owned(),
                n.created_at.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(["CHANNEL", "NAME", "PHONE", "PUSH NAME", "STATUS", "CREATED"], &rows)
    );
    Ok(())
}

async fn send_text(
    api: &api::Api,
    channel_id: String,
    to: String,
    text: String,
    json: bool,
) -> Result<(), api::ApiError> {
    let request = keebai_protocol::SendTextRequest { channel_id, to, text };
    let sent = api.send_text(&request).await?;
    if json {
        println!("{}", serde_json::to_string(&sent).unwrap_or_default());
    } else {
        println!("Sent {} to {}.", sent.message_id, request.to);
    }
    Ok(())
}

async fn webhooks(api: &api::Api, command: WebhooksCommand) -> Result<(), api::ApiError> {
    match command {
        WebhooksCommand::Add { url, events, description, json } => {
            let events = (!events.is_empty()).then_some(events);
            let request = keebai_protocol::CreateWebhookRequest { url, events, description };
            let created = api.create_webhook(&request).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created).unwrap_or_default());
            } else {
                let webhook = &created.webhook;
                println!("Webhook {} added for {}.", webhook.webhook_id, webhook.url);
                println!(
                    "Events: {}",
                    webhook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
                );
                println!(
                    "Signing secret (shown once; keep it with the receiver): {}",
                    created.secret
                );
            }
        }
        WebhooksCommand::List { json } => {
            let list = api.webhooks().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            } else if list.data.is_empty() {
                println!("No webhooks yet. Add one with: keebai webhooks add https://…");
            } else {
                let rows: Vec<[String; 4]> = list
                    .data
                    .iter()
                    .map(|w| {
                        [
                            w.webhook_id.clone(),
                            w.url.clone(),
                            w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(","),
                            w.created_at.clone(),
                        ]
                    })
                    .collect();
                print!("{}", render::table(["WEBHOOK", "URL", "EVENTS", "CREATED"], &rows));
            }
        }
        WebhooksCommand::Remove { webhook_id } => {
            api.remove_webhook(&webhook_id).await?;
            println!("Webhook {webhook_id} removed.");
        }
        WebhooksCommand::Test { webhook_id, json } => {
            let queued = api.test_webhook(&webhook_id).await?;
            if json {
                println!("{}", serde_json::to_string(&queued).unwrap_or_default());
            } else {
                println!(
                    "Queued webhook.test {} for {webhook_id} (delivery {}).",
                    queued.event_id, queued.delivery_id
                );
            }
        }
    }
    Ok(())
}
