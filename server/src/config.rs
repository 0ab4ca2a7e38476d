//! The server's command line: one clap struct, every flag also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keebai_protocol::Scope;

use crate::linker::{SimConfig, WhatsappConfig};
use crate::pairing::PairingConfig;

/// keebai QR connect server: link WhatsApp accounts by QR code over an HTTP API.
#[derive(Debug, Parser)]
#[command(name = "keebai-server", version, about)]
pub struct Cli {
    /// Where the store (`keebai.db`) and device files live.
    #[arg(long, env = "KEEBAI_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default when no subcommand is given).
    Serve,
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check that this build trusts only WhatsApp's own servers (exit 1 if it would accept a
    /// fake one, as test builds do).
    CheckBuild,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (and its account, on first use); prints the secret once on stdout.
    Create {
        /// The account the token acts for.
        #[arg(long)]
        account: String,
        /// A scope to grant: channels:connect, channels:read or messages:send (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
    },
    /// List tokens (ids, accounts, scopes; never secrets).
    List,
    /// Revoke a token by id (`tok_…`); it stops working at once.
    Revoke { id: String },
}

/// Which linker pairs devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinkerChoice {
    /// A real WhatsApp linked device (whatsapp-rust).
    Whatsapp,
    /// The declared test and demo device ("simulated phone"), with the `/sim` routes.
    Simulated,
}

/// `serve`'s settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "KEEBAI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Which linker pairs devices. Never falls back from one to the other.
    #[arg(long, env = "KEEBAI_LINKER", value_enum, default_value_t = LinkerChoice::Whatsapp)]
    pub linker: LinkerChoice,

    /// Seconds a pairing session shows codes (`expires_in`).
    #[arg(long, env = "KEEBAI_PAIRING_TTL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pairing_ttl_secs: u64,

    /// Simulated linker: seconds the first code of an attempt is valid.
    #[arg(long, env = "KEEBAI_QR_FIRST_TTL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub qr_first_ttl_secs: u64,

    /// Simulated linker: seconds each later code is valid.
    #[arg(long, env = "KEEBAI_QR_TTL_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub qr_ttl_secs: u64,

    /// Simulated linker: milliseconds from `connecting` to `connected`.
    #[arg(long, env = "KEEBAI_SIM_LINK_DELAY_MS", default_value_t = 1500,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub sim_link_delay_ms: u64,

    /// WhatsApp linker: no QR from WhatsApp by then means `failed` `whatsapp_unreachable`.
    #[arg(long, env = "KEEBAI_WHATSAPP_CONNECT_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub whatsapp_connect_timeout_secs: u64,

    /// Tests only: the WebSocket URL the whatsapp linker dials instead of WhatsApp's.
    #[arg(long, env = "KEEBAI_WHATSAPP_WS_URL", hide = true)]
    pub whatsapp_ws_url: Option<String>,

    /// Tests only: a WhatsApp Web version (`2.3000.1023456789`), which skips fetching it.
    #[arg(long, env = "KEEBAI_WHATSAPP_VERSION", hide = true, value_parser = parse_version)]
    pub whatsapp_version: Option<(u32, u32, u32)>,

    /// Widget host: a remote keebai API to call instead of this process's own (needs --pat).
    #[arg(long, env = "KEEBAI_API_URL")]
    pub api_url: Option<reqwest::Url>,

    /// Widget host: the token it calls the API with. Without it (and without --api-url), one is
    /// minted at first start and kept in `<data-dir>/host.pat` (mode 0600).
    #[arg(long, env = "KEEBAI_PAT", hide_env_values = true)]
    pub pat: Option<secrecy::SecretString>,

    /// The built dashboard and widget (Trunk's output), served at `/`.
    #[arg(long, env = "KEEBAI_DIST_DIR", default_value = "dist")]
    pub dist_dir: std::path::PathBuf,

    /// Live pairing sessions one account may hold at once (over it: 429 TOO_MANY_SESSIONS).
    #[arg(long, env = "KEEBAI_MAX_SESSIONS_PER_ACCOUNT", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_sessions_per_account: u64,

    /// Failed authentications one client address may make per minute; over it, its requests
    /// that need a token get 429 TOO_MANY_AUTH_FAILURES with Retry-After.
    #[arg(long, env = "KEEBAI_AUTH_FAILURES_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failures_per_minute: u32,
}

impl Default for ServeArgs {
    fn default() -> Self {
        // Parsing no arguments gives clap's defaults (the environment is not consulted here, so
        // tests get the documented defaults whatever variables are set).
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            linker: LinkerChoice::Whatsapp,
            pairing_ttl_secs: 300,
            qr_first_ttl_secs: 60,
            qr_ttl_secs: 20,
            sim_link_delay_ms: 1500,
            whatsapp_connect_timeout_secs: 20,
            whatsapp_ws_url: None,
            whatsapp_version: None,
            api_url: None,
            pat: None,
            dist_dir: "dist".into(),
            max_sessions_per_account: 1000,
            auth_failures_per_minute: 30,
        }
    }
}

fn parse_version(value: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<u32> =
        value.split('.').map(str::parse).collect::<Result<_, _>>().map_err(|e| format!("{e}"))?;
    match parts[..] {
        [a, b, c] => Ok((a, b, c)),
        _ => Err("expected three numbers, like 2.3000.1023456789".into()),
    }
}

impl ServeArgs {
    pub fn pairing(&self) -> PairingConfig {
        PairingConfig {
            window: Duration::from_secs(self.pairing_ttl_secs),
            max_sessions_per_account: self.max_sessions_per_account as usize,
            ..PairingConfig::default()
        }
    }

    pub fn whatsapp(&self, data_dir: &std::path::Path) -> WhatsappConfig {
        WhatsappConfig {
            ws_url: self.whatsapp_ws_url.clone(),
            version: self.whatsapp_version,
            ..WhatsappConfig::new(data_dir, Duration::from_secs(self.whatsapp_connect_timeout_secs))
        }
    }

    pub fn sim(&self) -> SimConfig {
        SimConfig {
            first_qr_ttl: Duration::from_secs(self.qr_first_ttl_secs),
            qr_ttl: Duration::from_secs(self.qr_ttl_secs),
            link_delay: Duration::from_millis(self.sim_link_delay_ms),
            ..SimConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn token_create_takes_repeated_scopes_and_rejects_unknown_ones() {
        let cli = Cli::try_parse_from([
            "keebai-server",
            "token",
            "create",
            "--account",
            "acme",
            "--scope",
            "channels:connect",
            "--scope",
            "messages:send",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Token(TokenCommand::Create { account, scopes })) => {
                assert_eq!(account, "acme");
                assert_eq!(scopes, [Scope::ChannelsConnect, Scope::MessagesSend]);
            }
            other => panic!("parsed {other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "keebai-server",
                "token",
                "create",
                "--account",
                "a",
                "--scope",
                "admin"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["keebai-server", "token", "create", "--account", "a"]).is_err()
        );
    }
}
