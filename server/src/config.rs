//! The server's command line: one clap struct, every flag also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keebai_protocol::Scope;

use crate::linker::{SimConfig, WhatsappConfig};
use crate::pairing::PairingConfig;
use crate::webhooks::SenderConfig;
use crate::webhooks::retry::Schedule;
use crate::webhooks::target::TargetPolicy;

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
    /// Copy this data directory's SQLite store (tokens, channels, message records) into an
    /// empty Postgres database, to run it as a cluster. Refused while a server serves the data
    /// directory, and when the database already holds data.
    Migrate {
        /// The Postgres database to copy into (`postgres://user:password@host:port/db`); never
        /// logged nor echoed.
        #[arg(long, hide_env_values = true)]
        to: secrecy::SecretString,
    },
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

    /// Simulated linker: seconds a pairing code is valid (WhatsApp: 180).
    #[arg(long, env = "KEEBAI_CODE_TTL_SECS", default_value_t = 180,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub code_ttl_secs: u64,

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

    /// Tests only: seconds before the whatsapp linker asks WhatsApp for the next pairing code
    /// (WhatsApp's codes last 180).
    #[arg(long, env = "KEEBAI_WHATSAPP_CODE_VALIDITY_SECS", hide = true, default_value_t = 180,
          value_parser = clap::value_parser!(u64).range(1..=180))]
    pub whatsapp_code_validity_secs: u64,

    /// Widget host: a remote keebai API to call instead of this process's own (needs
    /// --host-pat).
    #[arg(long, env = "KEEBAI_HOST_API_URL")]
    pub host_api_url: Option<reqwest::Url>,

    /// Widget host: the token it calls the API with. Without it (and without --host-api-url),
    /// one is minted at first start and kept in `<data-dir>/host.pat` (mode 0600).
    #[arg(long, env = "KEEBAI_HOST_PAT", hide_env_values = true)]
    pub host_pat: Option<secrecy::SecretString>,

    /// The built dashboard and widget (Trunk's output), served at `/`.
    #[arg(long, env = "KEEBAI_DIST_DIR", default_value = "dist")]
    pub dist_dir: std::path::PathBuf,

    /// Live pairing sessions one account may hold at once (over it: 429 TOO_MANY_SESSIONS).
    #[arg(long, env = "KEEBAI_MAX_SESSIONS_PER_ACCOUNT", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_sessions_per_account: u64,

    /// The database: none for SQLite in the data directory (the default, one server), or a
    /// `postgres://user:password@host:port/database` URL. Never logged, never echoed in an
    /// error (it is checked when the store opens, not by the argument parser, which would).
    #[arg(long, env = "KEEBAI_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<secrecy::SecretString>,

    /// Failed authentications one client address may make per minute; over it, its requests
    /// that need a token get 429 TOO_MANY_AUTH_FAILURES with Retry-After.
    #[arg(long, env = "KEEBAI_AUTH_FAILURES_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failures_per_minute: u32,

    /// Let webhook endpoints use `http://` URLs (by default only `https://` ones).
    #[arg(long, env = "KEEBAI_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,

    /// Let webhooks reach private, loopback and link-local addresses (by default refused, both
    /// when an endpoint is created and when a delivery resolves its host). Only for receivers
    /// on the operator's own network: any token holder with `webhooks:manage` can then make
    /// this server POST to them.
    #[arg(long, env = "KEEBAI_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Tests only: the wait after a webhook delivery's first failure (the product's is 5 s).
    #[arg(long, env = "KEEBAI_WEBHOOK_FIRST_RETRY_MS", hide = true, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_first_retry_ms: u64,

    /// Tests only: how long a webhook delivery is tried (the product's is 24 hours).
    #[arg(long, env = "KEEBAI_WEBHOOK_GIVE_UP_SECS", hide = true, default_value_t = 86_400)]
    pub webhook_give_up_secs: u64,
}

/// `serve`'s settings alone, for [`ServeArgs::default`].
#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    serve: ServeArgs,
}

impl Default for ServeArgs {
    /// The documented defaults, from clap's own definitions with every environment variable
    /// ignored (so tests get the defaults whatever variables are set).
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = ServeOnly::command().mut_args(|arg| arg.env(None::<&str>));
        // Every flag has a default or is optional, and no argument is given: parsing cannot
        // fail (the `default_is_the_documented_one` test runs it).
        command
            .try_get_matches_from(["keebai-server"])
            .and_then(|matches| ServeArgs::from_arg_matches(&matches))
            .expect("serve's defaults parse")
    }
}

