//! The fake Vonage SMS API: `/sms/json` and `/account/get-balance`, delivery receipts (GET with
//! query parameters, as Vonage does by default) and inbound messages (POST form), signed with
//! the signature secret when the account has one.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{
    FakeError, FakeKind, FakeReceipt, Shared, VonageAccount, call, form, recorded, unix_now,
    with_query,
};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sms/json", post(send).get(send))
        .route("/account/get-balance", get(balance))
        .with_state(shared)
}

fn account(shared: &Shared) -> Option<&VonageAccount> {
    match &shared.config.kind {
        FakeKind::Vonage(a) => Some(a),
        _ => None,
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn status_only(code: &str, text: &str) -> Response {
    json_response(
        StatusCode::OK,
        json!({"message-count": "1", "messages": [{"status": code, "error-text": text}]}),
    )
}

/// Whether the parameters carry this account's secret or a valid signature.
fn authorized(params: &[(String, String)], account: &VonageAccount) -> bool {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("api_key") != Some(account.api_key.as_str()) {
        return false;
    }
    if let Some(secret) = get("api_secret") {
        return !account.api_secret.is_empty() && secret == account.api_secret;
    }
    match get("sig") {
        Some(sig) if !account.signature_secret.is_empty() => {
            super::vonage_signature(&account.signature_method, &account.signature_secret, params)
                .eq_ignore_ascii_case(sig)
        }
        _ => false,
    }
}

/// Whether every character is in the GSM 7-bit default alphabet or its extension (enough for
/// the fake's part arithmetic).
fn gsm(text: &str) -> bool {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXT: &str = "^{}\\[~]|€\x0c";
    text.chars().all(|c| BASIC.contains(c) || EXT.contains(c))
}

/// The parts Vonage would make of `text`: 160/153 GSM characters, 70/67 otherwise.
pub(crate) fn split(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let (single, multi) = if gsm(text) { (160, 153) } else { (70, 67) };
    if chars.len() <= single {
        return vec![text.to_owned()];
    }
    chars
        .chunks(multi)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

async fn send(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let record = recorded(&method, &uri, &headers, &body);
    let mut params = record.params();
    if params.is_empty() {
        params = form_urlencoded::parse(record.query.as_bytes())
            .into_owned()
            .collect();
    }
    shared.record(record);
    shared.latency().await;
    let Some(account) = account(&shared).cloned() else {
        return status_only("5", "misconfigured fake");
    };
    if !authorized(&params, &account) {
        shared.refused();
        return status_only("4", "Bad Credentials");
    }
    if let Some(status) = shared.injected() {
        shared.refused();
        return if status == 429 {
            status_only(
                "1",
                "Throughput Rate Exceeded - please wait [ 1000 ] and retry",
            )
        } else {
            json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json!({}),
            )
        };
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(to), Some(from), Some(text)) = (get("to"), get("from"), get("text")) else {
        shared.refused();
        return status_only("2", "Missing to, from or text param");
    };
    if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
        shared.refused();
        return status_only("3", "Invalid to param");
    }
    if !gsm(&text) && get("type").as_deref() != Some("unicode") {
        shared.refused();
        return status_only("6", "Invalid Message: unicode text without type=unicode");
    }
    shared.accepted();
    let parts = split(&text);
    let client_ref = get("client-ref");
    let callback = get("callback").or_else(|| shared.config.callback_url.clone());
    let wants_receipt = get("status-report-req").as_deref() != Some("0");
    let mut messages = Vec::new();
    for _ in &parts {
        let id = format!("{:016X}", shared.next_id() | 0x0C00_0000_0000_0000);
        messages.push(json!({
            "to": to, "message-id": id, "status": "0",
            "remaining-balance": format!("{:.8}", shared.config.balance),
            "message-price": "0.03330000", "network": "41001",
        }));
        if let Some(url) = callback.clone()
            && wants_receipt
            && shared.config.receipt != FakeReceipt::None
        {
            let shared2 = Arc::clone(&shared);
            let account2 = account.clone();
            let (to2, from2, ref2) = (to.clone(), from.clone(), client_ref.clone());
            shared.tasks.spawn(async move {
                tokio::time::sleep(shared2.config.receipt_delay).await;
                let status = receipt(&shared2, &account2, &url, &id, &to2, &from2, ref2).await;
                shared2.callback_done(status.ok());
            });
        }
    }
    json_response(
        StatusCode::OK,
        json!({"message-count": parts.len().to_string(), "messages": messages}),
    )
}

fn sign(account: &VonageAccount, params: &mut Vec<(String, String)>) {
    if account.signature_secret.is_empty() {
        return;
    }
    params.push(("timestamp".into(), unix_now().to_string()));
    params.push(("nonce".into(), format!("{:032x}", rand::random::<u128>())));
    let sig = super::vonage_signature(&account.signature_method, &account.signature_secret, params);
    params.push(("sig".into(), sig));
}

async fn receipt(
    shared: &Shared,
    account: &VonageAccount,
    url: &str,
    id: &str,
    to: &str,
    from: &str,
    client_ref: Option<String>,
) -> Result<u16, FakeError> {
    let (status, err) = match shared.config.receipt {
        FakeReceipt::Failed => ("failed", "6"),
        _ => ("delivered", "0"),
    };
    let mut params: Vec<(String, String)> = vec![
        ("msisdn".into(), to.into()),
        ("to".into(), from.into()),
        ("network-code".into(), "41001".into()),
        ("messageId".into(), id.into()),
        ("price".into(), "0.03330000".into()),
        ("status".into(), status.into()),
        ("scts".into(), "2401011200".into()),
        ("err-code".into(), err.into()),
        ("api-key".into(), account.api_key.clone()),
        ("message-timestamp".into(), "2024-01-01 12:00:00".into()),
    ];
    if let Some(r) = client_ref {
        params.push(("client-ref".into(), r));
    }
    sign(account, &mut params);
    call("GET", &with_query(url, &params), None, Vec::new(), &[]).await
}

/// Posts parts `order` of a concatenated message (one part: a plain message).
pub(crate) async fn post_inbound_parts(
    account: &VonageAccount,
    url: &str,
    from: &str,
    to: &str,
    parts: &[String],
    order: &[usize],
) -> Result<Vec<u16>, FakeError> {
    let reference = format!("{:02X}", rand::random::<u8>());
    let total = parts.len();
    let mut statuses = Vec::new();
    for &i in order {
        let Some(text) = parts.get(i) else { continue };
        let keyword = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let mut params: Vec<(String, String)> = vec![
            ("msisdn".into(), from.trim_start_matches('+').into()),
            ("to".into(), to.trim_start_matches('+').into()),
            (
                "messageId".into(),
                format!("{:016X}", rand::random::<u64>() >> 4),
            ),
            ("text".into(), text.clone()),
            (
                "type".into(),
                if gsm(text) { "text" } else { "unicode" }.into(),
            ),
            ("keyword".into(), keyword),
            ("api-key".into(), account.api_key.clone()),
            ("message-timestamp".into(), "2024-01-01 12:00:00".into()),
        ];
        if total > 1 {
            params.push(("concat".into(), "true".into()));
            params.push(("concat-ref".into(), reference.clone()));
            params.push(("concat-total".into(), total.to_string()));
            params.push(("concat-part".into(), (i + 1).to_string()));
        }
        sign(account, &mut params);
        let status = call(
            "POST",
            url,
            Some("application/x-www-form-urlencoded"),
            form(&params).into_bytes(),
            &[],
        )
        .await?;
        statuses.push(status);
    }
    Ok(statuses)
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
    let Some(account) = account(&shared).cloned() else {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({}));
    };
    if !authorized(&params, &account) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"type": "https://developer.nexmo.com/api-errors#unauthorized", "title": "Invalid credentials supplied"}),
        );
    }
    json_response(
        StatusCode::OK,
        json!({"value": shared.config.balance, "autoReload": false}),
    )
}
