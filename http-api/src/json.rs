//! Strict request bodies: a JSON body says exactly what it means, or it is refused.
//!
//! - A field the request type does not know is 400 `UNKNOWN_FIELD` naming it, and the closest
//!   known field when one is close enough to be a typo (`"sender"` → did you mean `from`?), as
//!   `check-config` does for the config file. A typo must not silently change what goes out.
//! - A value of the wrong type is 400 `INVALID_TYPE` naming the field (`recipients[2].to`) and
//!   the type expected; only text that is not JSON at all is `MALFORMED_JSON`.
//!
//! Unknown fields are found with `serde_ignored` (every key a type skips, at any depth), paths of
//! type errors with `serde_path_to_error`; both wrap the real deserializer, so nothing is parsed
//! twice on the hot path. The known fields for a suggestion are read from the request type
//! itself by [`known_fields`], only when a field was refused.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use crate::error::ApiError;

/// One step of a path into a body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn steps_of(path: &serde_ignored::Path<'_>, out: &mut Vec<Step>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps_of(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps_of(parent, out);
            out.push(Step::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps_of(parent, out),
    }
}

/// `recipients[0].nmae`, as `serde_path_to_error` spells paths.
fn display(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a request body into `T`, strictly (see the module's documentation).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown: Vec<Vec<Step>> = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut record = |path: serde_ignored::Path<'_>| {
        let mut steps = Vec::new();
        steps_of(&path, &mut steps);
        unknown.push(steps);
    };
    let parsed: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&mut de, &mut record));
    let value = match parsed {
        Ok(value) => value,
        Err(e) => return Err(type_error(&e)),
    };
    de.end()
        .map_err(|e| ApiError::bad_request("MALFORMED_JSON", format!("malformed JSON: {e}")))?;
    match unknown.first() {
        None => Ok(value),
        Some(first) => Err(unknown_field::<T>(first, unknown.len())),
    }
}

fn type_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let text = inner.to_string();
    // serde_json appends the position; the path says more to a person.
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    let text = text.strip_suffix(&suffix).unwrap_or(&text);
    match inner.classify() {
        serde_json::error::Category::Data => {
            let path = e.path().to_string();
            let mut error = if path == "." {
                ApiError::bad_request("INVALID_TYPE", format!("the body: {text}"))
            } else {
                ApiError::bad_request("INVALID_TYPE", format!("{path}: {text}"))
            };
            if path != "." {
                error.field = Some(path.into());
            }
            error
        }
        _ => ApiError::bad_request("MALFORMED_JSON", format!("malformed JSON: {inner}")),
    }
}

fn unknown_field<T: DeserializeOwned>(steps: &[Step], count: usize) -> ApiError {
    let path = display(steps);
    let name = match steps.last() {
        Some(Step::Key(k)) => k.as_str(),
        _ => path.as_str(),
    };
    let known = known_fields::<T>(&steps[..steps.len().saturating_sub(1)]);
    let mut message = format!("{path}: unknown field");
    if let Some(best) = known.and_then(|k| suggest(name, k)) {
        message.push_str(&format!(" (did you mean `{best}`?)"));
    } else if let Some(known) = known {
        message.push_str(&format!("; known fields: {}", known.join(", ")));
    }
    if count > 1 {
        message.push_str(&format!(" (and {} more unknown)", count - 1));
    }
    let mut error = ApiError::bad_request("UNKNOWN_FIELD", message);
    error.field = Some(path.into());
    error
}

