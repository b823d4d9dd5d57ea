//! Conversions of single TOML values into checked settings. Each gives the [`Problem`] to
//! report: [`Problem::WrongType`] for a value of the wrong TOML type, else
//! [`Problem::InvalidValue`], with the same "expected ..." text for both.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use crate::error::Problem;
use crate::model::OrgRef;
use crate::secret::Secret;
use crate::walk::describe;

fn wrong_type(expected: impl Into<String>, value: &DeValue<'_>) -> Problem {
    Problem::WrongType {
        expected: expected.into(),
        found: describe(value, false),
    }
}

fn invalid(expected: impl Into<String>, value: &DeValue<'_>) -> Problem {
    Problem::InvalidValue {
        expected: expected.into(),
        found: describe(value, false),
    }
}

/// A string.
pub(crate) fn string<'v>(value: &'v DeValue<'_>, expected: &str) -> Result<&'v str, Problem> {
    match value {
        DeValue::String(s) => Ok(s.as_ref()),
        other => Err(wrong_type(expected, other)),
    }
}

/// A string that is not empty (nor only spaces), at most `max` characters.
pub(crate) fn name(value: &DeValue<'_>, max: usize) -> Result<String, Problem> {
    let expected = format!("a non-empty string of at most {max} characters");
    let s = string(value, &expected)?;
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(invalid(expected, value));
    }
    Ok(s.to_owned())
}

/// An SMPP C-octet string field: printable ASCII, `min..=max` characters.
pub(crate) fn smpp_text(value: &DeValue<'_>, min: usize, max: usize) -> Result<String, Problem> {
    let expected = if min == 0 {
        format!("a string of at most {max} printable ASCII characters")
    } else {
        format!("a string of {min} to {max} printable ASCII characters")
    };
    let s = string(value, &expected)?;
    let ok = (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(invalid(expected, value))
    }
}

/// A boolean.
pub(crate) fn boolean(value: &DeValue<'_>) -> Result<bool, Problem> {
    match value {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(wrong_type("true or false", other)),
    }
}

/// An integer in `min..=max`, converted to `T` (whose range contains `min..=max`).
pub(crate) fn int_in<T: TryFrom<i64>>(
    value: &DeValue<'_>,
    min: i64,
    max: i64,
) -> Result<T, Problem> {
    let expected = format!("an integer {min}..={max}");
    let DeValue::Integer(int) = value else {
        return Err(wrong_type(expected, value));
    };
    i64::from_str_radix(int.as_str(), int.radix())
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| invalid(expected, value))
}

/// A rate limit: 0 means none.
pub(crate) fn limit(value: &DeValue<'_>) -> Result<Option<NonZeroU32>, Problem> {
    int_in::<u32>(value, 0, i64::from(u32::MAX)).map(NonZeroU32::new)
}

/// A duration written like `"30s"`, `"100ms"` or `"1m 30s"`, in `min..=max`.
pub(crate) fn duration_in(
    value: &DeValue<'_>,
    min: Duration,
    max: Duration,
) -> Result<Duration, Problem> {
    let expected = format!(
        "a duration {}..={} such as \"30s\" or \"250ms\"",
        humantime::format_duration(min),
        humantime::format_duration(max)
    );
    let s = string(value, &expected)?;
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|d| (min..=max).contains(d))
        .ok_or_else(|| invalid(expected, value))
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A size in bytes: an integer, or a string with a unit (`"1MiB"`, `"512 KiB"`, `"2MB"`), in
/// `min..=max`.
pub(crate) fn size_in(value: &DeValue<'_>, min: u64, max: u64) -> Result<u64, Problem> {
    let expected = format!(
        "a size {}..={} such as \"1MiB\", or a number of bytes",
        format_size(min),
        format_size(max)
    );
    let bytes = match value {
        DeValue::Integer(_) => int_in::<u64>(value, 0, i64::MAX).ok(),
        DeValue::String(s) => parse_size(s),
        other => return Err(wrong_type(expected, other)),
    };
    bytes
        .filter(|b| (min..=max).contains(b))
        .ok_or_else(|| invalid(expected, value))
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => KIB,
        "mb" => 1000 * 1000,
        "mib" => MIB,
        "gb" => 1000 * 1000 * 1000,
        "gib" => GIB,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// A size in the largest binary unit that divides it.
fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_owned(),
        b if b.is_multiple_of(GIB) => format!("{}GiB", b / GIB),
        b if b.is_multiple_of(MIB) => format!("{}MiB", b / MIB),
        b if b.is_multiple_of(KIB) => format!("{}KiB", b / KIB),
        b => format!("{b}B"),
    }
}

