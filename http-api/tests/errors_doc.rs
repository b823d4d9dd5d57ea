//! The error catalogue (docs/errors.md) and the OpenAPI request schemas stay true to the code:
//! every error code the API can answer has an entry, the catalogue is served where the `docs`
//! links point, and every field the OpenAPI document offers is one the routes accept.

mod common;

use std::path::Path;

use common::{ADMIN_TOKEN, Api};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Codes answered through `ApiError`'s helpers or from other crates (not as literals beside a
/// status in this crate's source).
const INDIRECT: [&str; 11] = [
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "INTERNAL",
    "CONFLICT",
    "UNAVAILABLE",
    "NO_MASTER_KEY",
    "TEMPLATE_NOT_FOUND",
    "DLT_TEMPLATE_NOT_APPROVED",
    "RATE_LIMITED",
];

/// Every `"CODE"` literal that follows `bad_request(`, a `StatusCode::…,` argument or a
/// `"code":` key in the crate's source.
fn codes_in_source() -> Vec<String> {
    let mut codes = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(start) = rest.find('"') {
                let before = rest[..start].trim_end();
                let after = &rest[start + 1..];
                let Some(end) = after.find('"') else { break };
                let literal = &after[..end];
                let is_code = literal.len() > 3
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
                let tail: String = before.chars().rev().take(40).collect::<String>();
                let tail: String = tail.chars().rev().collect();
                let beside_status = tail
                    .rsplit_once("StatusCode::")
                    .is_some_and(|(_, s)| s.ends_with(',') && !s.contains('(') && !s.contains(' '));
                if is_code
                    && (tail.ends_with("bad_request(")
                        || beside_status
                        || tail.ends_with("\"code\":"))
                {
                    codes.push(literal.to_owned());
                }
                rest = &after[end + 1..];
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

#[tokio::test]
async fn every_error_code_has_an_entry_and_the_links_resolve() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md"))
            .unwrap();
    let found = codes_in_source();
    assert!(found.len() > 25, "the scan found too few codes: {found:?}");
    for code in found.iter().map(String::as_str).chain(INDIRECT) {
        assert!(
            doc.contains(&format!("\n### {code}\n")),
            "docs/errors.md has no entry for {code}"
        );
    }
    // Served where the envelope's links point.
    let api = Api::start().await;
    let served = api
        .client
        .get(format!("{}/docs/errors", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert!(
        served.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert_eq!(served.text().await.unwrap(), doc);
    let r = api.get("/api/sms/messages", "sk_live_nope").await;
    assert_eq!(r.json["error"]["docs"], "/docs/errors#unauthorized");
}

/// Each top-level property of each request schema, sent alone as `null`, is never refused as
/// unknown: the document offers no field the route would refuse.
#[tokio::test]
async fn every_documented_request_field_is_known_to_its_route() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let spec = api.raw(Method::GET, "/openapi.json", None, None).await.json;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op
                .pointer("/requestBody/content/application~1json/schema")
                .cloned()
            else {
                continue;
            };
            assert_eq!(schema["additionalProperties"], false, "{method} {path}");
            let token = if path.starts_with("/api/admin") {
                ADMIN_TOKEN
            } else {
                key.as_str()
            };
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for name in schema["properties"].as_object().unwrap().keys() {
                let mut body = json!({});
                body[name] = Value::Null;
                let r = api
                    .raw(
                        method.to_uppercase().parse().unwrap(),
                        &concrete,
                        Some(token),
                        Some(body.to_string().into_bytes()),
                    )
                    .await;
                assert_ne!(
                    r.code(),
                    "UNKNOWN_FIELD",
                    "{method} {path}: documented field {name} refused: {:?}",
                    r.json
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} fields checked");
}
