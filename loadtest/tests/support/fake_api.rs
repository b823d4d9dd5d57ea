//! A fake Sairex API for the load generator's tests and for measuring the generator itself:
//! `POST /api/sms/send` and `/api/sms/send-bulk` answer 202 with message ids (after checking
//! the bearer key and the JSON), and `GET /api/sms/events` streams a `message.status`
//! DELIVERED event for each accepted message, `delivery_delay` later. Loopback only.
// Each user of this file uses a different part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The API key it accepts.
    pub key: String,
    /// Time from the 202 to the DELIVERED event.
    pub delivery_delay: Duration,
    /// Every n-th send (1-based; 0: never) is refused with 429 RATE_LIMITED.
    pub reject_every: u64,
    /// Messages whose id is a multiple of this (0: none) get FAILED instead of DELIVERED.
    pub fail_every: u64,
    /// Messages whose id is a multiple of this (0: none) get no final event at all.
    pub lose_every: u64,
    /// The send with this 1-based number (0: none) is answered only after `stall`.
    pub stall_request: u64,
    /// How long the stalled request waits.
    pub stall: Duration,
    /// Keep each request's JSON for inspection (off when measuring the generator).
    pub record: bool,
    /// Events buffered for a slow event-stream reader; past that it gets a `lagged` event.
    pub event_capacity: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            key: "sk_live_test".into(),
            delivery_delay: Duration::from_millis(2),
            reject_every: 0,
            fail_every: 0,
            lose_every: 0,
            stall_request: 0,
            stall: Duration::ZERO,
            record: true,
            event_capacity: 1 << 16,
        }
    }
}

#[derive(Debug)]
struct Inner {
    config: FakeConfig,
    requests: AtomicU64,
    next_id: AtomicU64,
    events: broadcast::Sender<(u64, &'static str)>,
    received: Mutex<Vec<Value>>,
}

/// A running fake API.
#[derive(Debug, Clone)]
pub struct FakeApi {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeApi {
    /// Starts it on 127.0.0.1, port 0.
    pub async fn start(config: FakeConfig) -> FakeApi {
        Self::start_on(0, config).await
    }

    /// Starts it on 127.0.0.1:`port`.
    pub async fn start_on(port: u16, config: FakeConfig) -> FakeApi {
        let (events, _) = broadcast::channel(config.event_capacity);
        let inner = Arc::new(Inner {
            config,
            requests: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            events,
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/api/sms/send", post(send))
            .route("/api/sms/send-bulk", post(send_bulk))
            .route("/api/sms/events", get(events_stream))
            .with_state(Arc::clone(&inner));
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApi { addr, inner }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON bodies it accepted or refused, in arrival order (with `record`).
    pub fn received(&self) -> Vec<Value> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Requests it got on the send endpoints.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = json!({"success": false, "error": {"code": code, "message": code}});
    (status, Json(body)).into_response()
}

/// Checks the key, counts the request, records it; the error response if it is refused.
async fn admit(inner: &Inner, headers: &HeaderMap, body: &Value) -> Result<(), Response> {
    let want = format!("Bearer {}", inner.config.key);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    }
    let n = inner.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if inner.config.record {
        inner.received.lock().unwrap().push(body.clone());
    }
    if n == inner.config.stall_request {
        tokio::time::sleep(inner.config.stall).await;
    }
    if inner.config.reject_every > 0 && n.is_multiple_of(inner.config.reject_every) {
        return Err(error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"));
    }
    if body["body"].as_str().is_none_or(str::is_empty) {
        return Err(error(StatusCode::BAD_REQUEST, "INVALID_REQUEST"));
    }
    Ok(())
}

/// Takes an id and schedules its final event.
fn accept_one(inner: &Arc<Inner>) -> u64 {
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let c = &inner.config;
    let status = if c.lose_every > 0 && id.is_multiple_of(c.lose_every) {
        return id;
    } else if c.fail_every > 0 && id.is_multiple_of(c.fail_every) {
        "FAILED"
    } else {
        "DELIVERED"
    };
    let events = inner.events.clone();
    if c.delivery_delay.is_zero() {
        let _ = events.send((id, status));
    } else {
        let delay = c.delivery_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send((id, "SUBMITTED"));
            let _ = events.send((id, status));
        });
    }
    id
}

async fn send(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&inner, &headers, &body).await {
        return refused;
    }
    if body["to"].as_str().is_none() {
        return error(StatusCode::BAD_REQUEST, "INVALID_PHONE");
    }
    let id = accept_one(&inner);
    let data = json!({"messageId": id, "status": "QUEUED", "to": body["to"], "segments": 1});
    (
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "data": data})),
    )
        .into_response()
}

async fn send_bulk(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&inner, &headers, &body).await {
        return refused;
    }
    let n = body["recipients"].as_array().map_or(0, Vec::len);
    if n == 0 {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    }
    let ids: Vec<u64> = (0..n).map(|_| accept_one(&inner)).collect();
    let data = json!({"jobId": 1, "totalRecipients": n, "accepted": n, "rejected": 0,
        "messageIds": ids, "errors": []});
    (
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "data": data})),
    )
        .into_response()
}

async fn events_stream(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let want = format!("Bearer {}", inner.config.key);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    }
    let rx = inner.events.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok((id, status)) => {
                let data = json!({"messageId": id, "status": status}).to_string();
                Event::default().event("message.status").data(data)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let data = json!({ "missed": n }).to_string();
                Event::default().event("lagged").data(data)
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(1))))
}
