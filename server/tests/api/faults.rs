//! Faults: a store that cannot be written.

use keebai_protocol::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// Makes the SQLite files unwritable, as a read-only mount or a failing disk would, with
/// `chattr +i`: the server already holds them open, so file modes would not stop it. Needs root
/// (or password-less sudo), as CI has. The shared-memory file stays writable: SQLite maps it, and
/// an immutable mapping is a SIGBUS, not an error. Undone on drop.
struct Unwritable(Vec<std::path::PathBuf>);

impl Unwritable {
    fn store_of(app: &TestApp) -> Self {
        let files: Vec<_> = ["keebai.db", "keebai.db-wal"]
            .iter()
            .map(|name| app.data_dir().join(name))
            .filter(|path| path.exists())
            .collect();
        for file in &files {
            chattr("+i", file);
        }
        Self(files)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        for file in &self.0 {
            chattr("-i", file);
        }
    }
}

fn chattr(flag: &str, path: &std::path::Path) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = std::process::Command::new(if root { "chattr" } else { "sudo" });
    if !root {
        command.args(["-n", "chattr"]);
    }
    let status = command.arg(flag).arg(path).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "`chattr {flag} {}` failed: this test needs root or password-less sudo",
        path.display()
    );
}

#[tokio::test]
async fn an_unwritable_store_answers_503_and_recovers_by_itself() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let text = json!({"channel_id": channel_id, "to": "+14155550100", "text": "Hola"});

    let blocked = Unwritable::store_of(&app);
    let response = app.send_text(&app.token, text.clone()).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable).await;
    // Nothing was sent for a message the server could not record.
    assert!(app.sim_inbox(&channel_id).await.data.is_empty());
    // Starting a session needs no write: it still works.
    app.connect_ok().await;

    drop(blocked);
    // Without a restart: each pooled connection that saw the failure resets on its next use,
    // so the first few requests may still get 503 (and send nothing).
    let mut attempts = 0;
    loop {
        attempts += 1;
        let response = app.send_text(&app.token, text.clone()).await;
        if response.status() == StatusCode::ACCEPTED {
            break;
        }
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable)
            .await;
        assert!(attempts < 20, "the store did not recover");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Exactly one message went out: none of the refused attempts sent anything.
    assert_eq!(app.sim_inbox(&channel_id).await.data.len(), 1);
    let numbers = app.get("/v1/whatsapp/numbers", Some(&app.token)).await;
    assert_eq!(numbers.status(), StatusCode::OK);
}
