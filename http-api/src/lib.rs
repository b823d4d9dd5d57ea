//! The HTTP facade of Sairex SMS: the public REST API, the admin JSON, the event stream and
//! metrics (see `docs/architecture.md`; paths and JSON shapes follow the blueprint §4.2).
//!
//! The binary wires it: it opens the [`Store`], starts the engine, implements [`EngineLink`]
//! over it, fills [`ApiSettings`] from the config and serves [`router`] (and [`metrics_router`]
//! on the metrics listener). This crate never starts the engine itself.
//!
//! # Contract
//! - Every response, errors included, is the JSON envelope `{"success": true, "data": …}` or
//!   `{"success": false, "error": {"code": …, "message": …}}` ([`ApiError`]).
//! - `/api/sms/*` takes `Authorization: Bearer sk_live_…` (an API key of one organization,
//!   scopes checked per route); `/api/admin/*` takes the superadmin token.
//! - A 202 from `POST /api/sms/send` means the message is durable in the store, with its QUEUED
//!   event in the outbox (webhooks and the event stream read it there); the engine is then
//!   nudged ([`EngineLink::nudge`]).
//! - Another organization's object is a 404, and lists never include it.
//!
//! # Layout
//! - `error`: [`ApiError`] and the envelope.
//! - `idempotency`: the `Idempotency-Key` layer of the creating routes (stored replays).
//! - `json`: strict request bodies (unknown fields and type errors named).
//! - `auth`: API keys (generation, hash, cache), the superadmin token, the middleware that
//!   authenticates and rate-limits.
//! - `limits`: per-key and per-organization minute and day windows.
//! - `phone`, `text`, `time`: E.164 normalisation, body cleaning and templates, RFC 3339.
//! - [`ssrf`]: the rule that refuses private, loopback and link-local targets.
//! - [`console`]: the web console under `/console/` (server-rendered, assets embedded), its
//!   users and sessions, and the superadmin's operator view.
//! - `throughput`: providers' messages per second between looks at `GET /api/admin/status`.
//! - [`smpp_server`]: the SMPP 3.4 server customers bind to, on the same state as the API.
//! - `routes`: the route table (`routes::callbacks`: the HTTP providers' signed callbacks) (one list: the router and `/openapi.json` both come from it).
#![warn(missing_docs)]

mod auth;
pub mod console;
mod country_zones;
mod error;
mod idempotency;
mod json;
mod limits;
mod listing;
mod openapi;
mod phone;
mod routes;
pub mod smpp_server;
pub mod ssrf;
mod state;
mod text;
mod throughput;
mod time;
mod zone;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use sairex_engine::dispatch::EngineEvent;
use sairex_store::Store;
use sairex_store::model::Id;
use serde::Serialize;

pub use auth::{API_KEY_PREFIX, generate_api_key};
pub use error::ApiError;
pub use routes::{RouteInfo, route_table};

/// What the API needs from the running engine. The binary implements it over the engine's
/// dispatcher handle; tests use a double.
pub trait EngineLink: Send + Sync + 'static {
    /// New messages are ready in the store.
    fn nudge(&self);
    /// Every engine event from now on (status changes, inbound messages), relayed from the
    /// store's outbox.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EngineEvent>;
    /// A provider configuration was created, changed or deleted: re-read them from the store
    /// (start, stop or rebind).
    fn providers_changed(&self);
    /// Whether the engine is running (for `/readyz`).
    fn is_running(&self) -> bool;
    /// Sends one signed test event to a webhook of the organization now and reports the
    /// attempt (the engine's webhook sender records it in the delivery log).
    fn send_test_webhook(
        &self,
        org: Id,
        webhook_id: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>>;
    /// Where receipts and inbound messages of HTTP providers' callbacks go
    /// (`/api/sms/dlr`, `/api/sms/receive`); `None` (the default) answers them 503.
    fn callbacks(&self) -> Option<sairex_engine::dispatch::callbacks::CallbackSink> {
        None
    }
    /// The providers running now and their binds (`GET /api/admin/status`); a provider not
    /// listed is not running. The default: none.
    fn runtime(&self) -> BoxFuture<'static, Vec<ProviderRuntime>> {
        Box::pin(async { Vec::new() })
    }
}

/// A running provider as the engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderRuntime {
    /// The provider record.
    pub provider_id: Id,
    /// Its SMPP binds in order (empty for an HTTP provider).
    pub binds: Vec<BindRuntime>,
    /// Messages it accepted (each change to SENT) since the gateway started, as the engine
    /// counts them in `sms_messages_total`; `None` when no metrics recorder runs. The
    /// operator view's throughput is the change of this count over time.
    pub sent_total: Option<u64>,
}