/// The known key closest to `name`, if close enough to be a typo (the config crate's rule: at
/// most a third of the longer name's characters differ, and at most 3) or a known synonym.
pub(crate) fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = name.to_ascii_lowercase();
    // Words other APIs use for our fields: not typos, so edit distance misses them.
    const SYNONYMS: [(&str, &str); 8] = [
        ("sender", "from"),
        ("senderid", "from"),
        ("message", "body"),
        ("text", "body"),
        ("recipient", "to"),
        ("phone", "to"),
        ("schedule", "scheduledAt"),
        ("sendat", "scheduledAt"),
    ];
    if let Some(k) = SYNONYMS
        .iter()
        .filter(|(alias, _)| *alias == lower.replace(['_', '-'], ""))
        .find_map(|(_, target)| known.iter().find(|k| *k == target))
    {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|&(d, k)| {
            let longer = name.chars().count().max(k.chars().count());
            k != name && d <= 3 && d * 3 <= longer.max(3)
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

// ---------------------------------------------------------------------------------------------
// The known fields of a request type, read from its `Deserialize` implementation: serde's derive
// hands the list of its fields to `deserialize_struct`, so a deserializer that walks down `path`
// (one key per struct, one element per sequence) and stops at the struct there learns them.

/// The fields of the struct at `path` inside `T`, if there is one there.
fn known_fields<T: DeserializeOwned>(path: &[Step]) -> Option<&'static [&'static str]> {
    match T::deserialize(Probe { path }) {
        Err(Found(fields)) => fields,
        Ok(_) => None,
    }
}

#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe finished")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found(None)
    }
}

struct Probe<'p> {
    path: &'p [Step],
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Found> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        match self.path.split_first() {
            Some((Step::Index(_), rest)) => visitor.visit_seq(OneElement { rest: Some(rest) }),
            _ => Err(Found(None)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Found> {
        match self.path.split_first() {
            None => Err(Found(Some(fields))),
            Some((Step::Key(key), rest)) => visitor.visit_map(OneEntry {
                key: Some(key),
                rest,
            }),
            Some((Step::Index(_), _)) => Err(Found(None)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map enum identifier ignored_any
    }
}

struct OneElement<'p> {
    rest: Option<&'p [Step]>,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = Found;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Found> {
        match self.rest.take() {
            Some(path) => seed.deserialize(Probe { path }).map(Some),
            None => Ok(None),
        }
    }
}

struct OneEntry<'p> {
    key: Option<&'p str>,
    rest: &'p [Step],
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = Found;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Found> {
        match self.key.take() {
            Some(key) => seed
                .deserialize(de::value::StrDeserializer::<Found>::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Found> {
        seed.deserialize(Probe { path: self.rest })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Map, Value};

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Inner {
        to: Option<String>,
        variables: Option<Map<String, Value>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Outer {
        from: Option<String>,
        scheduled_at: Option<String>,
        recipients: Option<Vec<Inner>>,
    }

    #[test]
    fn names_unknown_fields_with_the_closest_known_one() {
        let e = parse::<Outer>(br#"{"sender":"ACME"}"#).unwrap_err();
        assert_eq!(e.code, "UNKNOWN_FIELD");
        assert_eq!(e.message, "sender: unknown field (did you mean `from`?)");
        let e = parse::<Outer>(br#"{"scheduledAT":"x"}"#).unwrap_err();
        assert!(e.message.contains("did you mean `scheduledAt`"), "{e}");
        let e = parse::<Outer>(br#"{"recipients":[{"to":"1"},{"tp":"2"}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("recipients[1].tp"));
        assert!(e.message.contains("did you mean `to`"), "{e}");
        let e = parse::<Outer>(br#"{"zzzzzzzz":1}"#).unwrap_err();
        assert!(e.message.contains("known fields: from, scheduledAt"), "{e}");
        // Free-form maps take any key.
        assert!(parse::<Outer>(br#"{"recipients":[{"variables":{"any":1}}]}"#).is_ok());
    }

    #[test]
    fn type_errors_name_the_field_and_the_type() {
        let e = parse::<Outer>(br#"{"recipients":[{"to":123}]}"#).unwrap_err();
        assert_eq!(e.code, "INVALID_TYPE");
        assert_eq!(e.field.as_deref(), Some("recipients[0].to"));
        assert!(e.message.contains("expected a string"), "{e}");
        assert_eq!(parse::<Outer>(b"{nope").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse::<Outer>(b"{} x").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse::<Outer>(b"[1]").unwrap_err().code, "INVALID_TYPE");
    }
}
