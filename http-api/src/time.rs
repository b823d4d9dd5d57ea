//! Times on the wire: RFC 3339 in UTC with milliseconds out; RFC 3339 with `Z` or an offset,
//! or a bare date, in.

use std::time::{Duration, UNIX_EPOCH};

use sairex_store::model::Millis;

/// `2026-02-15T10:30:00.000Z`.
pub(crate) fn format(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Parses `2026-03-01T09:00:00Z`, `2026-03-01T14:00:00+05:00`, fractions of a second, or a
/// bare date `2026-03-01` (midnight UTC). `None` for anything else or a time before 1970.
pub(crate) fn parse(text: &str) -> Option<Millis> {
    let text = text.trim();
    if text.len() == 10 {
        return parse(&format!("{text}T00:00:00Z"));
    }
    let bytes = text.as_bytes();
    let n = bytes.len();
    let (base, offset_minutes): (String, i64) =
        if n > 6 && matches!(bytes[n - 6], b'+' | b'-') && bytes[n - 3] == b':' {
            let hours: i64 = text.get(n - 5..n - 3)?.parse().ok()?;
            let minutes: i64 = text.get(n - 2..)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if bytes[n - 6] == b'-' { -1 } else { 1 };
            (
                format!("{}Z", text.get(..n - 6)?),
                sign * (hours * 60 + minutes),
            )
        } else if text.ends_with('Z') || text.ends_with('z') {
            (format!("{}Z", &text[..n - 1]), 0)
        } else {
            return None;
        };
    let at = humantime::parse_rfc3339_weak(&base).ok()?;
    let utc_ms = i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Millis::try_from(utc_ms - offset_minutes * 60_000).ok()
}

/// How far in the past a `scheduledAt` may be (clock skew between client and gateway): such
/// a send goes out now. Further back is refused: "send at 2020" is a mistake, not "now".
pub(crate) const SCHEDULE_PAST_TOLERANCE_MS: Millis = 5 * 60 * 1000;
/// How far ahead a `scheduledAt` may be: one year.
pub(crate) const SCHEDULE_MAX_AHEAD_MS: Millis = 366 * 24 * 3600 * 1000;

/// Parses a `scheduledAt` and checks it is neither in the past (beyond
/// [`SCHEDULE_PAST_TOLERANCE_MS`]) nor more than [`SCHEDULE_MAX_AHEAD_MS`] ahead.
pub(crate) fn parse_schedule(text: &str, now: Millis) -> Result<Millis, crate::ApiError> {
    let field = |message: String| {
        let mut e = crate::ApiError::bad_request("INVALID_SCHEDULE", message);
        e.field = Some("scheduledAt".into());
        e
    };
    let at = parse(text).ok_or_else(|| {
        field("scheduledAt: an RFC 3339 time such as 2026-03-01T09:00:00Z or 2026-03-01T14:00:00+05:00".to_owned())
    })?;
    if at.saturating_add(SCHEDULE_PAST_TOLERANCE_MS) < now {
        return Err(field(format!(
            "scheduledAt: {} is in the past (now is {}); leave it out to send now",
            format(at),
            format(now)
        )));
    }
    if at > now.saturating_add(SCHEDULE_MAX_AHEAD_MS) {
        return Err(field(format!(
            "scheduledAt: {} is more than 366 days ahead",
            format(at)
        )));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let t = parse("2026-03-01T09:00:00Z").unwrap();
        assert_eq!(format(t), "2026-03-01T09:00:00.000Z");
        assert_eq!(parse("2026-03-01T14:00:00+05:00"), Some(t));
        assert_eq!(parse("2026-03-01T04:30:00-04:30"), Some(t));
        assert_eq!(parse("2026-03-01T09:00:00.250Z"), Some(t + 250));
        assert_eq!(parse("2026-03-01"), Some(t - 9 * 3_600_000));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("2026-03-01T09:00:00"), None);
        assert_eq!(parse("2026-03-01T09:00:00+99:00"), None);
    }
}
