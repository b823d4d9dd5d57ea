//! Message bodies: control characters stripped, `{{variables}}` filled, encoding and segments
//! counted (the pdu crate's rules, the same the engine splits by), cost estimated.

use std::borrow::Cow;

use sairex_pdu::text::{Encoding, choose_encoding, count_segments, gsm7};
use sairex_store::model::Micros;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Longest body accepted, in characters (blueprint §6.6: at most 10 segments of GSM-7).
pub(crate) const MAX_BODY_CHARS: usize = 1600;

/// The body without control characters (line breaks are kept: handsets show them).
pub(crate) fn strip_controls(body: &str) -> Cow<'_, str> {
    if body.chars().any(is_stripped) {
        Cow::Owned(body.chars().filter(|c| !is_stripped(*c)).collect())
    } else {
        Cow::Borrowed(body)
    }
}

fn is_stripped(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\r'
}

/// A cleaned body that may be sent: not empty, at most [`MAX_BODY_CHARS`].
pub(crate) fn check_body(body: &str) -> Result<(), ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::bad_request(
            "EMPTY_BODY",
            "body: the message is empty",
        ));
    }
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(ApiError::bad_request(
            "BODY_TOO_LONG",
            format!("body: {chars} characters; at most {MAX_BODY_CHARS} are allowed"),
        ));
    }
    Ok(())
}

/// Fills `{{name}}` placeholders from `variables` (strings as they are, other JSON values as
/// JSON text), `{{name|default}}` with the default when the value is missing. A placeholder
/// without a value or default is an error naming it.
pub(crate) fn render(
    template: &str,
    variables: Option<&Map<String, Value>>,
) -> Result<String, String> {
    sairex_store::render_template(template, variables)
}

/// 400 `MISSING_VARIABLE` for a placeholder [`render`] could not fill.
pub(crate) fn missing_variable(name: String) -> ApiError {
    let mut error = ApiError::bad_request(
        "MISSING_VARIABLE",
        format!(
            "variables.{name}: no value for {{{{{name}}}}} (give it in variables, or write \
             {{{{{name}|default}}}} in the body)"
        ),
    );
    error.field = Some(format!("variables.{name}").into());
    error
}

/// What a body costs to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Analysis {
    /// "GSM-7" or "UCS-2", as the store spells it.
    pub(crate) encoding: &'static str,
    pub(crate) segments: u32,
    /// Characters (septets for GSM-7, UTF-16 units for UCS-2) counted.
    pub(crate) units: usize,
}

pub(crate) fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gsm7 => "GSM-7",
        Encoding::Latin1 => "LATIN-1",
        Encoding::Ucs2 => "UCS-2",
    }
}

pub(crate) fn analyse(body: &str) -> Analysis {
    let count = count_segments(body);
    Analysis {
        encoding: encoding_name(count.encoding),
        segments: u32::try_from(count.segments).unwrap_or(u32::MAX),
        units: count.units,
    }
}

/// The distinct characters that force UCS-2, in order of appearance.
pub(crate) fn ucs2_forcing(body: &str) -> Vec<String> {
    if choose_encoding(body) == Encoding::Gsm7 {
        return Vec::new();
    }
    let mut seen: Vec<char> = Vec::new();
    for c in body.chars() {
        if gsm7::encode_char(c).is_none() && !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.into_iter().map(String::from).collect()
}

/// Money in millionths as a decimal string with at least two decimals: `500000` → `"0.50"`,
/// `7500` → `"0.0075"`.
pub(crate) fn money(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let mut frac = format!("{:06}", abs % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", abs / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_controls_but_keeps_line_breaks() {
        assert_eq!(strip_controls("a\u{0}b\u{7}c\nd\r\te\u{9b}"), "abc\nd\re");
        assert!(matches!(strip_controls("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn renders_templates() {
        let vars: Map<String, Value> =
            serde_json::from_str(r#"{"name":"Ali","amount":5000}"#).unwrap();
        assert_eq!(
            render("Dear {{name}}, pay {{ amount }} PKR", Some(&vars)).unwrap(),
            "Dear Ali, pay 5000 PKR"
        );
        assert_eq!(render("Hi {{who}}", Some(&vars)), Err("who".to_owned()));
        assert_eq!(render("no vars {{", None).unwrap(), "no vars {{");
    }

    #[test]
    fn counts_and_prices() {
        let a = analyse("Hello");
        assert_eq!((a.encoding, a.segments), ("GSM-7", 1));
        let a = analyse(&"x".repeat(161));
        assert_eq!(a.segments, 2);
        let a = analyse("سلام");
        assert_eq!(a.encoding, "UCS-2");
        assert_eq!(ucs2_forcing("Hi سس"), vec!["س".to_owned()]);
        assert!(ucs2_forcing("Hi").is_empty());
        assert_eq!(money(500_000), "0.50");
        assert_eq!(money(7_615_000_000), "7615.00");
        assert_eq!(money(7_500), "0.0075");
        assert_eq!(money(-1_250_000), "-1.25");
    }

    #[test]
    fn body_limits() {
        assert!(check_body("  ").is_err());
        assert!(check_body(&"a".repeat(1600)).is_ok());
        assert_eq!(
            check_body(&"a".repeat(1601)).unwrap_err().code,
            "BODY_TOO_LONG"
        );
    }
}
