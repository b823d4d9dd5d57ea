//! Accept throughput of `POST /api/sms/send` over loopback: the API and a store (batch sync)
//! in-process, no engine (messages stay queued), N connections each sending one message per
//! request for a few seconds. Prints accepted messages per second and latency percentiles.
//!
//! `cargo run --release -p sairex-http-api --example accept_load -- [connections] [seconds]`

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sairex_engine::dispatch::EngineEvent;
use sairex_http_api::{ApiSettings, EngineLink, Secret, WebhookTestResult};
use sairex_store::model::Id;
use sairex_store::{Store, StoreOptions};
use tokio::sync::broadcast;
use tokio::time::Instant;

struct NoEngine(broadcast::Sender<EngineEvent>);

impl EngineLink for NoEngine {
    fn nudge(&self) {}
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.0.subscribe()
    }
    fn providers_changed(&self) {}
    fn is_running(&self) -> bool {
        true
    }
    fn send_test_webhook(
        &self,
        _: Id,
        _: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        Box::pin(async { Err("none".to_owned()) })
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

    // Phone normalisation alone, for scale.
    let pk = "PK".parse().ok();
    let start = Instant::now();
    let n = 20_000;
    for i in 0..n {
        let number = phonenumber::parse(pk, format!("+9230012{:05}", i % 100_000)).unwrap();
        assert!(phonenumber::is_valid(&number));
    }
    println!(
        "phonenumber parse+validate: {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let settings = ApiSettings {
        admin_token: Some(Secret::new("load")),
        default_key_per_minute: 0,
        default_key_per_day: 0,
        max_queue_depth: u64::MAX,
        ..ApiSettings::default()
    };
    let router = sairex_http_api::router(
        store,
        Arc::new(NoEngine(broadcast::channel(1 << 16).0)),
        settings,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = sairex_engine::http_client::builder()
        .expect("tls")
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let org: serde_json::Value = serde_json::from_slice(
        &client
            .post(format!("http://{addr}/api/admin/organizations"))
            .bearer_auth("load")
            .body(r#"{"name":"load"}"#)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let key = org["data"]["apiKey"]["key"].as_str().unwrap().to_owned();
    let url = format!("http://{addr}/api/sms/send");
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < end {
                let body = format!(
                    r#"{{"to":"+9230012{:05}","body":"Load test message {i}"}}"#,
                    (c as u64 * 7919 + i) % 100_000
                );
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let _ = r.bytes().await;
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    println!(
        "{} connections, {} s: {} accepted, {:.0}/s; latency p50 {:?} p99 {:?} max {:?}",
        connections,
        seconds,
        all.len(),
        all.len() as f64 / seconds as f64,
        p(0.5),
        p(0.99),
        p(1.0)
    );
}