/// One SMPP bind now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindRuntime {
    /// Bound and taking submits.
    pub bound: bool,
    /// A session runs (connecting or binding when not bound); false while it waits to
    /// reconnect.
    pub connected: bool,
    /// Submits sent and not yet answered.
    pub window_in_use: u32,
    /// The window.
    pub window: u32,
    /// Session restarts since the provider started.
    pub reconnects: u64,
    /// Why its last connection ended.
    pub last_error: Option<String>,
}

/// The outcome of [`EngineLink::send_test_webhook`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTestResult {
    /// Whether the endpoint answered 2xx.
    pub success: bool,
    /// The HTTP status received, if any.
    pub http_status: Option<u16>,
    /// Round trip in milliseconds.
    pub latency_ms: Option<u32>,
    /// Why it failed (connection refused, timeout, …).
    pub error: Option<String>,
}

/// A secret from the config: compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself (do not log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The API's settings (the binary fills them from the config).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The superadmin token for `/api/admin/*`; `None` disables those routes (401).
    pub admin_token: Option<Secret>,
    /// Largest request body in bytes (413 over it).
    pub body_limit: usize,
    /// Ready messages in the store over which sends are refused with 503 and Retry-After.
    pub max_queue_depth: u64,
    /// Seconds a 503 for a full queue asks the client to wait.
    pub queue_full_retry_after: u64,
    /// Allow webhook and callback URLs that resolve to private, loopback or link-local
    /// addresses (`[webhooks] allow_private_targets`; tests use it).
    pub allow_private_webhook_targets: bool,
    /// Requests per minute an organization may make over all its keys (`None`: no limit).
    pub org_per_minute: Option<u32>,
    /// Requests per day an organization may make over all its keys (`None`: no limit).
    pub org_per_day: Option<u32>,
    /// Per-minute limit of keys created without one (the organization's first key included).
    pub default_key_per_minute: u32,
    /// Per-day limit of keys created without one.
    pub default_key_per_day: u32,
    /// Cost of one segment when the organization's providers do not say, in millionths.
    pub default_cost_per_segment: i64,
    /// Currency of [`ApiSettings::default_cost_per_segment`].
    pub default_currency: String,
    /// The public base URL, for the OpenAPI `servers` entry (and the console's cookies are
    /// `Secure` when it is https).
    pub public_base_url: Option<String>,
    /// How long a web console session lasts from login, in milliseconds.
    pub console_session_ttl_ms: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            admin_token: None,
            body_limit: 1024 * 1024,
            max_queue_depth: 1_000_000,
            queue_full_retry_after: 5,
            allow_private_webhook_targets: false,
            org_per_minute: None,
            org_per_day: None,
            default_key_per_minute: 60,
            default_key_per_day: 10_000,
            default_cost_per_segment: 500_000,
            default_currency: "PKR".to_owned(),
            public_base_url: None,
            console_session_ttl_ms: console::DEFAULT_SESSION_TTL_MS,
        }
    }
}

/// The whole API (public and admin routes, `/healthz`, `/readyz`, `/openapi.json`) over the
/// store and the engine. Call it inside a tokio runtime.
pub fn router(store: Store, engine: Arc<dyn EngineLink>, settings: ApiSettings) -> axum::Router {
    build(store, engine, settings).0
}

/// The API's shared state, to start the [`smpp_server::SmppServer`] over (one send path, one
/// set of caches and limits for both doors).
#[derive(Clone)]
pub struct ApiHandle {
    state: state::AppState,
}

impl fmt::Debug for ApiHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiHandle")
    }
}

/// [`router`], and the handle of the state it serves.
pub fn build(
    store: Store,
    engine: Arc<dyn EngineLink>,
    settings: ApiSettings,
) -> (axum::Router, ApiHandle) {
    let state = state::AppState::new(store, engine, settings);
    (routes::build(state.clone()), ApiHandle { state })
}

/// `GET /metrics` on the API listener (when there is no `metrics_listen`): only with the
/// superadmin token as a bearer token, since the public port must not show traffic figures
/// to anyone who asks (401 in the usual error envelope otherwise, and always without a token).
pub fn protected_metrics_router(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    admin_token: Option<Secret>,
) -> axum::Router {
    metrics_router(handle).route_layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let admin_token = admin_token.clone();
            async move {
                if auth::is_superadmin(request.headers(), admin_token.as_ref()) {
                    next.run(request).await
                } else {
                    axum::response::IntoResponse::into_response(ApiError::unauthorized(
                        "/metrics on the API listener needs the superadmin token \
                         (Authorization: Bearer …), or serve it on [server] metrics_listen",
                    ))
                }
            }
        },
    ))
}

/// `GET /metrics` in the Prometheus text format, for the metrics listener.
pub fn metrics_router(handle: metrics_exporter_prometheus::PrometheusHandle) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}
