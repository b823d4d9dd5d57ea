//! The HTTP providers' callbacks: `POST|GET /api/sms/receive?provider=twilio|vonage|veevo` for
//! inbound messages and `POST|GET /api/sms/dlr?provider=…` for delivery receipts, in each
//! provider's own format (`docs/providers.md`).
//!
//! 1. **Which provider record**: from the callback itself (Twilio's `AccountSid`, told apart by
//!    `To`/`From` when one account backs several records; Vonage's `api-key`, by `to`), or from
//!    an explicit `providerId` query parameter (what the gateway puts in the receipt URLs it
//!    gives). An unknown one is a 404 naming what did not match. Veevo callbacks carry no
//!    account: `providerId` is needed unless there is only one Veevo record.
//! 2. **Authentication**, before anything is stored: Twilio's `X-Twilio-Signature` over the
//!    URL it called (the configured public base URL plus the path and query as received; without
//!    one, the `Host` and `X-Forwarded-Proto` headers), Vonage's `sig` with the record's
//!    signature secret and method, Veevo's shared secret (`token` parameter or
//!    `X-Callback-Token` header) and/or source-address allow-list (`callbackAllowIps`, which
//!    needs the server to see the peer address). A bad or missing signature is 403 and nothing is
//!    stored; a record with nothing to check against refuses its callbacks unless its
//!    `allowUnsignedCallbacks` is set. Comparisons are in constant time.
//! 3. **The engine's paths**: receipts and inbound messages are handed to the engine
//!    ([`crate::EngineLink::callbacks`]) and answered once stored: 200 (Twilio: TwiML, with the
//!    record's `autoReply` for inbound messages), 503 when the engine could not store it (the
//!    provider sends it again), 422 when it can never be used.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sairex_engine::dispatch::callbacks::{
    CallbackError, CallbackSink, ExternalInbound, ExternalReceipt, InboundPart,
};
use sairex_engine::provider::http::settings::{CallbackAuth, CallbackConfig, callback_config};
use sairex_engine::provider::http::signature::{secrets_equal, twilio_verify, vonage_verify};
use sairex_pdu::receipt::MessageState;
use sairex_store::model::{Millis, ProviderKind};
use sairex_store::{Store, now_ms};

use crate::error::ApiError;
use crate::state::AppState;

/// How long the provider index is used before the store is read again; a callback naming an
/// unknown provider re-reads it at once (at most every [`FORCED_REFRESH_MS`]).
const INDEX_TTL_MS: Millis = 5_000;
const FORCED_REFRESH_MS: Millis = 250;
/// Query parameters of ours, left out of what Vonage signed.
const OUR_PARAMS: [&str; 3] = ["provider", "providerId", "token"];

/// One HTTP provider record, as callbacks need it.
#[derive(Debug)]
pub(crate) struct Entry {
    kind: ProviderKind,
    config: CallbackConfig,
}

#[derive(Debug, Default)]
struct Cached {
    at: Option<Millis>,
    entries: Arc<Vec<Entry>>,
}

/// The HTTP provider records of every organization, cached briefly (callbacks come at the rate
/// of messages; reading every record each time would not do).
#[derive(Debug, Default)]
pub(crate) struct ProviderIndex {
    cached: Mutex<Cached>,
}

impl ProviderIndex {
    fn entries(&self, store: &Store, force: bool) -> Result<Arc<Vec<Entry>>, ApiError> {
        let now = now_ms();
        {
            let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = cached.at {
                let age = now.saturating_sub(at);
                if age < INDEX_TTL_MS && (!force || age < FORCED_REFRESH_MS) {
                    return Ok(Arc::clone(&cached.entries));
                }
            }
        }
        let entries = Arc::new(read_entries(store)?);
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.at = Some(now);
        cached.entries = Arc::clone(&entries);
        Ok(entries)
    }
}

fn read_entries(store: &Store) -> Result<Vec<Entry>, ApiError> {
    let mut entries = Vec::new();
    for record in store.all_providers()? {
        if record.provider_kind == ProviderKind::Smpp {
            continue;
        }
        match callback_config(&record) {
            Ok(config) => entries.push(Entry {
                kind: record.provider_kind,
                config,
            }),
            Err(e) => {
                tracing::warn!(provider = record.id, error = %e, "provider cannot take callbacks")
            }
        }
    }
    Ok(entries)
}

