use anyhow::Context;
use clap::Parser;
use keebai_server::config::{Cli, Command, TokenCommand};
use keebai_server::domain::{Scopes, TokenId};
use keebai_server::store::Store;
use keebai_server::{App, startup, telemetry};
use secrecy::ExposeSecret;

/// jemalloc, configured so that memory freed after a load goes back to the system:
/// `background_thread` purges unused pages after `dirty_decay_ms` (10 s) even while the server is
/// idle, `muzzy_decay_ms:0` purges them for real (`MADV_DONTNEED`, not lazily), and with
/// `tcache:false` no thread keeps a private cache of freed blocks. Thread caches were what held
/// memory with glibc's malloc: its per-thread cache pins up to 7 blocks of each small size, and
/// scattered through the heap they kept ~2 MiB of pages per worker thread resident after the soak
/// bench (+30% of the baseline, even with `malloc_trim`, which does not touch them). With this
/// configuration the RSS comes back to within 6% of its baseline, with throughput and latency the
/// same within run-to-run noise (README, Performance). `_RJEM_MALLOC_CONF` still overrides it.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol (`malloc_conf`, under tikv-jemalloc-sys's
/// `_rjem_` prefix).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: JemallocConf = JemallocConf(
    c"background_thread:true,tcache:false,dirty_decay_ms:10000,muzzy_decay_ms:0".as_ptr(),
);

/// A C string pointer that can live in a `static` (jemalloc declares `const char *malloc_conf`).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[repr(transparent)]
struct JemallocConf(*const std::ffi::c_char);

// SAFETY: it points at a string literal, immutable for the life of the process.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
unsafe impl Sync for JemallocConf {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            cli.serve.check_renamed(|name| std::env::var_os(name))?;
            let app = App::build(cli.data_dir, cli.serve).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            startup::cancel_on_signal(app.shutdown_token());
            app.run_until_stopped().await
        }
        Command::CheckBuild => {
            if keebai_server::linker::whatsapp::accepts_unsigned_certificates() {
                eprintln!("{}", startup::UNSAFE_BUILD);
                std::process::exit(1);
            }
            println!("WhatsApp certificate chains: verified (this build can dial WhatsApp)");
            Ok(())
        }
        Command::Migrate { to } => {
            let moved = keebai_server::migrate::migrate(&cli.data_dir, &to).await?;
            let copied = moved.store;
            eprintln!(
                "Copied {} accounts, {} tokens, {} channels, {} message records, {} webhook \
                 endpoints and {} device keys into Postgres.",
                copied.accounts,
                copied.tokens,
                copied.channels,
                copied.messages,
                copied.webhooks,
                moved.devices
            );
            eprintln!("Serve with --database-url (KEEBAI_DATABASE_URL) from now on.");
            Ok(())
        }
        Command::Token(command) => {
            let store =
                Store::open_configured(&cli.data_dir, cli.serve.database_url.as_ref()).await?;
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

#[cfg(all(test, feature = "jemalloc", not(target_env = "msvc")))]
mod tests {
    /// jemalloc found and applied `JEMALLOC_CONF` (it silently ignores a symbol it cannot see).
    #[test]
    fn jemalloc_runs_with_our_configuration() {
        use tikv_jemalloc_ctl::{background_thread, opt};
        assert!(!opt::tcache::read().unwrap(), "thread caches are off");
        assert!(opt::background_thread::read().unwrap(), "purging runs in the background");
        assert!(background_thread::read().unwrap(), "the background thread is enabled");
        // SAFETY: both options are `ssize_t` in jemalloc's documentation, read as `isize`.
        let decay = |name: &[u8]| unsafe { tikv_jemalloc_ctl::raw::read::<isize>(name).unwrap() };
        assert_eq!(decay(b"opt.muzzy_decay_ms\0"), 0);
        assert_eq!(decay(b"opt.dirty_decay_ms\0"), 10_000);
    }
}
