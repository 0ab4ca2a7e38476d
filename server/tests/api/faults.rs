//! Faults: a store that cannot be written.

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ErrorCode, FailureCode, StreamEvent};
use keebai_test_support::*;
use reqwest::StatusCode;
use serde_json::json;

/// Makes the SQLite files unwritable, as a read-only mount or a failing disk would, with
/// `chattr +i`: the server already holds them open, so file modes would not stop it. Needs root
/// (or password-less sudo), as CI has, and a file system with the immutable flag. The
/// shared-memory file stays writable: SQLite maps it, and an immutable mapping is a SIGBUS, not
/// an error. Undone on drop.
struct Unwritable(Vec<std::path::PathBuf>);

impl Unwritable {
    /// `Err` says why this machine cannot make files immutable (the test then skips).
    fn store_of(app: &TestApp) -> Result<Self, String> {
        let probe = app.data_dir().join("immutable-probe");
        std::fs::write(&probe, b"").map_err(|e| e.to_string())?;
        chattr("+i", &probe)?;
        chattr("-i", &probe)?;
        let _ = std::fs::remove_file(&probe);
        let files: Vec<_> = ["keebai.db", "keebai.db-wal"]
            .iter()
            .map(|name| app.data_dir().join(name))
            .filter(|path| path.exists())
            .collect();
        for file in &files {
            chattr("+i", file)?;
        }
        Ok(Self(files))
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        for file in &self.0 {
            chattr("-i", file).expect("the flag set a moment ago can be cleared");
        }
    }
}

fn chattr(flag: &str, path: &std::path::Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = std::process::Command::new(if root { "chattr" } else { "sudo" });
    if !root {
        command.args(["-n", "chattr"]);
    }
    let output = command.arg(flag).arg(path).stdin(std::process::Stdio::null()).output();
    match output {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`chattr {flag}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("`chattr` could not run: {error}")),
    }
}

#[tokio::test]
async fn an_unwritable_store_answers_503_and_recovers_by_itself() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let text = json!({"channel_id": channel_id, "to": "+14155550100", "text": "Hola"});

    let blocked = match Unwritable::store_of(&app) {
        Ok(blocked) => blocked,
        Err(why) => {
            // CI runs as root; elsewhere the test says why it could not run rather than fail.
            eprintln!("SKIPPED an_unwritable_store_answers_503_and_recovers_by_itself: {why}");
            return;
        }
    };
    let response = app.send_text(&app.token, text.clone()).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable).await;
    // Nothing was sent for a message the server could not record.
    assert!(app.sim_inbox(&channel_id).await.data.is_empty());
    // Reads still work, also on connections opened during the fault (8 at once make the pool
    // open more: SQLite opens those read-only).
    let reads = futures::future::join_all((0..8).map(|_| listed_phones(&app))).await;
    assert!(reads.iter().all(|phones| phones == &[PHONE]));
    // Starting a session needs no write: it still works. Linking a phone needs one: the stream
    // says it failed, rather than `connected` for a channel that was never stored.
    let (_, mut stream, qr) = app.session_showing_qr().await;
    app.scan_ok(&qr, OTHER_PHONE, ScanOutcome::Success).await;
    assert_eq!(stream.next_event().await, StreamEvent::Connecting);
    match stream.next_event().await {
        StreamEvent::Failed(failed) => assert_eq!(failed.code, FailureCode::Internal),
        other => panic!("expected failed, got {other:?}"),
    }

    drop(blocked);
    // Recovered without a restart: every write works at once, on whichever pooled connection
    // serves it (none of the read-only ones was kept).
    let sends = futures::future::join_all((0..8).map(|_| app.send_text(&app.token, text.clone())));
    for response in sends.await {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    // Exactly those went out: the refused one sent nothing.
    assert_eq!(app.sim_inbox(&channel_id).await.data.len(), 8);
    // The phone that failed to link left no channel behind, and links now.
    assert_eq!(listed_phones(&app).await, [PHONE]);
    app.pair(OTHER_PHONE).await;
    assert_eq!(listed_phones(&app).await, [PHONE, OTHER_PHONE]);
}

const OTHER_PHONE: &str = "+56987654321";

async fn listed_phones(app: &TestApp) -> Vec<String> {
    app.numbers_ok().await.into_iter().map(|n| n.phone_number).collect()
}
