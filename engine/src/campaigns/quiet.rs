//! Quiet hours: the daily window of an organization's local time in which promotional traffic
//! waits. The zone is an IANA name read from the system's tz database (jiff); an empty or
//! unknown zone is UTC.

use sairex_store::model::{Millis, QuietHours};

/// Whether `name` is a time zone quiet hours can use: empty (UTC) or an IANA name the
/// system's tz database knows (an unknown one would silently be UTC).
pub fn is_known_time_zone(name: &str) -> bool {
    let name = name.trim();
    name.is_empty() || jiff::tz::TimeZone::get(name).is_ok()
}

/// Whether `now` falls in the organization's quiet hours. The window is `[start, end)` in
/// minutes after local midnight and wraps midnight when `end < start`; `start == end` is no
/// window at all.
pub fn in_quiet_hours(quiet: &QuietHours, now: Millis) -> bool {
    if quiet.start_minute == quiet.end_minute {
        return false;
    }
    let zone = match quiet.time_zone.trim() {
        "" => jiff::tz::TimeZone::UTC,
        name => jiff::tz::TimeZone::get(name).unwrap_or_else(|e| {
            tracing::warn!(zone = name, error = %e, "unknown quiet-hours time zone; using UTC");
            jiff::tz::TimeZone::UTC
        }),
    };
    let Ok(at) = jiff::Timestamp::from_millisecond(i64::try_from(now).unwrap_or(i64::MAX)) else {
        return false;
    };
    let local = at.to_zoned(zone);
    let minute =
        u16::try_from(local.hour()).unwrap_or(0) * 60 + u16::try_from(local.minute()).unwrap_or(0);
    let (start, end) = (quiet.start_minute, quiet.end_minute);
    if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Millis {
        let ts: jiff::Timestamp = rfc3339.parse().unwrap();
        u64::try_from(ts.as_millisecond()).unwrap()
    }

    #[test]
    fn windows_in_local_time_wrap_midnight() {
        // 21:00 to 08:00 in Karachi (UTC+5).
        let quiet = QuietHours {
            start_minute: 21 * 60,
            end_minute: 8 * 60,
            time_zone: "Asia/Karachi".into(),
        };
        assert!(in_quiet_hours(&quiet, at("2026-03-01T17:30:00Z"))); // 22:30 local
        assert!(in_quiet_hours(&quiet, at("2026-03-01T01:00:00Z"))); // 06:00 local
        assert!(!in_quiet_hours(&quiet, at("2026-03-01T03:00:00Z"))); // 08:00 local
        assert!(!in_quiet_hours(&quiet, at("2026-03-01T10:00:00Z"))); // 15:00 local
        let day = QuietHours {
            start_minute: 12 * 60,
            end_minute: 13 * 60,
            time_zone: String::new(),
        };
        assert!(in_quiet_hours(&day, at("2026-03-01T12:59:00Z")));
        assert!(!in_quiet_hours(&day, at("2026-03-01T13:00:00Z")));
        let none = QuietHours::default();
        assert!(!in_quiet_hours(&none, at("2026-03-01T12:00:00Z")));
    }
}
