//! Helpers of the API's integration tests: a real store in a temporary directory, the router
//! served on 127.0.0.1:0, a reqwest client, and an [`EngineLink`] test double.
// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sairex_engine::dispatch::EngineEvent;
use sairex_http_api::{ApiSettings, EngineLink, ProviderRuntime, Secret, WebhookTestResult};
use sairex_store::model::Id;
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::Value;
use tokio::sync::broadcast;

pub const ADMIN_TOKEN: &str = "test-superadmin-token";

/// An engine that records what the API told it.
pub struct FakeEngine {
    pub events: broadcast::Sender<EngineEvent>,
    pub nudges: AtomicU64,
    pub provider_changes: AtomicU64,
    pub running: AtomicBool,
    /// What `runtime` reports (the providers running and their binds).
    pub runtime: std::sync::Mutex<Vec<ProviderRuntime>>,
}

impl FakeEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            events: broadcast::channel(1024).0,
            nudges: AtomicU64::new(0),
            provider_changes: AtomicU64::new(0),
            running: AtomicBool::new(true),
            runtime: std::sync::Mutex::new(Vec::new()),
        })
    }
}

impl EngineLink for FakeEngine {
    fn nudge(&self) {
        self.nudges.fetch_add(1, Ordering::SeqCst);
    }
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }
    fn providers_changed(&self) {
        self.provider_changes.fetch_add(1, Ordering::SeqCst);
    }
    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    fn runtime(&self) -> BoxFuture<'static, Vec<ProviderRuntime>> {
        let now = self.runtime.lock().unwrap().clone();
        Box::pin(async move { now })
    }
    fn send_test_webhook(
        &self,
        _org: Id,
        _webhook_id: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        Box::pin(async {
            Ok(WebhookTestResult {
                success: true,
                http_status: Some(200),
                latency_ms: Some(1),
                error: None,
            })
        })
    }
}

/// A served API over a fresh store.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub engine: Arc<FakeEngine>,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn settings() -> ApiSettings {
    ApiSettings {
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        allow_private_webhook_targets: true,
        default_key_per_minute: 10_000,
        default_key_per_day: 1_000_000,
        ..ApiSettings::default()
    }
}

impl Api {
    pub async fn start() -> Self {
        Self::start_with(settings()).await
    }

    pub async fn start_with(settings: ApiSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate()))
                .unwrap();
        let engine = FakeEngine::new();
        let base = serve(store.clone(), engine.clone(), settings).await;
        Self {
            base,
            client: sairex_engine::http_client::builder()
                .unwrap()
                .build()
                .unwrap(),
            store,
            engine,
            _dir: dir,
        }
    }

    /// Sends a request with an optional bearer token and a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{path}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.raw(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.raw(
            Method::POST,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.raw(
            Method::PUT,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.raw(
            Method::PATCH,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.raw(Method::DELETE, path, Some(token), None).await
    }

    /// Creates an organization through the superadmin route; returns its id and admin key.
    pub async fn org(&self, name: &str) -> (u64, String) {
        let reply = self
            .post(
                "/api/admin/organizations",
                ADMIN_TOKEN,
                serde_json::json!({ "name": name, "defaultCountry": "PK" }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
        let data = reply.data();
        (
            data["id"].as_u64().unwrap(),
            data["apiKey"]["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a key with these scopes (and optional limits) using the admin key.
    pub async fn key(&self, admin: &str, scopes: &[&str], extra: Value) -> (u64, String) {
        let mut body = serde_json::json!({ "name": "test key", "scopes": scopes });
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let reply = self.post("/api/sms/api-keys", admin, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
        (
            reply.data()["id"].as_u64().unwrap(),
            reply.data()["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Serves the router on 127.0.0.1:0; returns its base URL.
pub async fn serve(store: Store, engine: Arc<dyn EngineLink>, settings: ApiSettings) -> String {
    let router = sairex_http_api::router(store, engine, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}
