//! Fake HTTP providers: Twilio, Vonage and Veevo Tech servers (axum) that speak enough of each
//! API for the gateway, for tests and load tests. Each accepts sends (checking the account's
//! credentials), answers as the real API does, then calls back with a delivery receipt, signed
//! as the real provider signs; it can also post inbound messages. Latency and errors can be
//! injected, and every request is recorded so tests can check what went over the wire.
//!
//! The signatures are computed here from the providers' documented algorithms, independently of
//! the gateway's own code, so a test of a fake against the gateway checks one against the other.
//!
//! | fake | send | receipt callback | inbound callback |
//! |---|---|---|---|
//! | Twilio | `POST /2010-04-01/Accounts/{sid}/Messages.json` (form, basic auth) | `POST` form to the message's `StatusCallback` (else [`FakeConfig::callback_url`]), `X-Twilio-Signature` | `POST` form, signed |
//! | Vonage | `POST /sms/json` (form or query; `api_secret` or `sig`) | `GET` with query parameters to the message's `callback` (else the configured URL), `sig` when a signature secret is set | `POST` form, `sig`, long texts as concatenated parts |
//! | Veevo | `POST /v3/sendsms` (JSON or form) | `POST` JSON to the configured URL, `X-Callback-Token` | `POST` JSON |
//!
//! Balance endpoints: Twilio `Balance.json`, Vonage `/account/get-balance`, Veevo
//! `/v3/balance`.

mod twilio;
mod veevo;
mod vonage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hmac::Mac;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A Twilio account the fake accepts.
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    /// `AC…`.
    pub account_sid: String,
    /// The auth token (basic auth password, and the callbacks' signing key).
    pub auth_token: String,
}

/// A Vonage account the fake accepts.
#[derive(Debug, Clone)]
pub struct VonageAccount {
    /// `api_key`.
    pub api_key: String,
    /// `api_secret` (empty: only signed requests are accepted).
    pub api_secret: String,
    /// The signature secret (empty: callbacks are not signed).
    pub signature_secret: String,
    /// `md5hash`, `md5`, `sha1`, `sha256` or `sha512`.
    pub signature_method: String,
}

/// A Veevo Tech account the fake accepts.
#[derive(Debug, Clone)]
pub struct VeevoAccount {
    /// The API hash (sent as `hash` or `apikey`).
    pub hash: String,
    /// Sent as `X-Callback-Token` with callbacks (empty: none).
    pub callback_secret: String,
}

/// Which provider the fake plays.
#[derive(Debug, Clone)]
pub enum FakeKind {
    /// Twilio Programmable Messaging.
    Twilio(TwilioAccount),
    /// The Vonage SMS API.
    Vonage(VonageAccount),
    /// Veevo Tech.
    Veevo(VeevoAccount),
}

/// What the fake reports in receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeReceipt {
    /// Delivered.
    Delivered,
    /// Failed (undelivered) with an error code.
    Failed,
    /// No receipt at all.
    None,
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The provider and its account.
    pub kind: FakeKind,
    /// Added before every answer.
    pub latency: Duration,
    /// Fraction (0–1) of sends answered with [`FakeConfig::error_status`].
    pub error_rate: f64,
    /// The HTTP status of injected errors (500, 503, 429, …).
    pub error_status: u16,
    /// From the send's answer to its receipt.
    pub receipt_delay: Duration,
    /// What receipts say.
    pub receipt: FakeReceipt,
    /// Receipts for messages that carry no callback URL (Veevo's portal setting).
    pub callback_url: Option<String>,
    /// Where inbound messages are posted.
    pub inbound_url: Option<String>,
    /// The balance the balance endpoint reports.
    pub balance: f64,
}

