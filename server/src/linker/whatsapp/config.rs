//! [`WhatsappConfig`]: how the whatsapp linker runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the whatsapp linker runs.
#[derive(Debug, Clone)]
pub struct WhatsappConfig {
    /// Where device files live (`<data-dir>/devices`).
    pub devices_dir: PathBuf,
    /// No QR from WhatsApp by then: `failed` `whatsapp_unreachable`.
    pub connect_timeout: Duration,
    /// How long to wait for the push name after `Connected`.
    pub push_name_wait: Duration,
    /// Channels resumed at once at start.
    pub resume_concurrency: usize,
    /// Tests only: the WebSocket URL instead of WhatsApp's.
    pub ws_url: Option<String>,
    /// Tests only: a WhatsApp Web version, which skips fetching it over HTTPS.
    pub version: Option<(u32, u32, u32)>,
    /// How long a pairing code lasts before the server asks WhatsApp for the next one:
    /// WhatsApp's own validity (whatsapp-rust 0.7.0, `PAIR_CODE_VALIDITY_SECS`), shorter only in
    /// tests.
    pub code_validity: Duration,
}

impl WhatsappConfig {
    pub fn new(data_dir: &Path, connect_timeout: Duration) -> Self {
        Self {
            devices_dir: super::DeviceFiles::in_data_dir(data_dir).dir().to_path_buf(),
            connect_timeout,
            push_name_wait: Duration::from_secs(3),
            resume_concurrency: 4,
            ws_url: None,
            version: None,
            code_validity: Duration::from_secs(180),
        }
    }
}
