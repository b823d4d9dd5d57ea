//! The fake Twilio: Messages.json and Balance.json, status callbacks and inbound messages.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;

use super::{FakeError, FakeKind, FakeReceipt, Shared, TwilioAccount, call, form, recorded};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(send))
        .route("/2010-04-01/Accounts/{sid}/Balance.json", get(balance))
        .with_state(shared)
}

fn account(shared: &Shared) -> Option<&TwilioAccount> {
    match &shared.config.kind {
        FakeKind::Twilio(a) => Some(a),
        _ => None,
    }
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json")],
        json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}).to_string(),
    )
        .into_response()
}

/// Whether the basic auth is this account's.
fn authorized(headers: &HeaderMap, account: &TwilioAccount) -> bool {
    let Some(value) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", account.account_sid, account.auth_token));
    value.trim() == expected
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(sid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let record = recorded(&method, &uri, &headers, &body);
    let params = record.params();
    shared.record(record);
    shared.latency().await;
    let Some(account) = account(&shared).cloned() else {
        return error(500, 20500, "misconfigured fake");
    };
    if sid != account.account_sid || !authorized(&headers, &account) {
        shared.refused();
        return error(401, 20003, "Authenticate");
    }
    if let Some(status) = shared.injected() {
        shared.refused();
        let code = if status == 429 { 20429 } else { 20500 };
        return error(status, code, "injected error");
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(to) = get("To").filter(|t| t.starts_with('+') && t.len() > 8) else {
        shared.refused();
        return error(400, 21211, "The 'To' number is not a valid phone number.");
    };
    let body_text = get("Body").unwrap_or_default();
    if body_text.is_empty() {
        shared.refused();
        return error(400, 21602, "Message body is required.");
    }
    if get("From").is_none() && get("MessagingServiceSid").is_none() {
        shared.refused();
        return error(
            400,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required.",
        );
    }
    shared.accepted();
    let message_sid = format!("SM{:032x}", shared.next_id());
    let segments = body_text.chars().count().div_ceil(153).max(1);
    let from = get("From").unwrap_or_default();
    let callback = get("StatusCallback").or_else(|| shared.config.callback_url.clone());
    if let Some(url) = callback
        && shared.config.receipt != FakeReceipt::None
    {
        let shared2 = Arc::clone(&shared);
        let (sid2, to2, from2) = (message_sid.clone(), to.clone(), from.clone());
        shared.tasks.spawn(async move {
            tokio::time::sleep(shared2.config.receipt_delay).await;
            let status = status_callback(&shared2, &account, &url, &sid2, &from2, &to2).await;
            shared2.callback_done(status.ok());
        });
    }
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        json!({
            "sid": message_sid, "account_sid": sid, "to": to, "from": from,
            "body": body_text, "status": "queued", "num_segments": segments.to_string(),
            "num_media": "0", "direction": "outbound-api", "api_version": "2010-04-01",
            "price": null, "price_unit": "USD", "error_code": null, "error_message": null,
            "uri": format!("/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"),
        })
        .to_string(),
    )
        .into_response()
}

async fn status_callback(
    shared: &Shared,
    account: &TwilioAccount,
    url: &str,
    sid: &str,
    from: &str,
    to: &str,
) -> Result<u16, FakeError> {
    let (status, code) = match shared.config.receipt {
        FakeReceipt::Failed => ("undelivered", Some("30003")),
        _ => ("delivered", None),
    };
    let mut params: Vec<(String, String)> = vec![
        ("AccountSid".into(), account.account_sid.clone()),
        ("ApiVersion".into(), "2010-04-01".into()),
        ("From".into(), from.into()),
        ("MessageSid".into(), sid.into()),
        ("MessageStatus".into(), status.into()),
        ("SmsSid".into(), sid.into()),
        ("SmsStatus".into(), status.into()),
        ("To".into(), to.into()),
    ];
    if let Some(code) = code {
        params.push(("ErrorCode".into(), code.into()));
    }
    post_signed(account, url, &params).await
}

async fn post_signed(
    account: &TwilioAccount,
    url: &str,
    params: &[(String, String)],
) -> Result<u16, FakeError> {
    let signature = super::twilio_signature(&account.auth_token, url, params);
    call(
        "POST",
        url,
        Some("application/x-www-form-urlencoded"),
        form(params).into_bytes(),
        &[("x-twilio-signature", signature)],
    )
    .await
}

pub(crate) async fn post_inbound(
    shared: &Shared,
    account: &TwilioAccount,
    url: &str,
    from: &str,
    to: &str,
    text: &str,
) -> Result<u16, FakeError> {
    let sid = format!("SM{:032x}", shared.next_id() | (1 << 60));
    let segments = text.chars().count().div_ceil(153).max(1).to_string();
    let params: Vec<(String, String)> = vec![
        ("AccountSid".into(), account.account_sid.clone()),
        ("ApiVersion".into(), "2010-04-01".into()),
        ("Body".into(), text.into()),
        ("From".into(), from.into()),
        ("MessageSid".into(), sid.clone()),
        ("NumMedia".into(), "0".into()),
        ("NumSegments".into(), segments),
        ("SmsMessageSid".into(), sid.clone()),
        ("SmsSid".into(), sid),
        ("SmsStatus".into(), "received".into()),
        ("To".into(), to.into()),
    ];
    let status = post_signed(account, url, &params).await;
    shared.callback_done(status.as_ref().ok().copied());
    status
}

async fn balance(
    State(shared): State<Arc<Shared>>,
    Path(sid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(recorded(&method, &uri, &headers, &[]));
    let Some(account) = account(&shared).cloned() else {
        return error(500, 20500, "misconfigured fake");
    };
    if sid != account.account_sid || !authorized(&headers, &account) {
        return error(401, 20003, "Authenticate");
    }
    (
        [("content-type", "application/json")],
        json!({"currency": "USD", "balance": format!("{:.2}", shared.config.balance), "account_sid": sid}).to_string(),
    )
        .into_response()
}