/// What a callback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Inbound,
    Receipt,
}

/// The callback as received.
struct Callback {
    kind: ProviderKind,
    provider_id: Option<u64>,
    /// The provider's parameters (body for POST, query for GET; ours left out).
    params: Vec<(String, String)>,
    /// Our `token` query parameter (Veevo's shared secret).
    token: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<IpAddr>,
}

impl Callback {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// `POST|GET /api/sms/receive`.
pub(crate) async fn receive(State(state): State<AppState>, request: Request) -> Response {
    handle(state, request, Purpose::Inbound).await
}

/// `POST|GET /api/sms/dlr`.
pub(crate) async fn dlr(State(state): State<AppState>, request: Request) -> Response {
    handle(state, request, Purpose::Receipt).await
}

async fn handle(state: AppState, request: Request, purpose: Purpose) -> Response {
    match process(&state, request, purpose).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn process(
    state: &AppState,
    request: Request,
    purpose: Purpose,
) -> Result<Response, ApiError> {
    let callback = read(state, request).await?;
    let entry = find(state, &callback, purpose)?;
    authenticate(state, &callback, &entry.config)?;
    let Some(sink) = state.engine().callbacks() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ENGINE_UNAVAILABLE",
            "the engine does not take callbacks now",
        )
        .retry_after(5));
    };
    let provider_id = entry.config.provider_id;
    match purpose {
        Purpose::Receipt => {
            if let Some(receipt) = receipt(&callback, &entry.config)? {
                engine_result(submit_receipt(&sink, receipt).await)?;
            }
            Ok(ack(callback.kind, None))
        }
        Purpose::Inbound => {
            let message = inbound(&callback, &entry.config)?;
            engine_result(sink.inbound(message).await)?;
            tracing::debug!(provider = provider_id, "inbound message taken");
            Ok(ack(callback.kind, entry.config.auto_reply.as_deref()))
        }
    }
}

async fn submit_receipt(
    sink: &CallbackSink,
    receipt: ExternalReceipt,
) -> Result<(), CallbackError> {
    sink.receipt(receipt).await
}

fn engine_result(result: Result<(), CallbackError>) -> Result<(), ApiError> {
    match result {
        Ok(()) => Ok(()),
        Err(CallbackError::Refused(why)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CALLBACK_REFUSED",
            why,
        )),
        Err(CallbackError::Invalid(why)) => Err(ApiError::bad_request("INVALID_CALLBACK", why)),
        Err(e) => Err(
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_STORED", e.to_string())
                .retry_after(5),
        ),
    }
}

/// The answer to a callback taken: TwiML for Twilio, the JSON envelope otherwise.
fn ack(kind: ProviderKind, reply: Option<&str>) -> Response {
    if kind != ProviderKind::Twilio {
        return super::done();
    }
    let body = match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Reads the request: the `provider` and `providerId` query parameters and the provider's
/// parameters (a form or JSON body for POST, the query for GET).
async fn read(state: &AppState, request: Request) -> Result<Callback, ApiError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let ours = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let kind = match ours("provider").as_deref() {
        Some("twilio") => ProviderKind::Twilio,
        Some("vonage" | "nexmo") => ProviderKind::Vonage,
        Some("veevo") => ProviderKind::Veevo,
        Some(other) => {
            return Err(ApiError::bad_request(
                "UNKNOWN_PROVIDER",
                format!("provider: twilio, vonage or veevo, not {other:?}"),
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                "UNKNOWN_PROVIDER",
                "provider: required (twilio, vonage or veevo)",
            ));
        }
    };
    let provider_id = match ours("providerId") {
        Some(raw) => Some(
            raw.parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    ApiError::bad_request("UNKNOWN_PROVIDER", "providerId: a positive integer")
                })?,
        ),
        None => None,
    };
    let token = ours("token");
    let bytes = axum::body::to_bytes(body, state.settings().body_limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is over the size limit",
            )
        })?;
    let params = if parts.method == axum::http::Method::GET || bytes.is_empty() {
        query
            .into_iter()
            .filter(|(k, _)| !OUR_PARAMS.contains(&k.as_str()))
            .collect()
    } else {
        body_params(&parts.headers, &bytes)?
    };
    Ok(Callback {
        kind,
        provider_id,
        params,
        token,
        uri: parts.uri,
        headers: parts.headers,
        peer,
    })
}

