//! The fake Veevo Tech: `/v3/sendsms` (JSON, form or query, key as `hash` or `apikey`),
//! `/v3/balance`, delivery reports and inbound messages posted as JSON with the shared secret in
//! `X-Callback-Token`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{FakeError, FakeKind, FakeReceipt, Shared, VeevoAccount, call, recorded};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3/sendsms", post(send).get(send))
        .route("/v3/balance", get(balance))
        .with_state(shared)
}

fn account(shared: &Shared) -> Option<&VeevoAccount> {
    match &shared.config.kind {
        FakeKind::Veevo(a) => Some(a),
        _ => None,
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(filter: &str, description: &str) -> Response {
    answer(
        StatusCode::OK,
        json!({"STATUS": "ERROR", "ERROR_FILTER": filter, "ERROR_CODE": "400", "ERROR_DESCRIPTION": description}),
    )
}

/// The request's fields from a JSON body, a form body or the query.
fn fields(record: &super::Recorded) -> Vec<(String, String)> {
    if let Some(Value::Object(map)) = record.json() {
        return map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
    }
    record.params()
}

async fn send(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let record = recorded(&method, &uri, &headers, &body);
    let params = fields(&record);
    shared.record(record);
    shared.latency().await;
    let Some(account) = account(&shared).cloned() else {
        return error("TECHNICAL_ISSUE", "misconfigured fake");
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let key = get("hash").or_else(|| get("apikey"));
    if key.as_deref() != Some(account.hash.as_str()) {
        shared.refused();
        return error("INVALID_API_KEY", "Invalid API key");
    }
    if let Some(status) = shared.injected() {
        shared.refused();
        return if status == 429 {
            error("RATE_LIMIT_EXCEEDED", "Too many requests")
        } else {
            answer(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json!({"STATUS": "ERROR", "ERROR_FILTER": "TECHNICAL_ISSUE"}),
            )
        };
    }
    let Some(to) = get("receivernum").filter(|t| !t.is_empty()) else {
        shared.refused();
        return error("RECEIVER_NUMBER_MISSING", "Receiver number is missing");
    };
    if !to
        .trim_start_matches('+')
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        shared.refused();
        return error("INVALID_NUMBER", "Invalid receiver number");
    }
    if get("textmessage").unwrap_or_default().is_empty() {
        shared.refused();
        return error("SMS_TEXT_MISSING", "SMS text is missing");
    }
    shared.accepted();
    let id = (900_000_000 + shared.next_id()).to_string();
    if let Some(url) = shared.config.callback_url.clone()
        && shared.config.receipt != FakeReceipt::None
    {
        let shared2 = Arc::clone(&shared);
        let id2 = id.clone();
        shared.tasks.spawn(async move {
            tokio::time::sleep(shared2.config.receipt_delay).await;
            let status = receipt(&shared2, &account, &url, &id2).await;
            shared2.callback_done(status.ok());
        });
    }
    answer(
        StatusCode::OK,
        json!({
            "STATUS": "SUCCESSFUL", "MESSAGE_ID": id, "COUNTRY_SUPPORTED": "YES",
            "COUNTRY_CODE": "92", "COUNTRY_ISO": "PK", "NETWORK_NAME": "JAZZ",
            "RECEIVER_NUMBER": to, "CHARGED_BALANCE": "1", "CHARGING_UNIT": "SMS",
        }),
    )
}

fn token_header(account: &VeevoAccount) -> Vec<(&'static str, String)> {
    if account.callback_secret.is_empty() {
        Vec::new()
    } else {
        vec![("x-callback-token", account.callback_secret.clone())]
    }
}

async fn receipt(
    shared: &Shared,
    account: &VeevoAccount,
    url: &str,
    id: &str,
) -> Result<u16, FakeError> {
    let (status, code) = match shared.config.receipt {
        FakeReceipt::Failed => ("UNDELIV", "1"),
        _ => ("DELIVRD", "0"),
    };
    let body =
        json!({"MESSAGE_ID": id, "DELIVERY_STATUS": status, "ERROR_CODE": code, "MEDIUM": "SMS"});
    call(
        "POST",
        url,
        Some("application/json"),
        body.to_string().into_bytes(),
        &token_header(account),
    )
    .await
}

pub(crate) async fn post_inbound(
    shared: &Shared,
    account: &VeevoAccount,
    url: &str,
    from: &str,
    to: &str,
    text: &str,
) -> Result<u16, FakeError> {
    let body = json!({"from": from, "to": to, "text": text, "id": shared.next_id().to_string()});
    let status = call(
        "POST",
        url,
        Some("application/json"),
        body.to_string().into_bytes(),
        &token_header(account),
    )
    .await;
    shared.callback_done(status.as_ref().ok().copied());
    status
}

async fn balance(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let record = recorded(&method, &uri, &headers, &[]);
    let params = record.params();
    shared.record(record);
    let key = params
        .iter()
        .find(|(k, _)| k == "hash" || k == "apikey")
        .map(|(_, v)| v.clone());
    match account(&shared) {
        Some(a) if key.as_deref() == Some(a.hash.as_str()) => answer(
            StatusCode::OK,
            json!({"STATUS": "SUCCESSFUL", "BALANCE": format!("{:.2}", shared.config.balance)}),
        ),
        _ => error("INVALID_API_KEY", "Invalid API key"),
    }
}
