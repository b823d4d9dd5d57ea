//! The WebhookDispatcher over real HTTP on loopback: an axum receiver inside the test records
//! every request and answers with scripted statuses. Events are real status changes written to
//! the store, read back from its outbox. Signatures are checked here with `hmac` + `sha2`
//! from the spec text, not with the crate's signing code.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sairex_engine::webhooks::target::TargetError;
use sairex_engine::webhooks::{WebhookConfig, WebhookDispatcher, WebhookError, WebhookHandle};
use sairex_store::model::{
    Direction, Id, Message, MessageStatus, Organization, Webhook, WebhookDelivery,
};
use sairex_store::{MasterKey, MessageUpdate, PageRequest, Store, StoreOptions};
use serde_json::Value;
use sha2::Sha256;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep};

mod common;

// ---------------------------------------------------------------------------------------------
// The receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Per path, the statuses to answer with next (200 when empty).
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

struct Receiver {
    addr: SocketAddr,
    shared: Shared,
}

async fn answer(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let code = shared
        .script
        .lock()
        .unwrap()
        .get_mut(&name)
        .and_then(VecDeque::pop_front)
        .unwrap_or(200);
    shared.hits.lock().unwrap().push(Hit {
        path: name,
        headers,
        body,
        at: Instant::now(),
    });
    (StatusCode::from_u16(code).unwrap(), "ok")
}

