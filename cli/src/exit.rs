/// How a command ended; each way has its own process exit code so scripts can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done (for `connect`: the channel is connected).
    Ok,
    /// 1: an API or connection error (the message says which code or which URL).
    Error,
    /// 2: a usage error, such as a missing token.
    Usage,
    /// 3: the pairing failed (`failed`, other than expiry).
    Failed,
    /// 4: the pairing window closed without a scan (`failed` `expired`).
    Expired,
    /// 5: the device was unlinked right away (`disconnected`).
    Disconnected,
    /// 6: the session was lost (the server restarted or forgot it); start again.
    Lost,
    /// 130: interrupted with Ctrl-C (the session was cancelled on the server).
    Interrupted,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::Error => 1,
            Self::Usage => 2,
            Self::Failed => 3,
            Self::Expired => 4,
            Self::Disconnected => 5,
            Self::Lost => 6,
            Self::Interrupted => 130,
        }
    }
}
