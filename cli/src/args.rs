use clap::{Args, Parser, Subcommand};
use keebai_protocol::WebhookEventType;
use secrecy::SecretString;

use crate::api::Api;

/// keebai: link WhatsApp numbers by QR code and send texts on them.
#[derive(Debug, Parser)]
#[command(name = "keebai", version, about)]
pub struct Cli {
    /// The keebai API's base URL.
    #[arg(long, env = "KEEBAI_API_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub api_url: String,

    /// A personal access token (`kbai_pk_…`). Prefer the environment variable: command lines
    /// are visible to other users of the machine. Its value is never printed.
    #[arg(long, env = "KEEBAI_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<SecretString>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// WhatsApp channels.
    #[command(subcommand)]
    Whatsapp(WhatsappCommand),
    /// Messages.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Signed webhooks: endpoints that hear about channel, pairing and message changes
    /// (needs the `webhooks:manage` scope).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints its signing secret (`whsec_…`) once.
    Add {
        /// Where deliveries go (https://…).
        url: String,
        /// An event type to deliver (repeat for several; all of them when left out), e.g.
        /// channel.disconnected.
        #[arg(long = "event", value_name = "TYPE", value_parser = event_type)]
        events: Vec<WebhookEventType>,
        /// A note for people (up to 200 characters).
        #[arg(long)]
        description: Option<String>,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List the endpoints (never their secrets).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint (`wh_…`); its pending deliveries are not sent.
    Remove {
        /// The endpoint (`wh_…`).
        webhook_id: String,
    },
    /// Send a `webhook.test` event to an endpoint.
    Test {
        /// The endpoint (`wh_…`).
        webhook_id: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WhatsappCommand {
    /// Link a phone as a WhatsApp linked device by scanning a QR code drawn in the terminal.
    Connect(ConnectArgs),
    /// List the account's numbers.
    Numbers {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Connect by QR code, drawn here for the phone to scan.
    #[arg(long, required_unless_present = "phone", conflicts_with = "phone")]
    pub qr: bool,
    /// Connect by phone number instead (E.164, e.g. +56912345678): prints a code to type on
    /// that phone (WhatsApp > Linked devices > Link a device > Link with phone number instead).
    #[arg(long, value_name = "E164")]
    pub phone: Option<String>,
    /// The channel's name (1 to 100 characters; the server's default is "WhatsApp QR").
    #[arg(long)]
    pub name: Option<String>,
    /// Print one JSON object per event and line instead of drawing.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Send a text on a channel.
    SendText {
        /// The channel (`ch_…`).
        #[arg(long)]
        channel: String,
        /// The recipient, E.164 (`+56912345678`).
        #[arg(long)]
        to: String,
        /// The text.
        #[arg(long)]
        text: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// A webhook event type by its wire name.
fn event_type(name: &str) -> Result<WebhookEventType, String> {
    WebhookEventType::parse(name).ok_or_else(|| {
        let known: Vec<&str> = WebhookEventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect();
        format!("unknown event type (known: {})", known.join(", "))
    })
}

/// What is wrong with the command line beyond what clap checks.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(
        "no API token: set KEEBAI_TOKEN (or pass --token) to a kbai_pk_… token; \
         create one with `keebai-server token create --account NAME --scope channels:connect …`"
    )]
    MissingToken,
    #[error("--api-url `{0}` is not an http(s) URL")]
    BadUrl(String),
}

impl Cli {
    pub fn api(&self) -> Result<Api, UsageError> {
        let token = self.token.clone().ok_or(UsageError::MissingToken)?;
        Api::new(&self.api_url, token).ok_or_else(|| UsageError::BadUrl(self.api_url.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_never_shows_the_tokens_value() {
        // SAFETY: tests in this module do not read the environment concurrently.
        unsafe { std::env::set_var("KEEBAI_TOKEN", "kbai_pk_secret_value") };
        let help = Cli::command().render_long_help().to_string();
        unsafe { std::env::remove_var("KEEBAI_TOKEN") };
        assert!(help.contains("KEEBAI_TOKEN"));
        assert!(!help.contains("kbai_pk_secret_value"), "{help}");
    }

    #[test]
    fn a_missing_token_is_a_usage_error_and_a_bad_url_is_named() {
        let command = || Command::Whatsapp(WhatsappCommand::Numbers { json: false });
        let cli = Cli { api_url: "http://127.0.0.1:8080".into(), token: None, command: command() };
        assert!(matches!(cli.api(), Err(UsageError::MissingToken)));
        let token = Some(SecretString::from("kbai_pk_x"));
        let cli = Cli { api_url: "ftp://x".into(), token, command: command() };
        assert!(matches!(cli.api(), Err(UsageError::BadUrl(url)) if url == "ftp://x"));
    }
}
