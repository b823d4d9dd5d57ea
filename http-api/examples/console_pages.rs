//! Measures the web console's pages: N outbound messages (default 20,000) in a fresh store,
//! then each page requested 50 times over loopback with a signed-in session; prints the
//! median and p99 server round trip per page.
//!
//! `cargo run --release -p sairex-http-api --example console_pages -- [messages]`

use std::time::Duration;

use futures::future::BoxFuture;
use sairex_engine::dispatch::EngineEvent;
use sairex_http_api::{ApiSettings, EngineLink, WebhookTestResult};
use sairex_store::model::{ConsoleRole, Id, Message, Organization};
use sairex_store::{Store, StoreOptions};
use tokio::sync::broadcast;
use tokio::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct NoEngine(broadcast::Sender<EngineEvent>);

impl EngineLink for NoEngine {
    fn nudge(&self) {}
    fn publish(&self, _: EngineEvent) {}
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map_or(Ok(20_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreOptions::new(dir.path()))?;
    let org = store
        .create_organization(Organization {
            name: "bench".into(),
            default_country: "PK".into(),
            is_active: true,
            ..Organization::default()
        })
        .await?
        .id;
    sairex_http_api::console::create_user(
        &store,
        org,
        "bench@example.com",
        "",
        ConsoleRole::Admin,
        "bench password",
    )
    .await?;
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(Message {
            organization_id: org,
            to_number: format!("+92300{:07}", i % 5_000),
            body: format!("Fee reminder {i}"),
            encoding: "GSM-7".into(),
            segments: 1,
            ..Message::default()
        });
        if batch.len() == 2_000 || i + 1 == n {
            for r in store.enqueue_many(std::mem::take(&mut batch)).await? {
                r?;
            }
        }
    }
    println!("{n} messages stored in {:.1?}", started.elapsed());
    let router = sairex_http_api::router(
        store.clone(),
        std::sync::Arc::new(NoEngine(broadcast::channel(16).0)),
        ApiSettings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = sairex_engine::http_client::builder()?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = client.get(format!("{base}/console/login")).send().await?;
    let cookie = form.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let html = form.text().await?;
    let marker = "name=\"_csrf\" value=\"";
    let at = html.find(marker).ok_or("no csrf")? + marker.len();
    let token = &html[at..at + html[at..].find('"').ok_or("csrf end")?];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("email", "bench@example.com"),
            ("password", "bench password"),
            ("_csrf", token),
        ])
        .finish();
    let login = client
        .post(format!("{base}/console/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sairex_session="))
        .and_then(|v| v.split(';').next())
        .ok_or("no session")?
        .to_owned();
    println!("{:<40} {:>10} {:>10}", "page", "median", "p99");
    for path in [
        "/console/",
        "/console/send",
        "/console/inbox",
        "/console/messages",
        "/console/messages?status=QUEUED",
        "/console/contacts",
        "/console/templates",
        "/console/campaigns",
        "/console/reports",
        "/console/settings",
    ] {
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = client
                .get(format!("{base}{path}"))
                .header("cookie", &session)
                .send()
                .await?;
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await?;
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{path:<40} {:>10.1?} {:>10.1?}",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
    Ok(())
}