impl FakeConfig {
    /// No latency, no errors, delivered receipts after 20 ms.
    pub fn new(kind: FakeKind) -> Self {
        Self {
            kind,
            latency: Duration::ZERO,
            error_rate: 0.0,
            error_status: 500,
            receipt_delay: Duration::from_millis(20),
            receipt: FakeReceipt::Delivered,
            callback_url: None,
            inbound_url: None,
            balance: 42.5,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `POST`, `GET`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// Form (or query) parameters: the body's when it is form-encoded, else the query's.
    pub fn params(&self) -> Vec<(String, String)> {
        let form = self
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let raw: &[u8] = if form {
            &self.body
        } else {
            self.query.as_bytes()
        };
        form_urlencoded::parse(raw).into_owned().collect()
    }

    /// One parameter (see [`Recorded::params`]).
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Counters of a fake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// Sends accepted.
    pub accepted: u64,
    /// Sends refused (injected errors, bad credentials, bad requests).
    pub refused: u64,
    /// Callbacks the gateway answered 2xx.
    pub callbacks_ok: u64,
    /// Callbacks that failed (non-2xx or no connection).
    pub callbacks_failed: u64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeConfig,
    requests: Mutex<Vec<Recorded>>,
    forced_status: Mutex<Option<u16>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    callbacks_ok: AtomicU64,
    callbacks_failed: AtomicU64,
    /// Last callback statuses, for tests.
    callback_statuses: Mutex<Vec<u16>>,
    pub(crate) tasks: tokio_util::task::TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn record(&self, r: Recorded) {
        let mut requests = lock(&self.requests);
        // Bounded: a load test records the last 10,000.
        if requests.len() >= 10_000 {
            requests.remove(0);
        }
        requests.push(r);
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The injected error for this send, if any.
    pub(crate) fn injected(&self) -> Option<u16> {
        if let Some(status) = *lock(&self.forced_status) {
            return Some(status);
        }
        let rate = self.config.error_rate;
        (rate > 0.0 && rand::random::<f64>() < rate).then_some(self.config.error_status)
    }

    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) async fn latency(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }

    pub(crate) fn callback_done(&self, status: Option<u16>) {
        match status {
            Some(s) if (200..300).contains(&s) => {
                self.callbacks_ok.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.callbacks_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        lock(&self.callback_statuses).push(status.unwrap_or(0));
    }
}

/// A running fake provider.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    join: JoinHandle<()>,
}

/// Why a fake could not start or a callback could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// Binding or serving failed.
    #[error("fake provider: {0}")]
    Io(#[from] std::io::Error),
    /// No URL is configured for this callback.
    #[error("no {0} URL configured")]
    NoUrl(&'static str),
    /// The URL cannot be used (only `http://host:port/…`).
    #[error("unusable callback URL {0:?}")]
    BadUrl(String),
    /// The callback request failed.
    #[error("callback failed: {0}")]
    Callback(String),
}

impl FakeServer {
    /// Serves the fake on `addr` (use `127.0.0.1:0`).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(config: FakeConfig, addr: SocketAddr) -> Result<Self, FakeError> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            requests: Mutex::new(Vec::new()),
            forced_status: Mutex::new(None),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            callbacks_ok: AtomicU64::new(0),
            callbacks_failed: AtomicU64::new(0),
            callback_statuses: Mutex::new(Vec::new()),
            tasks: tokio_util::task::TaskTracker::new(),
        });
        let router = match &shared.config.kind {
            FakeKind::Twilio(_) => twilio::router(Arc::clone(&shared)),
            FakeKind::Vonage(_) => vonage::router(Arc::clone(&shared)),
            FakeKind::Veevo(_) => veevo::router(Arc::clone(&shared)),
        };
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let join = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake provider stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            cancel,
            join,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`http://127.0.0.1:port`), for a provider's `baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far (the last 10,000).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// The counters.
    pub fn stats(&self) -> FakeStats {
        FakeStats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            callbacks_ok: self.shared.callbacks_ok.load(Ordering::Relaxed),
            callbacks_failed: self.shared.callbacks_failed.load(Ordering::Relaxed),
        }
    }

    /// The gateway's answers to the callbacks made so far (0 when it could not be reached).
    pub fn callback_statuses(&self) -> Vec<u16> {
        lock(&self.shared.callback_statuses).clone()
    }

    /// Answers every send with `status` from now on (`None`: back to normal).
    pub fn fail_with(&self, status: Option<u16>) {
        *lock(&self.shared.forced_status) = status;
    }

