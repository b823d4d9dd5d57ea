//! Phone numbers: E.164 normalisation with the `phonenumber` crate; a number written without
//! its country code is read in the organization's default country. Digits of any script
//! (Urdu's ۰-۹, Arabic-Indic ٠-٩, Devanagari, full width ０-９, …) read as ASCII first, as
//! libphonenumber does.

use std::borrow::Cow;
use std::sync::LazyLock;

use phonenumber::country::Id as Country;

use crate::error::ApiError;

/// Longest input considered (E.164 is at most 15 digits; formatting adds a few characters).
const MAX_INPUT: usize = 32;

/// Unicode decimal digits (general category Nd), from the regex crate's Unicode tables.
static DECIMAL_DIGIT: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"^\p{Nd}$").ok());

fn is_decimal_digit(c: char) -> bool {
    let mut buf = [0u8; 4];
    DECIMAL_DIGIT
        .as_ref()
        .is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
}

/// The value of a decimal digit of any script. Unicode keeps each script's digits as one run
/// of ten code points, 0 to 9 in order (and runs of several sets, such as the mathematical
/// digits, are whole sets), so the value is the distance from the start of the run, mod 10.
fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return c.to_digit(10);
    }
    if !is_decimal_digit(c) {
        return None;
    }
    let mut back = 0;
    let mut code = u32::from(c);
    while back < 60 && code > 0 && char::from_u32(code - 1).is_some_and(is_decimal_digit) {
        back += 1;
        code -= 1;
    }
    Some(back % 10)
}

/// `raw` with every decimal digit in ASCII and a full-width plus as `+`; other characters
/// (spaces, dashes, letters) as they were, for the parser to judge.
pub(crate) fn ascii_digits(raw: &str) -> Cow<'_, str> {
    if raw.is_ascii() {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.chars()
            .map(|c| match c {
                '\u{FF0B}' => '+',
                c => digit_value(c)
                    .and_then(|d| char::from_digit(d, 10))
                    .unwrap_or(c),
            })
            .collect(),
    )
}

/// `raw` in E.164 (`+923001234567`), or a 400 naming the problem.
pub(crate) fn normalise(raw: &str, country: Option<Country>) -> Result<String, ApiError> {
    let raw = ascii_digits(raw.trim());
    let raw = raw.as_ref();
    if raw.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_PHONE",
            "to: a phone number is required",
        ));
    }
    // Characters, not bytes: full-width and Arabic-Indic digits take 2 or 3 bytes each.
    if raw.chars().count() > MAX_INPUT {
        return Err(ApiError::bad_request(
            "INVALID_PHONE",
            "to: too long for a phone number",
        ));
    }
    let number = phonenumber::parse(country, raw).map_err(|e| {
        ApiError::bad_request("INVALID_PHONE", format!("to: not a phone number ({e})"))
    })?;
    if !phonenumber::is_valid(&number) {
        return Err(ApiError::bad_request(
            "INVALID_PHONE",
            "to: not a valid phone number (write it in E.164, e.g. +923001234567)",
        ));
    }
    // E.164 is `+`, the country code and the national significant number (with any leading
    // zeros, as Italy's): what `format().mode(E164)` writes, without the regex search for a
    // display format that E.164 then ignores (a tenth of an accept's CPU).
    Ok(format!("+{}{}", number.code().value(), number.national()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_local_and_international() {
        let pk: Country = "PK".parse().unwrap();
        assert_eq!(normalise("+923001234567", None).unwrap(), "+923001234567");
        assert_eq!(normalise("03001234567", Some(pk)).unwrap(), "+923001234567");
        assert_eq!(
            normalise(" +92 300 1234567 ", Some(pk)).unwrap(),
            "+923001234567"
        );
        assert_eq!(
            normalise("0300-1234567", Some(pk)).unwrap(),
            "+923001234567"
        );
        assert!(normalise("03001234567", None).is_err());
        assert!(normalise("12", Some(pk)).is_err());
        assert!(normalise("hello", Some(pk)).is_err());
        assert!(normalise("", Some(pk)).is_err());
    }

    /// The E.164 string is built by hand: it must be exactly what the library's E.164
    /// formatter writes, Italy's leading zero included.
    #[test]
    fn e164_matches_the_library_formatter() {
        let cases = [
            ("+390612345678", None),
            ("06 1234 5678", Some("IT")),
            ("+923001234567", None),
            ("+14155552671", None),
            ("020 7946 0018", Some("GB")),
            ("+2250700000000", None),
            ("030 123456", Some("DE")),
            ("+61 2 9374 4000", None),
        ];
        for (raw, country) in cases {
            let country: Option<Country> = country.map(|c| c.parse().unwrap());
            let ours = normalise(raw, country).unwrap();
            let number = phonenumber::parse(country, raw).unwrap();
            let library = number.format().mode(phonenumber::Mode::E164).to_string();
            assert_eq!(ours, library, "{raw}");
        }
        assert_eq!(normalise("+390612345678", None).unwrap(), "+390612345678");
    }

    #[test]
    fn digits_of_every_script_read_as_ascii() {
        assert_eq!(ascii_digits("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
        assert_eq!(ascii_digits("٠١٢٣٤٥٦٧٨٩"), "0123456789");
        assert_eq!(ascii_digits("０１２３４５６７８９"), "0123456789");
        assert_eq!(ascii_digits("०१२३४५६७८९"), "0123456789");
        assert_eq!(ascii_digits("\u{1D7CE}\u{1D7D8}\u{1D7E1}"), "009");
        assert_eq!(ascii_digits("＋92 300-ab"), "+92 300-ab");
        assert_eq!(ascii_digits("Ⅻ½²"), "Ⅻ½²", "not decimal digits");
        let pk: Country = "PK".parse().unwrap();
        assert_eq!(normalise("۰۳۰۰۱۲۳۴۵۶۷", Some(pk)).unwrap(), "+923001234567");
    }
}
