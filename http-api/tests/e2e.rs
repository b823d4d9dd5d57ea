//! A message's whole life through the real engine: POST /api/sms/send over loopback HTTP, the
//! engine's SMPP bind to the SMSC simulator, its receipt, and back: status DELIVERED with the
//! timeline in order, the event stream seeing it, and analytics counting it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ADMIN_TOKEN, settings};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::{DispatcherConfig, DispatcherHandle, EngineEvent};
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::SessionConfig;
use sairex_http_api::{EngineLink, WebhookTestResult};
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_store::model::Id;
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// The engine link the binary would wire: the dispatcher's events and the API's own QUEUED
/// events on one channel.
struct Link {
    handle: DispatcherHandle,
    events: broadcast::Sender<EngineEvent>,
    running: AtomicBool,
}

impl Link {
    fn new(handle: DispatcherHandle) -> Arc<Self> {
        let events = broadcast::channel(4096).0;
        let mut from_engine = handle.subscribe();
        let forward = events.clone();
        tokio::spawn(async move {
            loop {
                match from_engine.recv().await {
                    Ok(e) => {
                        let _ = forward.send(e);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Arc::new(Self {
            handle,
            events,
            running: AtomicBool::new(true),
        })
    }
}

impl EngineLink for Link {
    fn nudge(&self) {
        self.handle.nudge();
    }
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }
    fn providers_changed(&self) {}
    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    fn send_test_webhook(
        &self,
        _: Id,
        _: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        Box::pin(async { Err("no webhook sender in this test".to_owned()) })
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_delivered_through_the_real_engine() {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate())).unwrap();

    // The organization and its provider are created through the API (served here with the
    // engine double, since the engine starts from the provider), then the engine starts and
    // the API is served again over it.
    let client = sairex_engine::http_client::builder()
        .unwrap()
        .build()
        .unwrap();
    let bootstrap = common::FakeEngine::new();
    let boot_base = common::serve(store.clone(), bootstrap, settings()).await;
    let (status, org) = call(
        &client,
        reqwest::Method::POST,
        format!("{boot_base}/api/admin/organizations"),
        ADMIN_TOKEN,
        Some(json!({ "name": "school", "defaultCountry": "PK" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = org["data"]["apiKey"]["key"].as_str().unwrap().to_owned();
    let addr = sim.addr();
    let (status, provider) = call(&client, reqwest::Method::POST, format!("{boot_base}/api/sms/providers"), &key,
        Some(json!({ "providerName": "smpp", "displayName": "simulator", "costPerSegment": "0.30",
                     "credentials": { "host": addr.ip().to_string(), "port": addr.port(), "systemId": "sairex", "password": "secret" },
                     "settings": { "binds": 1 } }))).await;
    assert_eq!(status, StatusCode::CREATED, "{provider}");
    let provider_id = provider["data"]["id"].as_u64().unwrap();
    let org_id = org["data"]["id"].as_u64().unwrap();

    // What the binary does: the store's provider record and its SMPP settings start the engine.
    let record = store.provider(org_id, provider_id).unwrap();
    let creds = &record.credentials;
    let session = SessionConfig {
        system_id: creds["systemId"].as_str().unwrap().try_into().unwrap(),
        password: creds["password"].as_str().unwrap().try_into().unwrap(),
        reconnect: ExponentialBackoff::try_new(
            Duration::from_millis(50),
            Duration::from_millis(200),
        )
        .unwrap(),
        response_timeout: Duration::from_secs(2),
        ..SessionConfig::new(
            creds["host"].as_str().unwrap().to_owned(),
            u16::try_from(creds["port"].as_u64().unwrap()).unwrap(),
        )
    };
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            dispatcher: DispatcherConfig::default(),
            smpp: vec![(record.clone(), SmppProviderConfig::new(record.id, session))],
            provider_drain: Duration::from_secs(2),
            providers_from_store: false,
        },
    )
    .await
    .unwrap();
    let link = Link::new(engine.handle());
    let base = common::serve(store.clone(), link.clone(), settings()).await;

    let mut stream = client
        .get(format!("{base}/api/sms/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let (status, sent) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/sms/send"),
        &key,
        Some(json!({ "to": "03001234567", "body": "Fee due Friday", "priority": "otp" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["data"]["estimatedCost"], "0.30");
    let id = sent["data"]["messageId"].as_u64().unwrap();

    // DELIVERED within the deadline, the timeline in order.
    let deadline = Instant::now() + Duration::from_secs(20);
    let final_status = loop {
        let (status, body) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/sms/status/{id}"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        if body["data"]["status"] == "DELIVERED" || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let data = &final_status["data"];
    assert_eq!(data["status"], "DELIVERED", "{final_status}");
    assert_eq!(data["provider"], "simulator");
    assert!(data["providerMsgId"].is_string());
    assert!(data["deliveredAt"].is_string());
    let timeline: Vec<&str> = data["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(timeline.first(), Some(&"QUEUED"), "{timeline:?}");
    assert_eq!(timeline.last(), Some(&"DELIVERED"), "{timeline:?}");
    let submitted = timeline
        .iter()
        .position(|e| *e == "SUBMITTED")
        .expect("no SUBMITTED");
    assert!(
        submitted > 0 && submitted < timeline.len() - 1,
        "{timeline:?}"
    );
    let times: Vec<&str> = data["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(sim.received().len(), 1);

    // The event stream saw QUEUED (from the API) and DELIVERED (from the engine).
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(text.contains("\"status\":\"DELIVERED\"") && text.contains("\"status\":\"QUEUED\"")) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("no DELIVERED event")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&format!("\"messageId\":{id}")), "{text}");

    // A bulk send of 20 reaches DELIVERED too, and analytics count all 21.
    let recipients: Vec<Value> = (0..20)
        .map(|i| json!({ "to": format!("+9230012{i:05}"), "variables": { "n": i } }))
        .collect();
    let (status, bulk) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/sms/send-bulk"),
        &key,
        Some(json!({ "body": "Notice {{n}}", "recipients": recipients, "name": "notices" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{bulk}");
    assert_eq!(bulk["data"]["accepted"], 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, listed) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/sms/messages?status=DELIVERED"),
            &key,
            None,
        )
        .await;
        if listed["data"]["total"] == 21 {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, analytics) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/sms/analytics?period=today"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        analytics["data"]["summary"]["totalDelivered"], 21,
        "{analytics}"
    );
    assert_eq!(analytics["data"]["summary"]["deliveryRate"], 100.0);
    assert_eq!(
        analytics["data"]["providerBreakdown"][0]["provider"],
        "simulator"
    );
    assert_eq!(analytics["data"]["topCampaigns"][0]["name"], "notices");
    assert_eq!(analytics["data"]["topCampaigns"][0]["delivered"], 20);

    let report = engine.shutdown().await;
    assert_eq!(report.unanswered, 0);
    sim.shutdown().await;
}
