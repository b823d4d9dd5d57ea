//! Measures `POST /api/sms/contacts/import` end to end: a CSV of N rows (default 1,000,000)
//! generated on the fly and streamed as the request body to the API served on loopback over
//! a real store (default group-commit sync), then the rows per second of the whole import.
//!
//! `cargo run --release -p sairex-http-api --example import_bench -- [rows]`

use std::sync::Arc;

use axum::body::Bytes;
use futures::future::BoxFuture;
use sairex_engine::dispatch::EngineEvent;
use sairex_http_api::{ApiSettings, EngineLink, Secret, WebhookTestResult};
use sairex_store::model::Id;
use sairex_store::{Store, StoreOptions};
use tokio::sync::broadcast;

// The allocator the `sairex` binary runs with, so the figure is the gateway's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows generated per body chunk.
const ROWS_PER_CHUNK: u64 = 5_000;

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
        Box::pin(async { Err("no engine".to_owned()) })
    }
}

fn chunk(from: u64, to: u64) -> Bytes {
    let mut out = String::with_capacity(64 * (to - from) as usize);
    for i in from..to {
        // Local numbers in the organization's country: every row is normalised to E.164.
        out.push_str(&format!(
            "0300{:07},\"Student {i}\",s{i}@example.com,{}\r\n",
            i,
            ["Red", "Blue", "Green"][(i % 3) as usize]
        ));
    }
    Bytes::from(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreOptions::new(dir.path()))?;
    let settings = ApiSettings {
        admin_token: Some(Secret::new("bench-admin")),
        default_key_per_minute: 1_000_000,
        ..ApiSettings::default()
    };
    let router = sairex_http_api::router(
        store.clone(),
        Arc::new(NoEngine(broadcast::channel(16).0)),
        settings,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = sairex_engine::http_client::builder()?.build()?;
    let org: serde_json::Value = serde_json::from_slice(
        &client
            .post(format!("{base}/api/admin/organizations"))
            .bearer_auth("bench-admin")
            .header("content-type", "application/json")
            .body(serde_json::json!({ "name": "bench", "defaultCountry": "PK" }).to_string())
            .send()
            .await?
            .bytes()
            .await?,
    )?;
    let key = org["data"]["apiKey"]["key"]
        .as_str()
        .ok_or("no key")?
        .to_owned();

    let header = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(b"phone,name,email,house\r\n"))
    });
    let body = futures::stream::iter((0..rows.div_ceil(ROWS_PER_CHUNK)).map(move |c| {
        let from = c * ROWS_PER_CHUNK;
        Ok::<_, std::io::Error>(chunk(from, (from + ROWS_PER_CHUNK).min(rows)))
    }));
    let started = tokio::time::Instant::now();
    let response = client
        .post(format!("{base}/api/sms/contacts/import"))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(futures::StreamExt::chain(
            header, body,
        )))
        .send()
        .await?;
    let status = response.status();
    let report: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
    let elapsed = started.elapsed();
    println!("status {status}");
    println!(
        "created {} updated {} skipped {} in {:.2}s: {:.0} rows/s",
        report["data"]["created"],
        report["data"]["updated"],
        report["data"]["skipped"],
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    println!(
        "store on disk: {} MiB",
        store.size_on_disk()? / (1024 * 1024)
    );
    Ok(())
}
