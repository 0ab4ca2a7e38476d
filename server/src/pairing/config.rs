use std::time::Duration;

/// The engine's timing and limits.
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// How long a session shows codes (`expires_in`): 300 s.
    pub window: Duration,
    /// How long a terminal event stays replayable before the id answers 404: 60 s.
    pub replay: Duration,
    /// How long linking may take after the phone scanned before the session fails: 60 s.
    pub link_timeout: Duration,
    /// Live (not yet terminal) sessions one account may hold at once.
    pub max_sessions_per_account: usize,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            replay: Duration::from_secs(60),
            link_timeout: Duration::from_secs(60),
            max_sessions_per_account: 1000,
        }
    }
}