fn body_params(headers: &HeaderMap, body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
        || body.first() == Some(&b'{');
    if !json {
        return Ok(form_urlencoded::parse(body).into_owned().collect());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("MALFORMED_JSON", format!("malformed JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "MALFORMED_JSON",
            "a JSON object is expected",
        ));
    };
    Ok(object
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect())
}

/// The record a callback is for.
fn find(state: &AppState, callback: &Callback, purpose: Purpose) -> Result<Entry, ApiError> {
    let index = state.callback_index();
    let lookup = |entries: &[Entry]| pick(entries, callback, purpose);
    let entries = index.entries(state.store(), false)?;
    match lookup(&entries) {
        Ok(found) => Ok(found),
        // Perhaps a record created a moment ago: read again once.
        Err(_) => lookup(&index.entries(state.store(), true)?),
    }
}

fn clone_entry(e: &Entry) -> Entry {
    Entry {
        kind: e.kind,
        config: e.config.clone(),
    }
}

fn pick(entries: &[Entry], callback: &Callback, purpose: Purpose) -> Result<Entry, ApiError> {
    let kind = callback.kind;
    let of_kind = entries.iter().filter(|e| e.kind == kind);
    if let Some(id) = callback.provider_id {
        return of_kind
            .into_iter()
            .find(|e| e.config.provider_id == id)
            .map(clone_entry)
            .ok_or_else(|| ApiError::not_found(&format!("{} provider {id}", kind_name(kind))));
    }
    // Our own number in the callback: inbound messages are sent to it; receipts come from it.
    let ours = match (kind, purpose) {
        (ProviderKind::Twilio, Purpose::Inbound) => callback.get("To"),
        (ProviderKind::Twilio, Purpose::Receipt) => callback.get("From"),
        (ProviderKind::Vonage, _) => callback.get("to"),
        _ => None,
    };
    let candidates: Vec<&Entry> = match kind {
        ProviderKind::Twilio => {
            let sid = callback.get("AccountSid").ok_or_else(|| {
                ApiError::bad_request("UNKNOWN_PROVIDER", "AccountSid is missing")
            })?;
            of_kind
                .filter(|e| matches!(&e.config.auth, CallbackAuth::Twilio { account_sid, .. } if account_sid == sid))
                .collect()
        }
        ProviderKind::Vonage => {
            let key = callback.get("api-key").ok_or_else(|| {
                ApiError::bad_request("UNKNOWN_PROVIDER", "api-key is missing; give providerId")
            })?;
            of_kind
                .filter(|e| matches!(&e.config.auth, CallbackAuth::Vonage { api_key, .. } if api_key == key))
                .collect()
        }
        _ => {
            let all: Vec<&Entry> = of_kind.collect();
            if all.len() > 1 {
                return Err(ApiError::bad_request(
                    "UNKNOWN_PROVIDER",
                    "providerId is required: several Veevo Tech providers exist",
                ));
            }
            all
        }
    };
    let found = match ours {
        Some(number) if candidates.len() > 1 => candidates
            .iter()
            .find(|e| e.config.numbers.iter().any(|n| same_number(n, number)))
            .or(candidates.first()),
        _ => candidates.first(),
    };
    found.map(|e| clone_entry(e)).ok_or_else(|| {
        let what = match kind {
            ProviderKind::Twilio => "Twilio account (AccountSid)",
            ProviderKind::Vonage => "Vonage account (api-key)",
            _ => "Veevo Tech provider",
        };
        ApiError::not_found(what)
    })
}

fn same_number(a: &str, b: &str) -> bool {
    a.trim_start_matches('+') == b.trim_start_matches('+')
}

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Twilio => "Twilio",
        ProviderKind::Vonage => "Vonage",
        ProviderKind::Veevo => "Veevo Tech",
        ProviderKind::Smpp => "SMPP",
    }
}

fn forbidden(why: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "INVALID_SIGNATURE", why.to_owned())
}

