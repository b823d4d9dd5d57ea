//! Measures the web console's pages: N outbound messages (default 20,000) in a fresh store,
//! then each page requested 50 times over loopback with a signed-in session; prints the
//! median and p99 server round trip per page; then the superadmin's operator view.
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

/// The superadmin token of the bench, for the operator view.
const OPERATOR_TOKEN: &str = "bench operator token";

/// Requests `path` 50 times with `cookie` and prints the median and p99.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
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
    Ok(())
}

/// The `sairex_session=…` pair a sign-in answered.
fn session_of(r: &reqwest::Response) -> Result<String, Box<dyn std::error::Error>> {
    Ok(r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sairex_session="))
        .and_then(|v| v.split(';').next())
        .ok_or("no session")?
        .to_owned())
}

/// The login form's CSRF cookie pair and hidden field.
async fn login_form(
    client: &reqwest::Client,
    url: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let form = client.get(url).send().await?;
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sairex_login="))
        .and_then(|v| v.split(';').next())
        .ok_or("no login cookie")?
        .to_owned();
    let html = form.text().await?;
    let marker = "name=\"_csrf\" value=\"";
    let at = html.find(marker).ok_or("no csrf field")? + marker.len();
    let token = html[at..].split('"').next().unwrap_or_default().to_owned();
    Ok((cookie, token))
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
        ApiSettings {
            admin_token: Some(sairex_http_api::Secret::new(OPERATOR_TOKEN)),
            ..ApiSettings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = sairex_engine::http_client::builder()?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (cookie, token) = login_form(&client, &format!("{base}/console/login")).await?;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("email", "bench@example.com"),
            ("password", "bench password"),
            ("_csrf", token.as_str()),
        ])
        .finish();
    let login = client
        .post(format!("{base}/console/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let session = session_of(&login)?;
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
        "/console/settings/organization",
    ] {
        measure(&client, &base, &session, path).await?;
    }
    // The superadmin's operator view (binds, queue depths per organization, store size).
    let (cookie, token) = login_form(&client, &format!("{base}/console/operator/login")).await?;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("token", OPERATOR_TOKEN), ("_csrf", token.as_str())])
        .finish();
    let signed_in = client
        .post(format!("{base}/console/operator/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let operator = session_of(&signed_in)?;
    for path in ["/console/operator", "/console/operator/live"] {
        measure(&client, &base, &operator, path).await?;
    }
    Ok(())
}
