//! Postgres databases for the tests of the Postgres backend: each test gets a fresh, empty
//! database of its own on the server that `KEEBAI_TEST_DATABASE_URL` names. The test command
//! starts a throwaway server for the run (`scripts/postgres.sh`); without one these tests fail
//! with a message saying how to start it, and never skip.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection};

/// The variable that names the test server (`postgres://user@host:port/postgres`).
pub const DATABASE_URL_VAR: &str = "KEEBAI_TEST_DATABASE_URL";

/// The URL of a new, empty database on the test server.
pub async fn fresh_database() -> SecretString {
    let server = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set, and this test needs a Postgres server. \
             ./scripts/test.sh starts a throwaway one; by hand: \
             eval \"$(scripts/postgres.sh start)\" (and scripts/postgres.sh stop \
             \"$KEEBAI_TEST_POSTGRES_DIR\" afterwards)"
        )
    });
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let name = format!(
        "keebai_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test Postgres ({DATABASE_URL_VAR}): {e}"));
    // The name is made of digits and underscores above, so the statement is safe to build.
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    let _ = admin.close().await;
    let mut url = reqwest::Url::parse(&server).expect("KEEBAI_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    SecretString::from(url.to_string())
}

/// A Postgres server of one test's own (`scripts/postgres.sh start`), for tests that restart
/// it; stopped and deleted when dropped.
pub struct OwnPostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: SecretString,
    dir: String,
}

fn postgres_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

impl OwnPostgres {
    pub fn start() -> Self {
        let out = std::process::Command::new("bash")
            .arg(postgres_script())
            .arg("start")
            .output()
            .expect("bash runs scripts/postgres.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8(out.stdout).expect("the script prints text");
        let value = |var: &str| {
            printed
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {var}=")))
                .unwrap_or_else(|| panic!("scripts/postgres.sh prints {var}"))
                .trim_matches('\'')
                .to_owned()
        };
        Self {
            url: SecretString::from(value("KEEBAI_TEST_DATABASE_URL")),
            dir: value("KEEBAI_TEST_POSTGRES_DIR"),
        }
    }

    /// Restarts the server (fast shutdown: every connection is dropped) and waits until it
    /// accepts connections again.
    pub fn restart(&self) {
        let out = std::process::Command::new("bash")
            .arg(postgres_script())
            .args(["restart", &self.dir])
            .output()
            .expect("bash runs scripts/postgres.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(postgres_script())
            .args(["stop", &self.dir])
            .output();
    }
}
