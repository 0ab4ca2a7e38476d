use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::Scopes;
use crate::store::Store;

/// Where the embedded host keeps the token it minted.
pub const HOST_PAT_FILE: &str = "host.pat";
/// The account of a minted host token.
const HOST_ACCOUNT: &str = "default";

/// The embedded host's token: the one in `<data-dir>/host.pat` if it still works, else a new
/// one (account `default`, every scope) written there with mode 0600 before it is used.
pub async fn load_or_mint_pat(data_dir: &Path, store: &Store) -> anyhow::Result<SecretString> {
    let path = data_dir.join(HOST_PAT_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let pat = SecretString::from(text.trim().to_owned());
        if store.authenticate(&pat).await?.is_some() {
            return Ok(pat);
        }
        tracing::warn!(file = %path.display(), "the host token was revoked; minting a new one");
    }
    let token = store.create_token(HOST_ACCOUNT, Scopes::all()).await?;
    let partial = data_dir.join(format!("{HOST_PAT_FILE}.partial"));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        file.write_all(token.secret.expose_secret().as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(token = %token.info.id, file = %path.display(), "minted the widget host's token");
    Ok(token.secret)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn a_token_is_minted_once_kept_private_and_replaced_when_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let first = load_or_mint_pat(dir.path(), &store).await.unwrap();
        let mode = std::fs::metadata(dir.path().join(HOST_PAT_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.authenticate(&first).await.unwrap().unwrap().scopes == Scopes::all());

        let again = load_or_mint_pat(dir.path(), &store).await.unwrap();
        assert_eq!(again.expose_secret(), first.expose_secret(), "kept across starts");

        let id = store.list_tokens().await.unwrap()[0].id.clone();
        store.revoke_token(&id).await.unwrap();
        let replaced = load_or_mint_pat(dir.path(), &store).await.unwrap();
        assert_ne!(replaced.expose_secret(), first.expose_secret());
        assert!(store.authenticate(&replaced).await.unwrap().is_some());
    }
}
