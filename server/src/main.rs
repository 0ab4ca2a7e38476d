use anyhow::Context;
use clap::Parser;
use keebai_server::config::{Cli, Command, TokenCommand};
use keebai_server::domain::{Scopes, TokenId};
use keebai_server::store::Store;
use keebai_server::{App, startup, telemetry};
use secrecy::ExposeSecret;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(cli.data_dir, cli.serve).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            startup::cancel_on_signal(app.shutdown_token());
            app.run_until_stopped().await
        }
        Command::Token(command) => {
            let store = Store::open(&cli.data_dir).await?;
            let result = token(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn token(store: &Store, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { account, scopes } => {
            let account = account.trim();
            anyhow::ensure!(!account.is_empty(), "--account must not be empty");
            let token = store.create_token(account, scopes.into_iter().collect::<Scopes>()).await?;
            eprintln!(
                "Created {} for account `{account}` with scopes {}.",
                token.info.id,
                token.info.scopes.to_stored()
            );
            eprintln!("This is the only time the token is shown; store it now:");
            println!("{}", token.secret.expose_secret());
        }
        TokenCommand::List => {
            println!("{:<22} {:<20} {:<45} {:<26} REVOKED", "ID", "ACCOUNT", "SCOPES", "CREATED");
            for t in store.list_tokens().await? {
                println!(
                    "{:<22} {:<20} {:<45} {:<26} {}",
                    t.id.as_str(),
                    t.account,
                    t.scopes.to_stored(),
                    t.created_at,
                    t.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let id = TokenId::parse(&id).context("not a token id")?;
            anyhow::ensure!(store.revoke_token(&id).await?, "no live token has id {id}");
            eprintln!("Revoked {id}.");
        }
    }
    Ok(())
}