/// An IP address and port, like `"127.0.0.1:8080"` or `"[::1]:8080"`.
pub(crate) fn socket_addr(value: &DeValue<'_>) -> Result<SocketAddr, Problem> {
    let expected = "an IP address and port such as \"127.0.0.1:8080\" or \"[::]:8080\"";
    let s = string(value, expected)?;
    s.trim().parse().map_err(|_| invalid(expected, value))
}

/// An absolute `http://` or `https://` URL with a host and no query or fragment; returned
/// without a trailing slash.
pub(crate) fn http_url(value: &DeValue<'_>) -> Result<String, Problem> {
    let expected = "an http:// or https:// URL such as \"https://sms.example.com\"";
    let s = string(value, expected)?.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let ok = rest.is_some_and(|rest| {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        !host.is_empty()
            && !rest.contains(['?', '#', ' ', '@'])
            && rest.chars().all(|c| c.is_ascii_graphic())
    });
    if ok {
        Ok(s.trim_end_matches('/').to_owned())
    } else {
        Err(invalid(expected, value))
    }
}

/// One of a few words.
pub(crate) fn one_of<T: Copy>(value: &DeValue<'_>, choices: &[(&str, T)]) -> Result<T, Problem> {
    let words: Vec<String> = choices.iter().map(|(w, _)| format!("{w:?}")).collect();
    let expected = format!("one of {}", words.join(", "));
    let s = string(value, &expected)?;
    choices
        .iter()
        .find(|(word, _)| *word == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| invalid(expected, value))
}

/// Millionths in one unit, the store's cost precision.
const MICROS_PER_UNIT: i64 = 1_000_000;

/// A non-negative amount with at most 6 decimals (`"0.50"`, `"2"`, `0.5`, `2`), in millionths.
pub(crate) fn decimal_micros(value: &DeValue<'_>) -> Result<i64, Problem> {
    let expected = "a non-negative amount with at most 6 decimals such as \"0.50\"";
    let text = match value {
        DeValue::String(s) => s.trim().to_owned(),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
        DeValue::Float(f) => f.as_str().to_owned(),
        other => return Err(wrong_type(expected, other)),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 6 {
        return Err(invalid(expected, value));
    }
    let whole: i64 = whole.parse().map_err(|_| invalid(expected, value))?;
    let fraction_micros: i64 = format!("{fraction:0<6}")
        .parse()
        .map_err(|_| invalid(expected, value))?;
    whole
        .checked_mul(MICROS_PER_UNIT)
        .and_then(|w| w.checked_add(fraction_micros))
        .ok_or_else(|| invalid(expected, value))
}

/// An organization: an id (integer, at least 1) or a name (non-empty string).
pub(crate) fn org_ref(value: &DeValue<'_>) -> Result<OrgRef, Problem> {
    let expected = "an organization id (an integer from 1) or name (a non-empty string)";
    match value {
        DeValue::Integer(_) => int_in::<u64>(value, 1, i64::MAX)
            .map(OrgRef::Id)
            .map_err(|_| invalid(expected, value)),
        DeValue::String(s) if !s.trim().is_empty() => Ok(OrgRef::Name(s.trim().to_owned())),
        DeValue::String(_) => Err(invalid(expected, value)),
        other => Err(wrong_type(expected, other)),
    }
}

/// A phone number or short code: 3 to 15 digits, optionally after a `+`; an integer is taken
/// as its digits.
pub(crate) fn number(value: &DeValue<'_>) -> Result<String, Problem> {
    let expected = "a number or short code of 3 to 15 digits, optionally with a leading +";
    let text = match value {
        DeValue::String(s) => s.trim().to_owned(),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
        other => return Err(wrong_type(expected, other)),
    };
    let digits = text.strip_prefix('+').unwrap_or(&text);
    if (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text)
    } else {
        Err(invalid(expected, value))
    }
}

/// A secret string of `min..=max` characters. Problems show its type or length, never it.
pub(crate) fn secret(value: &DeValue<'_>, min: usize, max: usize) -> Result<Secret, Problem> {
    let expected = if min == 0 {
        format!("a secret string of at most {max} characters")
    } else {
        format!("a secret string of {min} to {max} characters")
    };
    let DeValue::String(s) = value else {
        return Err(Problem::WrongType {
            expected,
            found: describe(value, true),
        });
    };
    let secret = Secret::new(s.as_ref());
    let count = secret.char_count();
    if (min..=max).contains(&count) {
        Ok(secret)
    } else {
        Err(Problem::InvalidValue {
            expected,
            found: format!("{count} characters"),
        })
    }
}