async fn receiver() -> Receiver {
    let shared = Shared::default();
    let app = Router::new()
        .route("/{name}", post(answer))
        .with_state(shared.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { addr, shared }
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn script(&self, path: &str, statuses: &[u16]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .insert(path.to_owned(), statuses.iter().copied().collect());
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.shared.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    /// Waits until `path` got at least `n` requests; returns them.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let hits = self.hits(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {n} requests after 10 s",
                hits.len()
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setup

struct Fixture {
    dir: TempDir,
    key: MasterKey,
    store: Store,
    webhooks: WebhookHandle,
}

fn test_config() -> WebhookConfig {
    WebhookConfig {
        allow_private_targets: true,
        retry_delays: vec![Duration::from_millis(50), Duration::from_millis(100)],
        max_attempts: 5,
        webhook_cache_ttl: Duration::ZERO,
        request_timeout: Duration::from_secs(5),
        ..WebhookConfig::default()
    }
}

async fn fixture(config: WebhookConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = Store::open(StoreOptions::new(dir.path()).with_master_key(key.clone())).unwrap();
    let webhooks = WebhookDispatcher::start(store.clone(), config).unwrap();
    Fixture {
        dir,
        key,
        store,
        webhooks,
    }
}

impl Fixture {
    async fn org(&self, name: &str) -> Id {
        self.store
            .create_organization(Organization {
                name: name.into(),
                ..Organization::default()
            })
            .await
            .unwrap()
            .id
    }

    async fn webhook(&self, org: Id, url: String, secret: &str, events: &[&str]) -> Webhook {
        self.store
            .create_webhook(Webhook {
                organization_id: org,
                url,
                secret: secret.into(),
                events: events.iter().map(|e| (*e).to_owned()).collect(),
                ..Webhook::default()
            })
            .await
            .unwrap()
    }

    async fn message(&self, org: Id, callback_url: Option<String>) -> Message {
        self.store
            .enqueue(Message {
                organization_id: org,
                to_number: "+923001234567".into(),
                from_number: "SAIREX".into(),
                body: "Your fee of PKR 5,000 is due on March 1st.".into(),
                metadata: Some(serde_json::json!({"studentId": 42, "challanNo": "CH-1"})),
                callback_url,
                ..Message::default()
            })
            .await
            .unwrap()
            .message()
            .clone()
    }

    /// Moves the message to `status` in the store: the change's outbox entry is the event.
    async fn status(&self, m: &Message, status: MessageStatus) {
        self.store
            .update_message(
                m.organization_id,
                m.id,
                MessageUpdate::new(status.as_str()),
                move |m| {
                    m.status = status;
                    m.provider_id = Some(7);
                    if status == MessageStatus::Failed {
                        m.error_code = Some("0x0000000B".to_owned());
                    }
                    Ok(())
                },
            )
            .await
            .unwrap();
    }

    fn deliveries(&self, org: Id, webhook: Id) -> Vec<WebhookDelivery> {
        let mut items = self
            .store
            .webhook_deliveries(org, webhook, PageRequest::default())
            .unwrap()
            .items;
        items.sort_by_key(|d| d.id);
        items
    }

    /// Waits until no attempt is in flight and nothing has moved for a while (pending retries
    /// aside).
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let moved = |s: sairex_engine::webhooks::WebhookStats| (s.events, s.succeeded, s.failed);
        loop {
            let before = self.webhooks.stats();
            if before.in_flight == 0 {
                // A round just read may still be delivering: look again a moment later.
                sleep(Duration::from_millis(300)).await;
                let after = self.webhooks.stats();
                if after.in_flight == 0 && moved(after) == moved(before) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "dispatcher did not settle");
            sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An independent signature check, from the spec text:
// X-Sairex-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

fn assert_signed(hit: &Hit, secret: &str) {
    let header = hit
        .header("x-sairex-signature")
        .unwrap_or_else(|| panic!("no signature on {}", hit.path));
    let (t, v1) = header.split_once(",v1=").expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t= first");
    let t_secs: u64 = t.parse().expect("unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        now.abs_diff(t_secs) <= 60,
        "timestamp {t_secs} far from {now}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&hit.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "signature of {}", hit.path);
}

fn events_of(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.json()["event"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_signed_shaped_and_logged() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    let hook = f
        .webhook(
            org,
            rx.url("hook"),
            "whsec_s3cret",
            &["message.delivered", "message.sent"],
        )
        .await;
    let m = f.message(org, None).await;

    f.status(&m, MessageStatus::Delivered).await;
    let hits = rx.wait_for("hook", 1).await;
    let hit = &hits[0];

    assert_signed(hit, "whsec_s3cret");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.header("x-sairex-event"), Some("message.delivered"));
    let delivery_id = hit.header("x-sairex-delivery").unwrap();
    assert!(delivery_id.starts_with("dlv_"), "{delivery_id}");

    let body = hit.json();
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(body["event"], "message.delivered");
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    let data = &body["data"];
    assert_eq!(data["messageId"], m.id);
    assert_eq!(data["status"], "DELIVERED");
    assert_eq!(data["direction"], "OUTBOUND");
    assert_eq!(data["to"], "+923001234567");
    assert_eq!(data["from"], "SAIREX");
    assert_eq!(data["segments"], 1);
    assert_eq!(data["providerId"], 7);
    assert_eq!(data["metadata"]["challanNo"], "CH-1");
    assert!(
        data.get("body").is_none(),
        "status events leave the text out"
    );

    f.settle().await;
    let log = f.deliveries(org, hook.id);
    assert_eq!(log.len(), 1);
    assert!(log[0].success);
    assert_eq!(log[0].http_status, Some(200));
    assert_eq!(log[0].attempt, 1);
    assert_eq!(log[0].event_type, "message.delivered");
    assert_eq!(log[0].payload, body);
    assert!(log[0].latency_ms.is_some());
    let hook = f.store.webhook(org, hook.id).unwrap();
    assert_eq!(hook.consecutive_fails, 0);
    assert!(hook.last_triggered_at.is_some());
    // The secret never shows in the handle's debug output.
    assert!(!format!("{:?}", f.webhooks).contains("whsec_s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_with_back_off_until_it_answers() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    let hook = f
        .webhook(org, rx.url("flaky"), "whsec_retry", &["message.sent"])
        .await;
    let m = f.message(org, None).await;
    rx.script("flaky", &[500, 503]);

    f.status(&m, MessageStatus::Submitted).await;
    let hits = rx.wait_for("flaky", 3).await;
    f.settle().await;
    assert_eq!(rx.hits("flaky").len(), 3, "no attempt after the success");

    // One delivery: the same id and body on every attempt, each freshly signed.
    let ids: HashSet<_> = hits
        .iter()
        .map(|h| h.header("x-sairex-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    for hit in &hits {
        assert_signed(hit, "whsec_retry");
    }
    // The back-off was waited: 50 ms, then 100 ms.
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(50));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(100));

    let log = f.deliveries(org, hook.id);
    let attempts: Vec<_> = log
        .iter()
        .map(|d| (d.attempt, d.http_status, d.success))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, Some(500), false),
            (2, Some(503), false),
            (3, Some(200), true)
        ]
    );
    assert_eq!(f.store.webhook(org, hook.id).unwrap().consecutive_fails, 0);
    let stats = f.webhooks.stats();
    assert_eq!(stats.retries_scheduled, 2);
    assert_eq!(stats.failed, 2);
    assert_eq!(stats.succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_stop_at_max_attempts() {
    let rx = receiver().await;
    let f = fixture(WebhookConfig {
        max_attempts: 3,
        disable_after_failures: 0,
        ..test_config()
    })
    .await;
    let org = f.org("school").await;
    let hook = f
        .webhook(org, rx.url("down"), "whsec_x", &["message.failed"])
        .await;
    let m = f.message(org, None).await;
    rx.script("down", &[500; 10]);

    f.status(&m, MessageStatus::Failed).await;
    rx.wait_for("down", 3).await;
    sleep(Duration::from_millis(400)).await;
    f.settle().await;
    assert_eq!(rx.hits("down").len(), 3);
    assert_eq!(rx.hits("down")[0].json()["data"]["errorCode"], "0x0000000B");
    let hook = f.store.webhook(org, hook.id).unwrap();
    assert_eq!(hook.consecutive_fails, 3);
    assert!(hook.is_active, "0 disables auto-disable");
    assert_eq!(f.webhooks.stats().exhausted, 1);
    assert_eq!(f.webhooks.stats().pending_retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_in_a_row_is_disabled() {
    let rx = receiver().await;
    let f = fixture(WebhookConfig {
        max_attempts: 10,
        disable_after_failures: 4,
        ..test_config()
    })
    .await;
    let org = f.org("school").await;
    // Nothing listens on this port: every attempt is a connection error.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let broken = f
        .webhook(org, format!("http://{dead}/gone"), "whsec_b", &["*"])
        .await;
    let control = f
        .webhook(org, rx.url("control"), "whsec_c", &["message.sent"])
        .await;
    let m = f.message(org, None).await;

    f.status(&m, MessageStatus::Queued).await;
    f.status(&m, MessageStatus::Submitted).await;
    rx.wait_for("control", 1).await;
    // 2 events, up to 10 attempts each: disabled after the 4th failure in a row.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.store.webhook(org, broken.id).unwrap().is_active {
        assert!(Instant::now() < deadline, "never disabled");
        sleep(Duration::from_millis(20)).await;
    }
    sleep(Duration::from_millis(400)).await;
    f.settle().await;

    let log = f.deliveries(org, broken.id);
    assert_eq!(log.len(), 4, "no attempt after it was disabled: {log:?}");
    for d in &log {
        assert!(!d.success);
        assert_eq!(d.http_status, None);
        let why = d.response_body.as_deref().unwrap();
        assert!(why.starts_with("error: connection failed"), "{why}");
    }
    let hook = f.store.webhook(org, broken.id).unwrap();
    assert!(!hook.is_active);
    assert_eq!(hook.consecutive_fails, 4);
    assert_eq!(f.webhooks.stats().disabled, 1);
    assert_eq!(f.webhooks.stats().pending_retries, 0);

    // Later events skip it; the healthy webhook goes on.
    f.status(&m, MessageStatus::Sent).await;
    rx.wait_for("control", 2).await;
    f.settle().await;
    assert_eq!(f.deliveries(org, broken.id).len(), 4);
    assert_eq!(f.deliveries(org, control.id).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_only_the_events_they_subscribe_to() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    f.webhook(org, rx.url("delivered"), "whsec_d", &["message.delivered"])
        .await;
    f.webhook(
        org,
        rx.url("all"),
        "whsec_a",
        &[
            "message.queued",
            "message.sent",
            "message.delivered",
            "message.failed",
            "message.inbound",
        ],
    )
    .await;
    let m = f.message(org, None).await;
    let failed = f.message(org, None).await;
    let inbound = f
        .store
        .enqueue(Message {
            organization_id: org,
            direction: Direction::Inbound,
            from_number: "+923001234567".into(),
            to_number: "8877".into(),
            body: "YES".into(),
            ..Message::default()
        })
        .await
        .unwrap()
        .message()
        .clone();

    // Both messages were queued, and the inbound one stored, by the store writes above.
    f.status(&m, MessageStatus::Submitted).await;
    f.status(&m, MessageStatus::Sent).await;
    f.status(&m, MessageStatus::Delivered).await;
    f.status(&failed, MessageStatus::Expired).await;

    let all = rx.wait_for("all", 7).await;
    f.settle().await;
    let mut names = events_of(&rx.hits("all"));
    names.sort();
    assert_eq!(
        names,
        [
            "message.delivered",
            "message.failed",
            "message.inbound",
            "message.queued",
            "message.queued",
            "message.sent",
            "message.sent"
        ]
    );
    assert!(
        all.iter()
            .any(|h| h.json()["data"]["messageId"] == inbound.id)
    );
    let inbound_hit = all
        .iter()
        .find(|h| h.json()["event"] == "message.inbound")
        .unwrap();
    assert_eq!(inbound_hit.json()["data"]["body"], "YES");
    assert_eq!(inbound_hit.json()["data"]["direction"], "INBOUND");
    let expired = all
        .iter()
        .find(|h| h.json()["event"] == "message.failed")
        .unwrap();
    assert_eq!(expired.json()["data"]["status"], "EXPIRED");

    let delivered = rx.hits("delivered");
    assert_eq!(events_of(&delivered), ["message.delivered"]);
    assert_signed(&delivered[0], "whsec_d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_never_gets_another_organizations_events() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let a = f.org("school a").await;
    let b = f.org("school b").await;
    f.webhook(a, rx.url("a"), "whsec_a", &["*"]).await;
    f.webhook(b, rx.url("b"), "whsec_b", &["*"]).await;
    let ma = f.message(a, None).await;
    let mb = f.message(b, None).await;

    // Queued by the enqueues above; then A's message moves twice, B's once.
    f.status(&ma, MessageStatus::Submitted).await;
    f.status(&ma, MessageStatus::Delivered).await;
    f.status(&mb, MessageStatus::Delivered).await;

    let hits_a = rx.wait_for("a", 3).await;
    let hits_b = rx.wait_for("b", 2).await;
    f.settle().await;
    assert_eq!(rx.hits("a").len(), 3);
    assert_eq!(rx.hits("b").len(), 2);
    assert!(
        hits_a
            .iter()
            .all(|h| h.json()["data"]["messageId"] == ma.id)
    );
    assert!(
        hits_b
            .iter()
            .all(|h| h.json()["data"]["messageId"] == mb.id)
    );
    assert_signed(&hits_b[0], "whsec_b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_callback_url_gets_the_same_signed_payloads() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    // Subscribed to nothing: it only provides the signing secret for callbacks.
    let signer = f.webhook(org, rx.url("signer"), "whsec_cb", &[]).await;
    rx.script("callback", &[502]);
    let m = f.message(org, Some(rx.url("callback"))).await;
    let plain = f.message(org, None).await;

    f.status(&m, MessageStatus::Submitted).await;
    f.status(&m, MessageStatus::Delivered).await;
    f.status(&plain, MessageStatus::Delivered).await;
    // 3 events (queued by the enqueue, sent, delivered), the first answered 502 once: 4
    // requests, and the later events wait behind the retry of the first.
    let hits = rx.wait_for("callback", 4).await;
    f.settle().await;
    assert_eq!(rx.hits("callback").len(), 4);
    assert_eq!(
        events_of(&hits),
        [
            "message.queued",
            "message.queued",
            "message.sent",
            "message.delivered"
        ]
    );
    for hit in &hits {
        assert_signed(hit, "whsec_cb");
        assert_eq!(hit.json()["data"]["messageId"], m.id);
    }
    assert!(rx.hits("signer").is_empty());
    // A callback has no webhook record: the signer's log stays empty.
    assert!(f.deliveries(org, signer.id).is_empty());

    // An organization with no webhook gets unsigned callbacks.
    let other = f.org("no hooks").await;
    let m2 = f.message(other, Some(rx.url("unsigned"))).await;
    f.status(&m2, MessageStatus::Delivered).await;
    let hits = rx.wait_for("unsigned", 2).await;
    assert!(hits[0].header("x-sairex-signature").is_none());
    assert_eq!(hits[1].header("x-sairex-event"), Some("message.delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_delivers_a_signed_test_event_and_logs_it() {
    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    let other = f.org("other").await;
    let hook = f
        .webhook(org, rx.url("test"), "whsec_t", &["message.delivered"])
        .await;

    let outcome = f.webhooks.send_test(org, hook.id).await.unwrap();
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.http_status, Some(200));
    assert_eq!(outcome.event, "webhook.test");
    assert_eq!(outcome.response_body.as_deref(), Some("ok"));
    let hits = rx.hits("test");
    assert_eq!(hits.len(), 1);
    assert_signed(&hits[0], "whsec_t");
    assert_eq!(hits[0].header("x-sairex-event"), Some("webhook.test"));
    assert_eq!(
        hits[0].header("x-sairex-delivery"),
        Some(outcome.delivery_id.as_str())
    );
    assert_eq!(hits[0].json()["data"]["webhookId"], hook.id);
    let log = f.deliveries(org, hook.id);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, "webhook.test");
    assert_eq!(Some(log[0].id), outcome.log_id);

    // A failing test is reported, logged and counted.
    rx.script("test", &[404]);
    let outcome = f.webhooks.send_test(org, hook.id).await.unwrap();
    assert!(!outcome.success);
    assert_eq!(outcome.http_status, Some(404));
    assert_eq!(f.store.webhook(org, hook.id).unwrap().consecutive_fails, 1);

    // Another organization's webhook does not exist for it.
    assert!(matches!(
        f.webhooks.send_test(other, hook.id).await,
        Err(WebhookError::NotFound(id)) if id == hook.id
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_unless_allowed() {
    let rx = receiver().await;
    let f = fixture(WebhookConfig {
        allow_private_targets: false,
        max_attempts: 2,
        ..test_config()
    })
    .await;
    let org = f.org("school").await;
    // The literal address is refused before connecting; the name is refused by the resolver.
    let literal = f.webhook(org, rx.url("literal"), "whsec_l", &["*"]).await;
    let by_name = f
        .webhook(
            org,
            format!("http://localhost:{}/named", rx.addr.port()),
            "whsec_n",
            &["*"],
        )
        .await;
    let m = f
        .message(
            org,
            Some(format!("http://localhost:{}/callback", rx.addr.port())),
        )
        .await;

    f.status(&m, MessageStatus::Delivered).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.deliveries(org, literal.id).len() < 2 || f.deliveries(org, by_name.id).len() < 2 {
        assert!(Instant::now() < deadline, "attempts not logged");
        sleep(Duration::from_millis(20)).await;
    }
    f.settle().await;
    sleep(Duration::from_millis(300)).await;
    assert!(f.webhooks.stats().failed >= 6, "{:?}", f.webhooks.stats());
    assert!(
        rx.shared.hits.lock().unwrap().is_empty(),
        "a private target was contacted"
    );
    for d in f
        .deliveries(org, literal.id)
        .iter()
        .chain(&f.deliveries(org, by_name.id))
    {
        assert!(!d.success);
        let why = d.response_body.as_deref().unwrap();
        assert!(why.contains("loopback"), "{why}");
    }

    // What the API checks before saving a URL.
    for url in [
        rx.url("x"),
        format!("http://localhost:{}/x", rx.addr.port()),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        assert!(
            matches!(
                f.webhooks.check_url(&url).await,
                Err(TargetError::Forbidden { .. })
            ),
            "{url}"
        );
    }
    assert!(matches!(
        f.webhooks.check_url("ftp://example.com/").await,
        Err(TargetError::Scheme(_))
    ));
    assert!(matches!(
        f.webhooks.check_url("not a url").await,
        Err(TargetError::InvalidUrl(_))
    ));

    // The same receiver, allowed: delivered.
    let allowed = fixture(test_config()).await;
    assert!(allowed.webhooks.check_url(&rx.url("x")).await.is_ok());
    let org = allowed.org("school").await;
    allowed
        .webhook(org, rx.url("allowed"), "whsec_ok", &["*"])
        .await;
    let m = allowed.message(org, None).await;
    allowed.status(&m, MessageStatus::Delivered).await;
    let hits = rx.wait_for("allowed", 1).await;
    assert_signed(&hits[0], "whsec_ok");
}

/// Events written while no dispatcher runs (or while it lags far behind) wait in the outbox: a
/// dispatcher started later delivers every one, in order, nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_before_the_dispatcher_runs_are_all_delivered_in_order() {
    let rx = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate())).unwrap();
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            ..Organization::default()
        })
        .await
        .unwrap()
        .id;
    store
        .create_webhook(Webhook {
            organization_id: org,
            url: rx.url("late"),
            secret: "whsec_late".into(),
            events: vec!["*".into()],
            ..Webhook::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..300 {
        let m = store
            .enqueue(Message {
                organization_id: org,
                to_number: format!("+9230012{n:05}"),
                body: "hi".into(),
                ..Message::default()
            })
            .await
            .unwrap()
            .message()
            .clone();
        store
            .update_message(org, m.id, MessageUpdate::new("SUBMITTED"), |m| {
                m.status = MessageStatus::Submitted;
                Ok(())
            })
            .await
            .unwrap();
        ids.push(m.id);
    }
    let webhooks = WebhookDispatcher::start(store.clone(), test_config()).unwrap();
    let hits = rx.wait_for("late", 600).await;
    let mut seen: HashMap<u64, Vec<String>> = HashMap::new();
    for hit in &hits {
        let json = hit.json();
        seen.entry(json["data"]["messageId"].as_u64().unwrap())
            .or_default()
            .push(json["event"].as_str().unwrap().to_owned());
    }
    for id in ids {
        assert_eq!(
            seen[&id],
            vec!["message.queued", "message.sent"],
            "message {id}"
        );
    }
    webhooks.shutdown().await;
}

/// A retry is durable: a dispatcher stopped while a retry waits (or a process killed then)
/// leaves it in the store, and the next one makes it, with the same event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_retry_survives_a_restart_and_shutdown_stops_attempts() {
    let rx = receiver().await;
    let f = fixture(WebhookConfig {
        retry_delays: vec![Duration::from_millis(700)],
        ..test_config()
    })
    .await;
    let org = f.org("school").await;
    let hook = f
        .webhook(org, rx.url("later"), "whsec_s", &["message.delivered"])
        .await;
    let m = f.message(org, None).await;
    rx.script("later", &[500]);
    f.status(&m, MessageStatus::Delivered).await;
    rx.wait_for("later", 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.store.outbox_pending(org, hook.id).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "retry never recorded");
        sleep(Duration::from_millis(10)).await;
    }
    f.webhooks.shutdown().await;
    // Stopped: the retry's time passes and nothing is sent.
    sleep(Duration::from_millis(1_000)).await;
    assert_eq!(rx.hits("later").len(), 1);
    // A second shutdown returns at once.
    f.webhooks.shutdown().await;
    // The store is reopened as after a restart; the new dispatcher makes the retry.
    let Fixture {
        dir,
        key,
        store,
        webhooks,
    } = f;
    drop(webhooks);
    drop(store);
    let store = reopen(&dir, key).await;
    let webhooks = WebhookDispatcher::start(store.clone(), test_config()).unwrap();
    let hits = rx.wait_for("later", 2).await;
    assert_eq!(hits[0].json()["id"], hits[1].json()["id"]);
    assert_eq!(
        hits[0].header("x-sairex-delivery"),
        hits[1].header("x-sairex-delivery")
    );
    assert_eq!(hits[1].json()["event"], "message.delivered");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.outbox_pending(org, hook.id).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "retry never settled");
        sleep(Duration::from_millis(10)).await;
    }
    webhooks.shutdown().await;
}

/// Opens the fixture's store again (its lock is released a moment after the last handle).
async fn reopen(dir: &TempDir, key: MasterKey) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(StoreOptions::new(dir.path()).with_master_key(key.clone())) {
            Ok(store) => return store,
            Err(e) => {
                assert!(Instant::now() < deadline, "store not reopened: {e}");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The real engine's event stream: a message sent over a real SMPP bind to the simulator, and
/// delivered by its receipt, reaches the webhook as `message.sent` then `message.delivered`,
/// and its callbackUrl too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_status_changes_reach_webhooks_end_to_end() {
    use sairex_engine::dispatch::DispatcherConfig;
    use sairex_engine::gateway::{Engine, EngineConfig};
    use sairex_engine::provider::smpp::SmppProviderConfig;
    use sairex_loadtest::sim::{SimConfig, SimServer};
    use sairex_store::model::ProviderConfig;

    let rx = receiver().await;
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate())).unwrap();
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            ..Organization::default()
        })
        .await
        .unwrap()
        .id;
    let provider = store
        .create_provider(ProviderConfig {
            organization_id: org,
            display_name: "sim".into(),
            ..ProviderConfig::default()
        })
        .await
        .unwrap();
    let provider_id = provider.id;
    let smpp = SmppProviderConfig::new(provider_id, common::sim_session(sim.addr()));
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            dispatcher: DispatcherConfig::default(),
            smpp: vec![(provider, smpp)],
            provider_drain: Duration::from_secs(2),
            providers_from_store: false,
        },
    )
    .await
    .unwrap();
    let webhooks = WebhookDispatcher::start(store.clone(), test_config()).unwrap();
    store
        .create_webhook(Webhook {
            organization_id: org,
            url: rx.url("e2e"),
            secret: "whsec_e2e".into(),
            events: vec!["message.sent".into(), "message.delivered".into()],
            ..Webhook::default()
        })
        .await
        .unwrap();
    let m = store
        .enqueue(Message {
            organization_id: org,
            from_number: "Sairex".into(),
            to_number: "+923001234567".into(),
            body: "Fee due Friday".into(),
            callback_url: Some(rx.url("e2e-callback")),
            ..Message::default()
        })
        .await
        .unwrap()
        .message()
        .clone();
    engine.handle().nudge();

    let hits = rx.wait_for("e2e", 2).await;
    // The callback hears every status, in order; the webhook what it subscribed to.
    let callbacks = rx.wait_for("e2e-callback", 3).await;
    assert_eq!(
        events_of(&callbacks),
        ["message.queued", "message.sent", "message.delivered"]
    );
    let mut names = events_of(&hits);
    names.sort();
    assert_eq!(names, ["message.delivered", "message.sent"]);
    for hit in hits.iter().chain(&callbacks[1..]) {
        assert_signed(hit, "whsec_e2e");
        assert_eq!(hit.json()["data"]["messageId"], m.id);
        assert_eq!(hit.json()["data"]["providerId"], provider_id);
    }
    let delivered = hits
        .iter()
        .find(|h| h.json()["event"] == "message.delivered")
        .unwrap();
    assert_eq!(delivered.json()["data"]["status"], "DELIVERED");
    assert!(delivered.json()["data"]["providerMsgId"].is_string());

    webhooks.shutdown().await;
    engine.shutdown().await;
}

/// The metrics, recorded through a recorder local to this test's thread: a current-thread
/// runtime runs the dispatcher, its attempts and the receiver all on it.
#[tokio::test]
async fn attempts_and_refusals_are_counted_in_metrics() {
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use sairex_engine::webhooks::metrics as wm;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let rx = receiver().await;
    let f = fixture(test_config()).await;
    let org = f.org("school").await;
    f.webhook(org, rx.url("m"), "whsec_m", &["message.delivered"])
        .await;
    let m = f.message(org, None).await;
    rx.script("m", &[500]);
    f.status(&m, MessageStatus::Delivered).await;
    rx.wait_for("m", 2).await;
    f.settle().await;

    let strict = fixture(WebhookConfig {
        allow_private_targets: false,
        max_attempts: 1,
        ..test_config()
    })
    .await;
    let org = strict.org("school").await;
    strict
        .webhook(org, rx.url("never"), "whsec_n", &["message.delivered"])
        .await;
    let m = strict.message(org, None).await;
    strict.status(&m, MessageStatus::Delivered).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while strict.webhooks.stats().failed < 1 {
        assert!(Instant::now() < deadline);
        sleep(Duration::from_millis(10)).await;
    }
    strict.settle().await;

    let mut counters = HashMap::new();
    let mut latencies = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                let label = key
                    .key()
                    .labels()
                    .map(|l| l.value().to_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                *counters.entry((name, label)).or_insert(0) += n;
            }
            (MetricKind::Histogram, DebugValue::Histogram(values)) if name == wm::DURATION => {
                latencies += values.len();
            }
            _ => {}
        }
    }
    let count = |name: &str, label: &str| {
        counters
            .get(&(name.to_owned(), label.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count(wm::DELIVERIES, "success"), 1, "{counters:?}");
    assert_eq!(count(wm::DELIVERIES, "failure"), 1, "{counters:?}");
    assert_eq!(count(wm::DELIVERIES, "refused"), 1, "{counters:?}");
    assert_eq!(latencies, 3);
    assert!(rx.hits("never").is_empty());
}
