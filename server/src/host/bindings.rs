use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::random_hex;
use crate::sync::lock;

/// The cookie that binds a browser to the sessions it started. It is a random id, not a token:
/// it grants nothing by itself, only access to those sessions through this host.
pub const BROWSER_COOKIE: &str = "kbai_widget";

/// Which browser started which session, for as long as a session can live.
pub struct Bindings {
    ttl: Duration,
    by_session: Mutex<HashMap<String, (String, Instant)>>,
}

impl Bindings {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, by_session: Mutex::new(HashMap::new()) }
    }

    /// A fresh browser id for a browser without one.
    pub fn new_browser() -> String {
        random_hex(16)
    }

    /// Records that `browser` started `session`; forgets expired bindings on the way.
    pub fn bind(&self, session: &str, browser: &str) {
        let now = Instant::now();
        let mut map = lock(&self.by_session);
        map.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        map.insert(session.to_owned(), (browser.to_owned(), now));
    }

    /// Whether `browser` started `session` (and the binding has not expired).
    pub fn is_bound(&self, session: &str, browser: &str) -> bool {
        let map = lock(&self.by_session);
        map.get(session).is_some_and(|(owner, at)| owner == browser && at.elapsed() < self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_the_browser_that_started_it() {
        let bindings = Bindings::new(Duration::from_secs(60));
        let (mine, theirs) = (Bindings::new_browser(), Bindings::new_browser());
        bindings.bind("qrs_1", &mine);
        assert!(bindings.is_bound("qrs_1", &mine));
        assert!(!bindings.is_bound("qrs_1", &theirs));
        assert!(!bindings.is_bound("qrs_2", &mine));
    }

    #[test]
    fn bindings_expire() {
        let bindings = Bindings::new(Duration::ZERO);
        bindings.bind("qrs_1", "b");
        assert!(!bindings.is_bound("qrs_1", "b"));
    }
}
