//! One HTTP attempt: the pooled client, the signed POST, what came back.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Url, redirect};
use tokio::time::{Duration, Instant};

use super::sign::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header};
use super::target::{GuardedResolver, TargetError, check_target};
use super::{WebhookConfig, WebhookError};

/// Most of a response body kept for the delivery log (the store keeps 1 KiB).
const KEEP_BODY: usize = 1024;

/// A signing secret: kept out of `Debug` output so it never reaches a log.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Arc<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The webhook client: pooled connections (as many kept idle as attempts may run at once, so a
/// steady stream of events reuses them instead of reconnecting), timeouts, no redirects (a redirect could point at a
/// private address the check never saw), no proxy from the environment, and names resolved
/// through [`GuardedResolver`].
pub(crate) fn client(config: &WebhookConfig) -> Result<Client, WebhookError> {
    crate::http_client::builder()
        .map_err(|e| WebhookError::Client(e.to_string()))?
        .dns_resolver(GuardedResolver {
            allow_private: config.allow_private_targets,
        })
        .redirect(redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(config.max_in_flight.max(1))
        .user_agent(config.user_agent.clone())
        .build()
        .map_err(|e| WebhookError::Client(describe(&e)))
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub(crate) struct AttemptResult {
    pub(crate) http_status: Option<u16>,
    pub(crate) success: bool,
    pub(crate) latency: Duration,
    pub(crate) response_body: Option<String>,
    pub(crate) error: Option<String>,
    /// The target was refused by the SSRF rules (no request was made).
    pub(crate) refused: bool,
}

impl AttemptResult {
    fn failed(error: String, latency: Duration, refused: bool) -> Self {
        Self {
            http_status: None,
            success: false,
            latency,
            response_body: None,
            error: Some(error),
            refused,
        }
    }
}

/// What to send.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) url: &'a Url,
    pub(crate) secret: Option<&'a Secret>,
    pub(crate) event: &'a str,
    pub(crate) delivery_id: &'a str,
    pub(crate) body: &'a Bytes,
}

/// POSTs the body, signed now; 2xx is success, anything else (other statuses, timeouts,
/// connection errors, refused targets) a failure.
pub(crate) async fn attempt(
    client: &Client,
    allow_private: bool,
    req: Request<'_>,
) -> AttemptResult {
    let started = Instant::now();
    // IP literals never reach the resolver: check them (and the scheme) here.
    if let Err(e) = check_target(req.url, allow_private) {
        return AttemptResult::failed(e.to_string(), started.elapsed(), true);
    }
    let mut builder = client
        .post(req.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(EVENT_HEADER, req.event)
        .header(DELIVERY_HEADER, req.delivery_id)
        .body(req.body.clone());
    if let Some(secret) = req.secret {
        builder = builder.header(
            SIGNATURE_HEADER,
            signature_header(&secret.0, unix_seconds(), req.body),
        );
    }
    let mut response = match builder.send().await {
        Ok(response) => response,
        Err(e) => {
            let refused = target_refusal(&e).is_some();
            let error = target_refusal(&e).map_or_else(|| describe(&e), ToString::to_string);
            return AttemptResult::failed(error, started.elapsed(), refused);
        }
    };
    let status = response.status();
    // Only the start of the body is kept; reading stops there and the rest is dropped (the
    // connection is then not reused, which is fine for a misbehaving receiver).
    let mut kept = Vec::new();
    let mut body_error = None;
    while kept.len() < KEEP_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = KEEP_BODY - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                body_error = Some(describe(&e));
                break;
            }
        }
    }
    let latency = started.elapsed();
    let text = String::from_utf8_lossy(&kept).into_owned();
    AttemptResult {
        http_status: Some(status.as_u16()),
        // A 2xx whose body then timed out still reached the receiver: success.
        success: status.is_success(),
        latency,
        response_body: (!text.is_empty()).then_some(text),
        error: if status.is_success() {
            None
        } else {
            Some(body_error.unwrap_or_else(|| format!("HTTP {}", status.as_u16())))
        },
        refused: false,
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The SSRF refusal inside a client error, if that is what it was.
fn target_refusal(e: &reqwest::Error) -> Option<&TargetError> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<TargetError>() {
            return Some(t);
        }
        source = s.source();
    }
    None
}

/// An error and its causes, without the URL (a callback URL may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        "bad request"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source
        && depth < 4
    {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    text
}
