//! `sairex serve` as an operator runs it: the real binary, over real HTTP and SMPP on
//! loopback. `--demo` end to end; provider changes over the API rebind; SIGTERM under load
//! loses nothing that was acknowledged.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer, SimStats};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

const WAIT: Duration = Duration::from_secs(30);

/// The API as a client sees it.
struct Api {
    url: String,
    key: String,
    http: reqwest::Client,
}

/// A running `serve --demo`.
struct Demo {
    child: Child,
    api: Api,
}

impl std::ops::Deref for Demo {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve --demo` in `dir` on an ephemeral port and reads its URL and key.
fn start_demo(dir: &Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sairex serve --demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut url = None;
    let mut key = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        if let Some(rest) = line.split("is running: ").nth(1) {
            url = Some(rest.trim().to_owned());
        }
        let trimmed = line.trim();
        if trimmed.starts_with("sk_live_") {
            key = Some(trimmed.to_owned());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    let http = sairex_engine::http_client::builder()
        .expect("tls")
        .build()
        .expect("client");
    Demo {
        child,
        api: Api {
            url: url.expect("the demo printed its URL"),
            key: key.expect("the demo printed a key"),
            http,
        },
    }
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, to: &str) -> Result<u64, String> {
        let response = self
            .http
            .post(format!("{}/api/sms/send", self.url))
            .bearer_auth(&self.key)
            .json(&json!({"to": to, "body": "Fee reminder: due Friday"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if status != 202 {
            return Err(format!("{status}: {body}"));
        }
        body["data"]["messageId"]
            .as_u64()
            .ok_or_else(|| format!("no messageId in {body}"))
    }

    async fn status(&self, id: u64) -> String {
        let (code, body) = self
            .call(reqwest::Method::GET, &format!("/api/sms/status/{id}"), None)
            .await;
        assert_eq!(code, 200, "{body}");
        body["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn wait_delivered(&self, ids: &[u64]) {
        let deadline = Instant::now() + WAIT;
        let mut pending: Vec<u64> = ids.to_vec();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for &id in &pending {
                let status = self.status(id).await;
                assert!(
                    !matches!(status.as_str(), "FAILED" | "REJECTED" | "EXPIRED"),
                    "message {id} ended {status}"
                );
                if status != "DELIVERED" {
                    still.push(id);
                }
            }
            pending = still;
            if Instant::now() >= deadline {
                let mut report = Vec::new();
                for &id in pending.iter().take(5) {
                    let (_, body) = self
                        .call(reqwest::Method::GET, &format!("/api/sms/status/{id}"), None)
                        .await;
                    report.push(body["data"].clone());
                }
                panic!("{} not DELIVERED in time: {report:#?}", pending.len());
            }
            if !pending.is_empty() {
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_sends_a_message_to_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let demo = start_demo(dir.path());
    let id = demo.send("+923001234567").await.expect("202");
    demo.wait_delivered(&[id]).await;
    let (code, body) = demo
        .call(reqwest::Method::GET, &format!("/api/sms/status/{id}"), None)
        .await;
    assert_eq!(code, 200);
    let events: Vec<&str> = body["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, vec!["QUEUED", "SUBMITTED", "DELIVERED"]);
}

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve --config` with the simulator (which outlives the gateway, as a carrier would) as
/// its one provider.
fn start_configured(dir: &Path, port: u16, sim: &SimHandle) -> Child {
    let config = dir.join("sairex.toml");
    let addr = sim.addr();
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace = "20s"
[store]
path = "{data}"
master_key_file = "{key}"
[admin]
token = "{ADMIN_TOKEN}"
[[providers]]
name = "carrier"
kind = "smpp"
[providers.smpp]
host = "{host}"
port = {sim_port}
system_id = "sairex"
password = "secret"
binds = 2
"#,
            data = dir.join("data").display(),
            key = dir.join("master.key").display(),
            host = addr.ip(),
            sim_port = addr.port(),
        ),
    )
    .unwrap();
    let key_file = dir.join("master.key");
    if !key_file.exists() {
        std::fs::write(&key_file, "11".repeat(32)).unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env_remove("SAIREX_ADMIN_TOKEN")
        .env_remove("SAIREX_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sairex serve --config")
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "serve not ready");
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_acknowledged() {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let http = sairex_engine::http_client::builder()
        .unwrap()
        .build()
        .unwrap();
    let mut child = start_configured(dir.path(), port, &sim);
    wait_ready(&http, &url).await;
    let org: Value = http
        .post(format!("{url}/api/admin/organizations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "school", "defaultCountry": "PK"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_key = org["data"]["apiKey"]["key"]
        .as_str()
        .expect("first key")
        .to_owned();
    let key: Value = http
        .post(format!("{url}/api/sms/api-keys"))
        .bearer_auth(&admin_key)
        .json(&json!({"name": "load", "scopes": ["sms:send", "sms:read"],
                      "rateLimitPerMin": 1000000, "rateLimitPerDay": 10000000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["data"]["key"].as_str().expect("load key").to_owned();

    // Load from 16 senders; SIGTERM once a good part of it was acknowledged.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for s in 0..16u64 {
        let accepted = Arc::clone(&accepted);
        let (url, key, http) = (url.clone(), key.clone(), http.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..40u64 {
                let sent = http
                    .post(format!("{url}/api/sms/send"))
                    .bearer_auth(&key)
                    .json(&json!({"to": format!("+92301{:07}", s * 1000 + i), "body": "Exam at 9"}))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status().as_u16() != 202 {
                    continue;
                }
                if let Ok(body) = response.json::<Value>().await
                    && let Some(id) = body["data"]["messageId"].as_u64()
                {
                    accepted.lock().unwrap().push(id);
                }
            }
        }));
    }
    let deadline = Instant::now() + WAIT;
    while accepted.lock().unwrap().len() < 150 {
        assert!(Instant::now() < deadline, "load did not start");
        sleep(Duration::from_millis(5)).await;
    }
    terminate(&child);
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "serve exited with {status}");
    for sender in senders {
        let _ = sender.await;
    }
    let accepted: Vec<u64> = accepted.lock().unwrap().clone();
    let unique: HashSet<u64> = accepted.iter().copied().collect();
    assert_eq!(unique.len(), accepted.len());

    // Restarted on the same data: every acknowledged message is there and is delivered
    // (receipts of messages submitted before the stop come from the carrier, which ran on).
    let mut child = start_configured(dir.path(), port, &sim);
    wait_ready(&http, &url).await;
    let api = Api {
        url: url.clone(),
        key,
        http: http.clone(),
    };
    api.wait_delivered(&accepted).await;
    // Each accepted message reached the carrier exactly once: the drain waited for the answers
    // of what was in flight, so nothing was resubmitted after the restart.
    assert_eq!(
        sim.received().len(),
        accepted.len(),
        "submits seen by the carrier"
    );
    terminate(&child);
    assert!(wait_exit(&mut child).await.success());
}

async fn sim_until(sim: &SimHandle, what: &str, check: impl Fn(&SimStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = sim.stats();
        if check(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", stats.binds);
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_changes_over_the_api_bind_rebind_and_unbind() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let demo = start_demo(dir.path());
    let addr = sim.addr();
    let credentials = json!({
        "host": addr.ip().to_string(), "port": addr.port(),
        "systemId": "sairex", "password": "secret"
    });
    let (code, body) = demo
        .call(
            reqwest::Method::POST,
            "/api/sms/providers",
            Some(
                json!({"providerName": "smpp", "displayName": "own SMSC", "priority": 5,
                        "credentials": credentials, "settings": {"binds": 1}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let id = body["data"]["id"].as_u64().unwrap();
    sim_until(&sim, "bound once", |s| s.binds.bound == 1).await;

    let (code, body) = demo
        .call(
            reqwest::Method::PUT,
            &format!("/api/sms/providers/{id}"),
            Some(json!({"settings": {"binds": 2}})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    sim_until(&sim, "rebound with two binds", |s| {
        s.binds.bound == 2 && s.binds.transceiver == 3 && s.binds.unbinds_received == 1
    })
    .await;

    let (code, body) = demo
        .call(
            reqwest::Method::DELETE,
            &format!("/api/sms/providers/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    sim_until(&sim, "unbound", |s| s.binds.bound == 0).await;
}

/// Runs `serve --demo` in `dir` (with extra environment) until its banner ends; returns the
/// child and the banner's lines.
fn demo_banner(dir: &Path, env: &[(&str, &str)]) -> (Child, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sairex"));
    command
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("SAIREX_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn sairex serve --demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        let end = line.starts_with("Stop with");
        lines.push(line);
        if end {
            break;
        }
    }
    (child, lines)
}

fn after<'a>(lines: &'a [String], marker: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.split(marker).nth(1))
        .map(str::trim)
}

/// The demo prints a superadmin token that works, allows loopback webhooks and says so, and
/// keeps its organization and key across a restart (printing the key's prefix and how to make
/// another); SAIREX_ADMIN_TOKEN is honoured without a config file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_complete_and_keeps_its_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let http = sairex_engine::http_client::builder()
        .expect("tls")
        .build()
        .expect("client");
    let (mut first, lines) = demo_banner(dir.path(), &[]);
    let url = after(&lines, "is running: ").expect("url").to_owned();
    let token = after(
        &lines,
        "Superadmin token (for /api/admin/*, /metrics and `sairex admin`): ",
    )
    .expect("the superadmin token is printed")
    .to_owned();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[webhooks] allow_private_targets = true")),
        "{lines:?}"
    );
    let key = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("sk_live_"))
        .expect("a new key on the first run")
        .to_owned();
    let orgs = http
        .get(format!("{url}/api/admin/organizations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(orgs.status().as_u16(), 200);
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert_eq!(
        http.get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A webhook to a receiver on this machine.
    let hook = http
        .post(format!("{url}/api/sms/webhooks"))
        .bearer_auth(&key)
        .json(&json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 201, "{:?}", hook.text().await);
    let _ = first.kill();
    let _ = first.wait();

    let (mut second, lines) = demo_banner(dir.path(), &[]);
    let url = after(&lines, "is running: ").expect("url").to_owned();
    assert!(
        !lines.iter().any(|l| l.trim().starts_with("sk_live_")),
        "no second key: {lines:?}"
    );
    let prefix = &key[..12];
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("admin API key {prefix}"))),
        "the existing key's prefix: {lines:?}"
    );
    assert_eq!(
        after(
            &lines,
            "Superadmin token (for /api/admin/*, /metrics and `sairex admin`): "
        ),
        Some(token.as_str())
    );
    let keys: Value = http
        .get(format!("{url}/api/sms/api-keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["data"]["total"], 1, "{keys}");
    // The printed way to a new key works.
    let line = lines
        .iter()
        .find(|l| l.contains("/api-keys -H"))
        .expect("how to make a new key");
    let path = line
        .split_whitespace()
        .find(|w| w.contains("/api/admin/organizations/"))
        .unwrap();
    let made = http
        .post(path)
        .bearer_auth(&token)
        .json(&json!({ "name": "demo admin 2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    let _ = second.kill();
    let _ = second.wait();

    // The environment's token without --config.
    let other = tempfile::tempdir().unwrap();
    let (mut third, lines) = demo_banner(
        other.path(),
        &[("SAIREX_ADMIN_TOKEN", "env-token-0123456789abcdef")],
    );
    assert_eq!(
        after(
            &lines,
            "Superadmin token (for /api/admin/*, /metrics and `sairex admin`): "
        ),
        Some("env-token-0123456789abcdef")
    );
    let _ = third.kill();
    let _ = third.wait();
}
