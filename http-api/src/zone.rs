//! Organizations' time zones (IANA names, read with jiff from the system's tz database, as
//! quiet hours are): where their days begin for analytics, and the offset of the times in
//! their CSV exports.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use sairex_store::model::{Millis, Organization};

use crate::country_zones::default_zone;
use crate::error::ApiError;

/// A `timezone` given by a client, checked: a name the tz database knows.
pub(crate) fn check(field: &str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || TimeZone::get(name).is_err() {
        return Err(ApiError::invalid(format!(
            "{field}: an IANA time zone such as Asia/Karachi, not {raw:?}"
        )));
    }
    Ok(name.to_owned())
}

/// The zone an organization of `country` gets when it names none (UTC when the tz database
/// has none for the country).
pub(crate) fn default_for(country: &str) -> String {
    default_zone(country).unwrap_or("UTC").to_owned()
}

/// The organization's zone name: its own, else its country's.
pub(crate) fn name_of(org: &Organization) -> String {
    match org.time_zone.trim() {
        "" => default_for(&org.default_country),
        name => name.to_owned(),
    }
}

/// The organization's zone (UTC if its stored name is no longer known to the system).
pub(crate) fn of(org: &Organization) -> TimeZone {
    let name = name_of(org);
    TimeZone::get(&name).unwrap_or_else(|e| {
        tracing::warn!(zone = %name, error = %e, "unknown organization time zone; using UTC");
        TimeZone::UTC
    })
}

fn zoned(ms: Millis, zone: &TimeZone) -> Zoned {
    let ts = i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::MAX);
    ts.to_zoned(zone.clone())
}

/// `2026-02-15T15:30:00.000+05:00`: RFC 3339 (ISO 8601) with the zone's offset at that time.
pub(crate) fn format(ms: Millis, zone: &TimeZone) -> String {
    zoned(ms, zone)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// `2026-02-15 15:30:00 PKT`: for people (the web console).
pub(crate) fn display(ms: Millis, zone: &TimeZone) -> String {
    zoned(ms, zone).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// A wall-clock time typed in the zone (`2026-02-15T15:30` or with seconds, as an HTML
/// `datetime-local` input sends it) as RFC 3339 with the zone's offset then; `None` when it
/// does not read as one.
pub(crate) fn from_local(raw: &str, zone: &TimeZone) -> Option<String> {
    let civil: jiff::civil::DateTime = raw.trim().parse().ok()?;
    let zoned = civil.to_zoned(zone.clone()).ok()?;
    Some(zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// `2026-02-15`: the local date at `ms`.
pub(crate) fn date(ms: Millis, zone: &TimeZone) -> String {
    zoned(ms, zone).strftime("%Y-%m-%d").to_string()
}

/// The start of the local day `days_back` days before the one holding `now` (a day is a
/// calendar day, 23 or 25 hours across a DST change).
pub(crate) fn day_start(now: Millis, days_back: i64, zone: &TimeZone) -> Millis {
    let local = zoned(now, zone);
    local
        .date()
        .checked_sub(jiff::Span::new().days(days_back))
        .ok()
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .and_then(|z| Millis::try_from(z.timestamp().as_millisecond()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karachi_days_start_at_local_midnight() {
        let zone = TimeZone::get("Asia/Karachi").unwrap();
        // 2026-03-01T20:30:00Z is 01:30 on 2 March in Karachi.
        let t = crate::time::parse("2026-03-01T20:30:00Z").unwrap();
        assert_eq!(format(t, &zone), "2026-03-02T01:30:00.000+05:00");
        assert_eq!(date(t, &zone), "2026-03-02");
        assert_eq!(
            day_start(t, 0, &zone),
            crate::time::parse("2026-03-01T19:00:00Z").unwrap()
        );
        assert_eq!(
            day_start(t, 6, &zone),
            crate::time::parse("2026-02-23T19:00:00Z").unwrap()
        );
        assert_eq!(format(t, &TimeZone::UTC), "2026-03-01T20:30:00.000+00:00");
    }

    #[test]
    fn console_times_read_and_show_in_the_zone() {
        let karachi = TimeZone::get("Asia/Karachi").unwrap();
        assert_eq!(
            from_local("2026-02-15T15:30", &karachi).as_deref(),
            Some("2026-02-15T15:30:00+05:00")
        );
        let ms = crate::time::parse("2026-02-15T10:30:00Z").unwrap();
        assert_eq!(display(ms, &karachi), "2026-02-15 15:30:00 PKT");
        assert_eq!(from_local("tomorrow", &karachi), None);
    }

    #[test]
    fn names_are_checked_and_defaulted() {
        assert_eq!(check("timezone", " Asia/Karachi ").unwrap(), "Asia/Karachi");
        assert!(check("timezone", "Mars/Olympus").is_err());
        assert!(check("timezone", "").is_err());
        assert_eq!(default_for("PK"), "Asia/Karachi");
        assert_eq!(default_for("ZZ"), "UTC");
    }
}
