//! Filling a template body: `{{name}}` takes the variable's value, `{{name|default}}` the
//! default when the variable is missing (or null). One implementation for the API's sends and
//! previews and the campaign runner, so a template renders the same everywhere.

use serde_json::{Map, Value};

/// Fills `{{name}}` and `{{name|default}}` placeholders from `variables`: strings as they are,
/// other JSON values as JSON text. Text after an unclosed `{{` is kept as it is.
///
/// # Errors
/// The name of the first placeholder that has neither a value nor a default.
pub fn render_template(
    body: &str,
    variables: Option<&Map<String, Value>>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once('|') {
            Some((name, default)) => (name.trim(), Some(default)),
            None => (inner.trim(), None),
        };
        match (variables.and_then(|v| v.get(name)), default) {
            (Some(Value::String(s)), _) => out.push_str(s),
            (Some(Value::Null) | None, Some(default)) => out.push_str(default),
            (Some(Value::Null) | None, None) => return Err(name.to_owned()),
            (Some(other), _) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_values_and_defaults_and_names_what_is_missing() {
        let vars: Map<String, Value> =
            serde_json::from_str(r#"{"name":"Ali","amount":5000,"gone":null}"#).unwrap();
        assert_eq!(
            render_template(
                "Dear {{name}}, pay {{ amount }} to {{school|our school}}",
                Some(&vars)
            ),
            Ok("Dear Ali, pay 5000 to our school".to_owned())
        );
        assert_eq!(
            render_template("{{name|x}} {{gone|-}}", Some(&vars)),
            Ok("Ali -".to_owned())
        );
        assert_eq!(
            render_template("Hi {{who}}", Some(&vars)),
            Err("who".to_owned())
        );
        assert_eq!(render_template("Hi {{who}}", None), Err("who".to_owned()));
        assert_eq!(render_template("open {{", None), Ok("open {{".to_owned()));
    }
}
