//! Idempotent creation (Stripe's and the IETF draft's `Idempotency-Key`): a layer over
//! `POST /api/sms/send`, `/send-bulk` and `/campaigns`.
//!
//! - The key comes from the `Idempotency-Key` header or the body's `idempotencyKey` (one key
//!   space per organization; both given and different is 400).
//! - A request with a key whose response is stored (for `sairex_store::IDEMPOTENT_RESPONSE_TTL_MS`, 24
//!   hours) is not run again: the same request (same route and the same JSON, keys in any
//!   order) is answered the stored status and body, with `Idempotent-Replayed: true`; another
//!   request is 422 `IDEMPOTENCY_KEY_REUSED`.
//! - A request whose key is being processed right now is 409 `IDEMPOTENCY_KEY_IN_USE` (retry it
//!   shortly): one gateway process runs one request per key at a time.
//! - Only 2xx responses are stored: a refused request did not happen, so its retry runs again.
//!
//! `POST /send` also writes the key on its message, whose own index refuses a second message
//! with it: a retry whose stored response was lost (a crash between the message and the
//! response) or expired is answered from that message (see `routes::send`).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sairex_store::model::Id;
use sairex_store::{MAX_IDEMPOTENCY_KEY_BYTES, StoredResponse, now_ms};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// The header on a replayed response.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

/// Keys whose request is running now, per organization.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<(Id, String)>>);

struct Running<'a> {
    set: &'a InFlight,
    entry: (Id, String),
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.entry);
    }
}

impl InFlight {
    fn start(&self, org: Id, key: &str) -> Option<Running<'_>> {
        let entry = (org, key.to_owned());
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !set.insert(entry.clone()) {
            return None;
        }
        Some(Running { set: self, entry })
    }
}

/// The key of a request, from the header or the body; checked.
pub(crate) fn key_of(headers: &HeaderMap, body: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = match headers.get(HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| bad_key("visible ASCII"))?.to_owned()),
    };
    let key = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::bad_request(
                "IDEMPOTENCY_KEY_MISMATCH",
                "the Idempotency-Key header and the body's idempotencyKey differ; give one",
            ));
        }
        (Some(h), _) => Some(h),
        (None, b) => b.map(str::to_owned),
    };
    if let Some(k) = &key
        && (k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_BYTES || k.chars().any(char::is_control))
    {
        return Err(bad_key(&format!("1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes")));
    }
    Ok(key)
}

fn bad_key(what: &str) -> ApiError {
    let mut e = ApiError::bad_request(
        "INVALID_IDEMPOTENCY_KEY",
        format!("idempotencyKey: {what} (a UUID is a good key)"),
    );
    e.field = Some("idempotencyKey".into());
    e
}

/// JSON with object keys sorted at every level, so that a retry that orders its fields
/// differently is still the same request.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn fingerprint(method: &str, path: &str, body: &[u8], parsed: Option<&Value>) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(path.as_bytes());
    hash.update([0]);
    match parsed {
        Some(v) => {
            let mut text = String::with_capacity(body.len());
            canonical(v, &mut text);
            hash.update(text.as_bytes());
        }
        None => hash.update(body),
    }
    hash.finalize().to_vec()
}

/// A stored response, answered again.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(stored.body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// 422 for a key reused with another request.
pub(crate) fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "this idempotency key was used with a different request in the last 24 hours; use a \
         new key for a new request",
    )
}

/// The layer (route-level, inside authentication).
pub(crate) async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match run(&state, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn run(state: &AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(org) = request
        .extensions()
        .get::<Principal>()
        .map(Principal::org_id)
    else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let limit = state.settings().body_limit;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is over the size limit",
        )
    })?;
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let body_key = parsed
        .as_ref()
        .and_then(|v| v.get("idempotencyKey"))
        .and_then(Value::as_str);
    let key = key_of(&parts.headers, body_key)?;
    let Some(key) = key else {
        return Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await);
    };
    let print = fingerprint(
        parts.method.as_str(),
        parts.uri.path(),
        &bytes,
        parsed.as_ref(),
    );
    let Some(_running) = state.in_flight().start(org, &key) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this idempotency key is being processed; retry it in a moment",
        )
        .retry_after(1));
    };
    if let Some(stored) = state.store().idempotent_response(org, &key)? {
        if stored.fingerprint != print {
            return Err(reused());
        }
        return Ok(replay(stored));
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // Our own JSON, small: the envelope of one creation.
    let body = to_bytes(body, usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    state
        .store()
        .put_idempotent_response(
            org,
            &key,
            StoredResponse {
                fingerprint: print,
                status: parts.status.as_u16(),
                body: body.to_vec(),
                stored_at: now_ms(),
            },
        )
        .await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_in_another_order_is_the_same_request() {
        let a: Value =
            serde_json::from_str(r#"{"to":"+1","body":"x","m":{"b":1,"a":[2]}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "m":{"a":[2],"b":1},"body":"x","to":"+1"}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"to":"+1","body":"y"}"#).unwrap();
        let f = |v: &Value| fingerprint("POST", "/p", b"", Some(v));
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&c));
        assert_ne!(f(&a), fingerprint("POST", "/q", b"", Some(&a)));
    }
}