/// Environment variables that were renamed, with their new names. The CLI reads `KEEBAI_API_URL`
/// as its own API, so the host's variables got their own names; a server that silently ignored
/// an old `KEEBAI_PAT` would mint a token of its own instead of using the one given.
pub const RENAMED: [(&str, &str); 1] = [("KEEBAI_PAT", "KEEBAI_HOST_PAT")];

impl ServeArgs {
    /// Refuses settings that only an old variable name would have made: `KEEBAI_PAT` set
    /// without `--host-pat`/`KEEBAI_HOST_PAT`. `var` reads the environment.
    pub fn check_renamed(
        &self,
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> anyhow::Result<()> {
        for (old, new) in RENAMED {
            if var(old).is_some() && var(new).is_none() && self.host_pat.is_none() {
                anyhow::bail!(
                    "{old} is set, but the widget host now reads its token from {new} \
                     (--host-pat): rename the variable (and KEEBAI_API_URL to \
                     KEEBAI_HOST_API_URL if the host calls a remote API)"
                );
            }
        }
        Ok(())
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
            code_validity: Duration::from_secs(self.whatsapp_code_validity_secs),
            ..WhatsappConfig::new(data_dir, Duration::from_secs(self.whatsapp_connect_timeout_secs))
        }
    }

    pub fn webhooks(&self) -> SenderConfig {
        let defaults = SenderConfig::default();
        SenderConfig {
            policy: TargetPolicy {
                allow_http: self.webhook_allow_http,
                allow_private: self.webhook_allow_private,
            },
            schedule: Schedule {
                first_wait: Duration::from_millis(self.webhook_first_retry_ms),
                give_up_after: Duration::from_secs(self.webhook_give_up_secs),
                ..defaults.schedule
            },
            ..defaults
        }
    }

    pub fn sim(&self) -> SimConfig {
        SimConfig {
            first_qr_ttl: Duration::from_secs(self.qr_first_ttl_secs),
            qr_ttl: Duration::from_secs(self.qr_ttl_secs),
            link_delay: Duration::from_millis(self.sim_link_delay_ms),
            code_ttl: Duration::from_secs(self.code_ttl_secs),
            ..SimConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_documented_one() {
        let args = ServeArgs::default();
        assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(args.linker, LinkerChoice::Whatsapp);
        assert_eq!(
            (args.pairing_ttl_secs, args.qr_first_ttl_secs, args.qr_ttl_secs),
            (300, 60, 20)
        );
        assert_eq!((args.sim_link_delay_ms, args.whatsapp_connect_timeout_secs), (1500, 20));
        assert!(args.host_api_url.is_none() && args.host_pat.is_none());
        assert_eq!(args.dist_dir, PathBuf::from("dist"));
        assert_eq!((args.max_sessions_per_account, args.auth_failures_per_minute), (1000, 30));
        assert!(args.database_url.is_none(), "SQLite in the data directory");
    }

    #[test]
    fn the_database_url_is_a_secret_for_every_subcommand() {
        use secrecy::ExposeSecret;
        let url = "postgres://keebai:s3cret@db:5432/keebai";
        let cli = Cli::try_parse_from(["keebai-server", "--database-url", url]).unwrap();
        assert_eq!(cli.serve.database_url.as_ref().map(|u| u.expose_secret()), Some(url));
        assert!(!format!("{cli:?}").contains("s3cret"), "Debug redacts it");
        // Global: token commands use the same database.
        let cli =
            Cli::try_parse_from(["keebai-server", "token", "list", "--database-url", url]).unwrap();
        assert!(cli.serve.database_url.is_some());
    }

    #[test]
    fn only_the_old_pat_variable_is_refused_with_the_new_name() {
        let env = |set: &'static [&'static str]| {
            move |name: &str| set.contains(&name).then(|| std::ffi::OsString::from("x"))
        };
        let args = ServeArgs::default();
        let refused = args.check_renamed(env(&["KEEBAI_PAT"])).unwrap_err().to_string();
        assert!(refused.contains("KEEBAI_HOST_PAT"), "{refused}");
        assert!(args.check_renamed(env(&["KEEBAI_PAT", "KEEBAI_HOST_PAT"])).is_ok());
        assert!(args.check_renamed(env(&["KEEBAI_API_URL"])).is_ok(), "the CLI's variable");
        assert!(args.check_renamed(env(&[])).is_ok());
    }

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
