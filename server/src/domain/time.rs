use std::time::Duration;
use time::OffsetDateTime;
use time::macros::format_description;

/// Formats a moment the way every timestamp of the API is written: RFC 3339, UTC, with
/// milliseconds, e.g. `2026-11-24T23:00:00.123Z`.
pub fn rfc3339_millis(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let at = at.to_offset(time::UtcOffset::UTC);
    // Formatting a UTC date with a fixed, valid description only fails for years beyond 9999.
    at.format(&format).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Now, formatted.
pub fn now() -> String {
    rfc3339_millis(OffsetDateTime::now_utc())
}

/// A wall-clock anchor for a tokio clock: converts `tokio::time::Instant`s into wall time, so that
/// timestamps agree with tokio's (possibly paused, in tests) clock.
#[derive(Debug, Clone, Copy)]
pub struct WallAnchor {
    wall: OffsetDateTime,
    instant: tokio::time::Instant,
}

impl WallAnchor {
    pub fn now() -> Self {
        Self { wall: OffsetDateTime::now_utc(), instant: tokio::time::Instant::now() }
    }

    pub fn wall_at(&self, instant: tokio::time::Instant) -> OffsetDateTime {
        let offset: Duration = instant.saturating_duration_since(self.instant);
        self.wall + offset
    }
}

/// A deadline that never comes, for `select!` arms that are disabled.
pub fn never() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        assert_eq!(
            rfc3339_millis(datetime!(2026-11-24 23:00:01.5 UTC)),
            "2026-11-24T23:00:01.500Z"
        );
        assert_eq!(rfc3339_millis(datetime!(2026-11-24 20:00:00 -3)), "2026-11-24T23:00:00.000Z");
    }
}