/// Checks the callback's signature (or secret, or source) against the record.
fn authenticate(
    state: &AppState,
    callback: &Callback,
    config: &CallbackConfig,
) -> Result<(), ApiError> {
    if !config.allow_ips.is_empty() {
        match callback.peer {
            Some(ip) if config.allow_ips.contains(&ip) => {}
            _ => return Err(forbidden("the callback's source address is not allowed")),
        }
    }
    let verified = match &config.auth {
        CallbackAuth::Twilio { auth_token, .. } => {
            let Some(signature) = callback
                .headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok())
            else {
                return unsigned(config, "X-Twilio-Signature is missing");
            };
            let urls = twilio_urls(
                state.settings().public_base_url.as_deref(),
                &callback.headers,
                &callback.uri,
            );
            twilio_verify(auth_token.expose(), &urls, &callback.params, signature)
        }
        CallbackAuth::Vonage {
            signature_secret,
            method,
            ..
        } => {
            if signature_secret.is_empty() {
                return unsigned(
                    config,
                    "no signature secret is configured for this provider",
                );
            }
            if callback.get("sig").is_none() {
                return unsigned(config, "sig is missing");
            }
            vonage_verify(*method, signature_secret.expose(), &callback.params)
        }
        CallbackAuth::Veevo { callback_secret } => {
            if callback_secret.is_empty() {
                if config.allow_ips.is_empty() {
                    return unsigned(
                        config,
                        "no callback secret or allowed addresses are configured",
                    );
                }
                true
            } else {
                let given = callback.token.clone().or_else(|| {
                    callback
                        .headers
                        .get("x-callback-token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                });
                match given {
                    Some(given) => secrets_equal(callback_secret.expose(), &given),
                    None => return unsigned(config, "the callback token is missing"),
                }
            }
        }
    };
    if verified {
        Ok(())
    } else {
        tracing::warn!(
            provider = config.provider_id,
            "callback with a bad signature refused"
        );
        Err(forbidden("the callback's signature does not match"))
    }
}

fn unsigned(config: &CallbackConfig, why: &str) -> Result<(), ApiError> {
    if config.allow_unsigned {
        Ok(())
    } else {
        tracing::warn!(
            provider = config.provider_id,
            reason = why,
            "unsigned callback refused"
        );
        Err(forbidden(why))
    }
}

/// The URLs Twilio may have signed: the public base URL (or what the headers say) with the
/// path and query as received, with and without a default port.
fn twilio_urls(public_base: Option<&str>, headers: &HeaderMap, uri: &Uri) -> Vec<String> {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let base = match public_base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
            };
            let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
            let host = header("x-forwarded-host")
                .or_else(|| header("host"))
                .unwrap_or_default();
            format!("{scheme}://{host}")
        }
    };
    let mut urls = vec![format!("{base}{path}")];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if let Some(rest) = base.strip_prefix(scheme) {
            let (host, tail) = rest.split_once('/').map_or((rest, ""), |(h, t)| (h, t));
            let variant = match host.strip_suffix(port) {
                Some(bare) => format!("{scheme}{bare}"),
                None if !host.contains(':') => format!("{scheme}{host}{port}"),
                None => continue,
            };
            let variant = if tail.is_empty() {
                variant
            } else {
                format!("{variant}/{tail}")
            };
            urls.push(format!("{variant}{path}"));
        }
    }
    urls
}

/// The receipt of a callback; `None` for a status that is no receipt (queued, sending, …).
fn receipt(
    callback: &Callback,
    config: &CallbackConfig,
) -> Result<Option<ExternalReceipt>, ApiError> {
    let missing =
        |name: &str| ApiError::bad_request("INVALID_CALLBACK", format!("{name} is missing"));
    let (id, state, error) = match callback.kind {
        ProviderKind::Twilio => {
            let id = callback
                .get("MessageSid")
                .or_else(|| callback.get("SmsSid"))
                .ok_or_else(|| missing("MessageSid"))?;
            let status = callback
                .get("MessageStatus")
                .or_else(|| callback.get("SmsStatus"))
                .ok_or_else(|| missing("MessageStatus"))?;
            let state = match status {
                "delivered" | "read" => MessageState::Delivered,
                "sent" => MessageState::Enroute,
                "undelivered" | "failed" => MessageState::Undeliverable,
                "canceled" => MessageState::Deleted,
                _ => return Ok(None),
            };
            let error = callback.get("ErrorCode").filter(|c| *c != "0");
            (id, state, error)
        }
        ProviderKind::Vonage => {
            let id = callback
                .get("messageId")
                .ok_or_else(|| missing("messageId"))?;
            let state = match callback.get("status").ok_or_else(|| missing("status"))? {
                "delivered" => MessageState::Delivered,
                "expired" => MessageState::Expired,
                "failed" => MessageState::Undeliverable,
                "rejected" => MessageState::Rejected,
                "accepted" | "buffered" => MessageState::Enroute,
                "unknown" => MessageState::Unknown,
                other => {
                    return Err(ApiError::bad_request(
                        "INVALID_CALLBACK",
                        format!("status: unknown value {other:?}"),
                    ));
                }
            };
            let error = callback.get("err-code").filter(|c| *c != "0");
            (id, state, error)
        }
        _ => {
            let f = &config.veevo_fields;
            let id = callback.get(&f.dlr_id).ok_or_else(|| missing(&f.dlr_id))?;
            let word = callback
                .get(&f.dlr_status)
                .ok_or_else(|| missing(&f.dlr_status))?;
            let state = MessageState::from_stat(word.as_bytes()).ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_CALLBACK",
                    format!("{}: unknown value {word:?}", f.dlr_status),
                )
            })?;
            let error = callback.get(&f.dlr_error).filter(|c| *c != "0");
            (id, state, error)
        }
    };
    Ok(Some(ExternalReceipt {
        provider_id: config.provider_id,
        provider_msg_id: id.to_owned(),
        state,
        error_code: if state == MessageState::Delivered {
            None
        } else {
            error.map(str::to_owned)
        },
    }))
}