    /// Posts one inbound message to [`FakeConfig::inbound_url`], signed as the provider signs;
    /// returns the gateway's HTTP status. A Vonage text longer than one SMS goes as
    /// concatenated parts, in order.
    ///
    /// # Errors
    /// [`FakeError`] when no URL is configured or the request fails.
    pub async fn inbound(&self, from: &str, to: &str, text: &str) -> Result<u16, FakeError> {
        let url = self
            .shared
            .config
            .inbound_url
            .clone()
            .ok_or(FakeError::NoUrl("inbound"))?;
        match &self.shared.config.kind {
            FakeKind::Twilio(account) => {
                twilio::post_inbound(&self.shared, account, &url, from, to, text).await
            }
            FakeKind::Vonage(account) => {
                let parts = vonage::split(text);
                let order: Vec<usize> = (0..parts.len()).collect();
                vonage::post_inbound_parts(account, &url, from, to, &parts, &order)
                    .await
                    .map(|s| s.last().copied().unwrap_or(0))
            }
            FakeKind::Veevo(account) => {
                veevo::post_inbound(&self.shared, account, &url, from, to, text).await
            }
        }
    }

    /// Vonage only: posts the parts of one concatenated message in the order given by
    /// `order` (indexes into `parts`; leave one out for a missing part). Returns the gateway's
    /// status for each.
    ///
    /// # Errors
    /// [`FakeError`] as [`FakeServer::inbound`], or when this fake is not Vonage.
    pub async fn vonage_inbound_parts(
        &self,
        from: &str,
        to: &str,
        parts: &[&str],
        order: &[usize],
    ) -> Result<Vec<u16>, FakeError> {
        let url = self
            .shared
            .config
            .inbound_url
            .clone()
            .ok_or(FakeError::NoUrl("inbound"))?;
        let FakeKind::Vonage(account) = &self.shared.config.kind else {
            return Err(FakeError::Callback("not a Vonage fake".into()));
        };
        let parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        vonage::post_inbound_parts(account, &url, from, to, &parts, order).await
    }

    /// Stops serving and waits for callbacks in progress (bounded).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tasks.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
    }
}

/// Recorded form of an axum request's parts and body.
pub(crate) fn recorded(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Recorded {
    Recorded {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    }
}

/// Twilio's signature: HMAC-SHA1 over the URL and the sorted parameters, base64.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Vonage's signature of `params` with `method` (`md5hash` lower-case hex, HMACs upper-case).
pub fn vonage_signature(method: &str, secret: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let base: String = sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect();
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    fn mac<M: Mac + hmac::digest::KeyInit>(secret: &str, base: &str) -> String {
        match <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()) {
            Ok(mut m) => {
                m.update(base.as_bytes());
                hex(&m.finalize().into_bytes()).to_uppercase()
            }
            Err(_) => String::new(),
        }
    }
    match method {
        "md5" => mac::<hmac::Hmac<md5::Md5>>(secret, &base),
        "sha1" => mac::<hmac::Hmac<sha1::Sha1>>(secret, &base),
        "sha256" => mac::<hmac::Hmac<sha2::Sha256>>(secret, &base),
        "sha512" => mac::<hmac::Hmac<sha2::Sha512>>(secret, &base),
        _ => {
            use md5::Digest as _;
            let mut h = md5::Md5::new();
            h.update(base.as_bytes());
            h.update(secret.as_bytes());
            hex(&h.finalize())
        }
    }
}

/// A plain-HTTP callback request: method, URL, content type, body, extra headers. Returns the
/// status. Only `http://` URLs (fakes call back to the gateway on loopback).
pub(crate) async fn call(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<u16, FakeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| FakeError::BadUrl(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| FakeError::Callback(format!("connect {authority}: {e}")))?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| FakeError::Callback(e.to_string()))?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("user-agent", "sairex-fake-provider");
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| FakeError::Callback(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| FakeError::Callback(e.to_string()))?;
    let status = response.status().as_u16();
    // Drain the body so the connection ends cleanly.
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// Form-encodes `pairs`.
pub(crate) fn form(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `url` with `pairs` appended to its query.
pub(crate) fn with_query(url: &str, pairs: &[(String, String)]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", form(pairs))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The fakes' signers against the providers' published examples.
    #[test]
    fn signers_match_published_examples() {
        let twilio = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &twilio
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let vonage = p(&[
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ]);
        let secret = "my_secret_key_for_testing";
        assert_eq!(
            vonage_signature("md5hash", secret, &vonage),
            "d2e7b1dc968737c5998ad624e02f90b7"
        );
        assert_eq!(
            vonage_signature("sha1", secret, &vonage),
            "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"
        );
    }
}