/// A file or directory path (a non-empty string).
pub(crate) fn path(value: &DeValue<'_>) -> Result<PathBuf, Problem> {
    let expected = "a non-empty path";
    let s = string(value, expected)?;
    if s.trim().is_empty() {
        Err(invalid(expected, value))
    } else {
        Ok(PathBuf::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one TOML value; the text is leaked so the value can outlive it (tests only).
    fn value(toml_value: &str) -> DeValue<'static> {
        let text: &'static str = Box::leak(toml_value.to_owned().into_boxed_str());
        DeValue::parse(text).unwrap().into_inner()
    }

    #[test]
    fn sizes() {
        assert_eq!(size_in(&value("\"1MiB\""), 1, GIB), Ok(MIB));
        assert_eq!(size_in(&value("\"512 KiB\""), 1, GIB), Ok(512 * KIB));
        assert_eq!(size_in(&value("\"2mb\""), 1, GIB), Ok(2_000_000));
        assert_eq!(size_in(&value("4096"), 1, GIB), Ok(4096));
        let err = size_in(&value("\"1 parsec\""), KIB, 64 * MIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a size 1KiB..=64MiB such as \"1MiB\", or a number of bytes, found \"1 parsec\""
        );
        assert!(matches!(
            size_in(&value("\"1GiB\""), KIB, 64 * MIB),
            Err(Problem::InvalidValue { .. })
        ));
        assert!(matches!(
            size_in(&value("true"), KIB, 64 * MIB),
            Err(Problem::WrongType { .. })
        ));
    }

    #[test]
    fn durations() {
        let min = Duration::from_millis(1);
        let max = Duration::from_secs(3600);
        assert_eq!(
            duration_in(&value("\"1m 30s\""), min, max),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            duration_in(&value("\"250ms\""), min, max),
            Ok(Duration::from_millis(250))
        );
        assert!(matches!(
            duration_in(&value("\"2h\""), min, max),
            Err(Problem::InvalidValue { .. })
        ));
        // An integer has no unit: refused rather than guessed.
        assert!(matches!(
            duration_in(&value("30"), min, max),
            Err(Problem::WrongType { .. })
        ));
    }

    #[test]
    fn integers_in_range_any_radix() {
        assert_eq!(int_in::<u16>(&value("0x10"), 1, 65535), Ok(16));
        assert_eq!(int_in::<u16>(&value("65535"), 1, 65535), Ok(65535));
        let err = int_in::<u16>(&value("70000"), 1, 65535).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an integer 1..=65535, found 70000"
        );
        let err = int_in::<u16>(&value("\"abc\""), 1, 65535).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an integer 1..=65535, found \"abc\""
        );
    }

    #[test]
    fn amounts_in_micros() {
        assert_eq!(decimal_micros(&value("\"0.50\"")), Ok(500_000));
        assert_eq!(decimal_micros(&value("\"2\"")), Ok(2_000_000));
        assert_eq!(decimal_micros(&value("0.000001")), Ok(1));
        assert_eq!(decimal_micros(&value("3")), Ok(3_000_000));
        assert!(decimal_micros(&value("\"0.1234567\"")).is_err());
        assert!(decimal_micros(&value("\"-1\"")).is_err());
        assert!(decimal_micros(&value("\".5\"")).is_err());
    }

    #[test]
    fn urls_numbers_addresses() {
        assert_eq!(
            http_url(&value("\"https://sms.example.com/\"")),
            Ok("https://sms.example.com".to_owned())
        );
        assert!(http_url(&value("\"ftp://x\"")).is_err());
        assert!(http_url(&value("\"https://\"")).is_err());
        assert!(http_url(&value("\"https://a.example/?q=1\"")).is_err());
        assert_eq!(number(&value("8001")), Ok("8001".to_owned()));
        assert_eq!(
            number(&value("\"+923001234567\"")),
            Ok("+923001234567".to_owned())
        );
        assert!(number(&value("\"12\"")).is_err());
        assert!(number(&value("\"80a1\"")).is_err());
        assert!(socket_addr(&value("\"[::1]:8080\"")).is_ok());
        assert!(socket_addr(&value("\"localhost:8080\"")).is_err());
    }

    #[test]
    fn secret_problems_never_show_the_value() {
        let err = secret(&value("\"hunter2\""), 16, 256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a secret string of 16 to 256 characters, found 7 characters"
        );
        let err = secret(&value("12345678"), 16, 256).unwrap_err();
        assert!(!err.to_string().contains("12345678"));
    }
}