/// The inbound message of a callback.
fn inbound(callback: &Callback, config: &CallbackConfig) -> Result<ExternalInbound, ApiError> {
    let missing =
        |name: &str| ApiError::bad_request("INVALID_CALLBACK", format!("{name} is missing"));
    let provider_id = config.provider_id;
    match callback.kind {
        ProviderKind::Twilio => Ok(ExternalInbound {
            provider_id,
            from: callback
                .get("From")
                .ok_or_else(|| missing("From"))?
                .to_owned(),
            to: callback.get("To").ok_or_else(|| missing("To"))?.to_owned(),
            text: callback.get("Body").unwrap_or_default().to_owned(),
            part: None,
        }),
        ProviderKind::Vonage => {
            let part = if callback.get("concat") == Some("true") {
                let number = |name: &str| -> Result<u8, ApiError> {
                    callback
                        .get(name)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "INVALID_CALLBACK",
                                format!("{name}: a number 1 to 255"),
                            )
                        })
                };
                Some(InboundPart {
                    reference: callback
                        .get("concat-ref")
                        .ok_or_else(|| missing("concat-ref"))?
                        .to_owned(),
                    total: number("concat-total")?,
                    seq: number("concat-part")?,
                })
            } else {
                None
            };
            Ok(ExternalInbound {
                provider_id,
                from: callback
                    .get("msisdn")
                    .ok_or_else(|| missing("msisdn"))?
                    .to_owned(),
                to: callback.get("to").ok_or_else(|| missing("to"))?.to_owned(),
                text: callback.get("text").unwrap_or_default().to_owned(),
                part,
            })
        }
        _ => {
            let f = &config.veevo_fields;
            Ok(ExternalInbound {
                provider_id,
                from: callback
                    .get(&f.inbound_from)
                    .ok_or_else(|| missing(&f.inbound_from))?
                    .to_owned(),
                to: callback
                    .get(&f.inbound_to)
                    .ok_or_else(|| missing(&f.inbound_to))?
                    .to_owned(),
                text: callback.get(&f.inbound_text).unwrap_or_default().to_owned(),
                part: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_url_variants() {
        let uri: Uri = "/api/sms/dlr?provider=twilio&providerId=3"
            .parse()
            .unwrap_or_default();
        let urls = twilio_urls(Some("https://sms.example.com/"), &HeaderMap::new(), &uri);
        assert_eq!(
            urls,
            vec![
                "https://sms.example.com/api/sms/dlr?provider=twilio&providerId=3".to_owned(),
                "https://sms.example.com:443/api/sms/dlr?provider=twilio&providerId=3".to_owned(),
            ]
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            "gw.local:8080"
                .parse()
                .unwrap_or(axum::http::HeaderValue::from_static("x")),
        );
        headers.insert(
            "x-forwarded-proto",
            axum::http::HeaderValue::from_static("https"),
        );
        let urls = twilio_urls(None, &headers, &uri);
        assert_eq!(
            urls[0],
            "https://gw.local:8080/api/sms/dlr?provider=twilio&providerId=3"
        );
    }

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
