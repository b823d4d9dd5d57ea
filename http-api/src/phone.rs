//! Phone numbers: E.164 normalisation with the `phonenumber` crate; a number written without
//! its country code is read in the organization's default country.

use phonenumber::Mode;
use phonenumber::country::Id as Country;

use crate::error::ApiError;

/// Longest input considered (E.164 is at most 15 digits; formatting adds a few characters).
const MAX_INPUT: usize = 32;

/// `raw` in E.164 (`+923001234567`), or a 400 naming the problem.
pub(crate) fn normalise(raw: &str, country: Option<Country>) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_PHONE",
            "to: a phone number is required",
        ));
    }
    if raw.len() > MAX_INPUT {
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
    Ok(number.format().mode(Mode::E164).to_string())
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
}
