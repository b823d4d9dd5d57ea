//! What the crash tests share: the real `sairex serve` binary as a child process, its config
//! (the in-process SMSC simulator as its only provider), a tenant, and senders that POST
//! /api/sms/send without pause across restarts.

#![allow(dead_code)] // Each test binary uses its own part.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

/// Concurrent senders, each with one request in flight.
pub const SENDERS: usize = 6;
pub const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789";
/// 32 bytes in hex: provider credentials in the store are encrypted with it.
pub const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// binds × window of the provider: the most submits outstanding at once.
pub const BINDS: u32 = 2;
pub const WINDOW: u32 = 16;

/// A running `sairex serve` child and what it printed.
pub struct Gateway {
    child: Child,
    pub base: String,
    /// The recovery report of its start (`store open` line).
    pub recovery: String,
}

impl Gateway {
    /// Starts the binary on `config`, its stderr appended to `log`; waits for its address.
    pub fn start(config: &Path, log: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("SAIREX_MASTER_KEY", MASTER_KEY)
            .env_remove("SAIREX_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sairex binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log_file = log.to_path_buf();
        // Copies stderr to the log file (kept for diagnosis) and reports the two lines needed.
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .expect("log file");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if line.contains("store open") {
                    let _ = tx.send((true, line));
                } else if line.contains("serving") && line.contains("api_addr=") {
                    let _ = tx.send((false, line));
                }
            }
        });
        let mut recovery = String::new();
        let deadline = std::time::Duration::from_secs(60);
        loop {
            match rx.recv_timeout(deadline) {
                Ok((true, line)) => recovery = line,
                Ok((false, line)) => {
                    let addr = line
                        .split("api_addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                        .unwrap_or_else(|| panic!("no address in {line:?}"));
                    return Self {
                        child,
                        base: format!("http://{addr}"),
                        recovery,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("the gateway did not start ({e}); see {}", log.display());
                }
            }
        }
    }

    /// SIGKILL: no drain, no flush, no unbind.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    /// A failed assertion must not leave the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages re-queued by the recovery of one start, from its `store open` line
/// (`... requeued=2 failed=0 store open` or `... store open requeued=2 failed=0`).
pub fn requeued_in(line: &str) -> usize {
    line.split("requeued=")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The config of a gateway whose only provider is the simulator at `sim`, with `extra` TOML
/// sections appended.
pub fn write_config(dir: &Path, sim: SocketAddr, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"

[store]
path = "{data}"
sync = "batch"
cache_mb = 16

[admin]
token = "{ADMIN_TOKEN}"

[engine]
poll_interval = "20ms"
shutdown_grace = "2s"

[[providers]]
name = "sim"
kind = "smpp"
priority = 0

[providers.smpp]
host = "127.0.0.1"
port = {port}
system_id = "sairex"
password = "secret"
binds = {BINDS}
window = {WINDOW}
response_timeout = "5s"
reconnect_min = "50ms"
reconnect_max = "500ms"

{extra}
"#,
        data = dir.join("data").display(),
        port = sim.port(),
    );
    let path = dir.join("sairex.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

pub fn client() -> reqwest::Client {
    sairex_engine::http_client::builder()
        .expect("tls config")
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// An organization: its admin key, and a key of it with room for the test's traffic.
pub async fn tenant(client: &reqwest::Client, base: &str) -> (String, String) {
    let (status, org) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/admin/organizations"),
        ADMIN_TOKEN,
        Some(json!({ "name": "crash", "defaultCountry": "PK" })),
    )
    .await
    .expect("create organization");
    assert_eq!(status, 201, "{org}");
    let admin_key = org["data"]["apiKey"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let (status, key) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/sms/api-keys"),
        &admin_key,
        Some(
            json!({ "name": "traffic", "scopes": ["sms:send", "sms:read"],
                     "rateLimitPerMin": 10_000_000, "rateLimitPerDay": 100_000_000 }),
        ),
    )
    .await
    .expect("create key");
    assert_eq!(status, 201, "{key}");
    (
        admin_key,
        key["data"]["key"].as_str().expect("key").to_owned(),
    )
}

/// What the senders saw.
#[derive(Default)]
pub struct Sent {
    /// token → message id, for every 202.
    pub accepted: BTreeMap<u64, u64>,
    /// Answers other than 202 by status, and transport errors as 0.
    pub other: BTreeMap<u16, u64>,
}

/// Sends until `stop`, with a fresh token per request, to whichever server `base` names.
pub async fn sender(
    client: reqwest::Client,
    key: String,
    mut base: watch::Receiver<Option<String>>,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Sent>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(url) = base.borrow_and_update().clone() else {
            let _ = tokio::time::timeout(Duration::from_millis(50), base.changed()).await;
            continue;
        };
        let token = next.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "to": format!("+92300{:07}", token % 10_000_000), "body": format!("crash {token}") });
        let answer = call(
            &client,
            reqwest::Method::POST,
            format!("{url}/api/sms/send"),
            &key,
            Some(body),
        )
        .await;
        let failed = {
            let mut sent = sent.lock().expect("lock");
            match answer {
                Ok((202, v)) => {
                    let id = v["data"]["messageId"].as_u64().expect("messageId");
                    sent.accepted.insert(token, id);
                    false
                }
                Ok((status, _)) => {
                    *sent.other.entry(status).or_default() += 1;
                    false
                }
                Err(e) => {
                    if std::env::var_os("SAIREX_DEBUG").is_some() {
                        eprintln!("send error: {e:?}");
                    }
                    *sent.other.entry(0).or_default() += 1;
                    true
                }
            }
        };
        if failed {
            // The server is down: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// [`SENDERS`] senders sharing one token counter, until `stop`.
pub fn spawn_senders(
    client: &reqwest::Client,
    key: &str,
    base: &watch::Receiver<Option<String>>,
    stop: &Arc<AtomicBool>,
    sent: &Arc<Mutex<Sent>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(1));
    (0..SENDERS)
        .map(|_| {
            tokio::spawn(sender(
                client.clone(),
                key.to_owned(),
                base.clone(),
                Arc::clone(&next),
                Arc::clone(stop),
                Arc::clone(sent),
            ))
        })
        .collect()
}

/// Waits until more than `before` messages were accepted (a few more than that, in fact).
pub async fn accepted_since(sent: &Mutex<Sent>, before: usize, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.lock().expect("lock").accepted.len() < before + 2 * SENDERS {
        assert!(
            Instant::now() < deadline,
            "no traffic accepted for 60 s; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
