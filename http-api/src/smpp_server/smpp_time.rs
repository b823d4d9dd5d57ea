//! SMPP 3.4 §7.1 time fields: absolute `YYMMDDhhmmsstnnp` (p `+`/`-`: quarter hours ahead of
//! or behind UTC) and relative `YYMMDDhhmmss000R`, as milliseconds since the epoch.

use sairex_store::model::Millis;

fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(m).unwrap_or(1);
    let d = i64::try_from(d).unwrap_or(1);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The instant a time field names; `Ok(None)` for an empty field, `Err(())` for a malformed
/// one.
pub(crate) fn parse(field: &[u8], now: Millis) -> Result<Option<Millis>, ()> {
    if field.is_empty() {
        return Ok(None);
    }
    if field.len() != 16 {
        return Err(());
    }
    let n = |r: std::ops::Range<usize>| field.get(r).and_then(digits).ok_or(());
    let (yy, mo, dd, hh, mi, ss) = (
        n(0..2)?,
        n(2..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
    );
    match field[15] {
        b'R' => {
            let secs = ((yy * 365 + mo * 30 + dd) * 24 + hh) * 3600 + mi * 60 + ss;
            Ok(Some(now.saturating_add(secs.saturating_mul(1000))))
        }
        sign @ (b'+' | b'-') => {
            let tenths = n(12..13)?;
            let quarters = n(13..15)?;
            if !(1..=12).contains(&mo) || !(1..=31).contains(&dd) || hh > 23 || mi > 59 || ss > 59 {
                return Err(());
            }
            let year = 2000 + i64::try_from(yy).map_err(|_| ())?;
            let days = days_from_civil(year, mo, dd);
            let local = days * 86_400 + i64::try_from(hh * 3600 + mi * 60 + ss).map_err(|_| ())?;
            let offset = i64::try_from(quarters * 900).map_err(|_| ())?;
            // `+`: local time is ahead of UTC.
            let utc = if sign == b'+' {
                local - offset
            } else {
                local + offset
            };
            let ms = utc * 1000 + i64::try_from(tenths * 100).map_err(|_| ())?;
            Ok(Some(Millis::try_from(ms).map_err(|_| ())?))
        }
        _ => Err(()),
    }
}

/// An instant as an absolute time field in UTC (`YYMMDDhhmmss000+`), for query_sm_resp.
pub(crate) fn format(ms: Millis) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}000+",
        y.rem_euclid(100),
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative() {
        // 2026-03-01 09:00:00 UTC = 1772355600 s.
        assert_eq!(parse(b"260301090000000+", 0), Ok(Some(1_772_355_600_000)));
        // 14:00 at UTC+5 (20 quarter hours) is 09:00 UTC.
        assert_eq!(parse(b"260301140000020+", 0), Ok(Some(1_772_355_600_000)));
        assert_eq!(
            parse(b"000001000000000R", 1000),
            Ok(Some(1000 + 86_400_000))
        );
        assert_eq!(parse(b"", 5), Ok(None));
        assert!(parse(b"261301090000000+", 0).is_err());
        assert!(parse(b"2603010900", 0).is_err());
        assert_eq!(format(1_772_355_600_000), "260301090000000+");
    }
}
