//! Crash test: the real `sairex serve` binary, SIGKILLed mid-stream several times.
//!
//! An SMSC simulator runs in this process and is the config's only SMPP provider. Senders POST
//! /api/sms/send without pause while the server is killed (SIGKILL: no drain, no flush) and
//! restarted on the same store, [`KILLS`] times. At the end:
//! - every message answered 202 exists (GET /api/sms/status/:id) and reaches a final status:
//!   a 202 is durable, whatever happens after it;
//! - a message the simulator received more than once (the body carries a unique token) was in
//!   flight at a kill: its timeline holds RESUBMITTED_AFTER_RESTART (recovery re-queued it) or
//!   IN_DOUBT, and the duplicates together are no more than the messages recovery re-queued at
//!   the restarts (read from each start's "store open" log line).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

/// SIGKILLs (each followed by a restart).
const KILLS: usize = 3;
/// Concurrent senders, each with one request in flight.
const SENDERS: usize = 6;
const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789";
/// 32 bytes in hex: provider credentials in the store are encrypted with it.
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// binds × window of the provider: the most submits outstanding at once.
const BINDS: u32 = 2;
const WINDOW: u32 = 16;

/// A running `sairex serve` child and what it printed.
struct Gateway {
    child: Child,
    base: String,
    /// The recovery report of its start (`store open` line).
    recovery: String,
}

impl Gateway {
    /// Starts the binary on `config`, its stderr appended to `log`; waits for its address.
    fn start(config: &Path, log: &Path) -> Self {
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
    fn kill(mut self) {
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
fn requeued_in(line: &str) -> usize {
    line.split("requeued=")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn write_config(dir: &Path, sim: SocketAddr) -> PathBuf {
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
"#,
        data = dir.join("data").display(),
        port = sim.port(),
    );
    let path = dir.join("sairex.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

fn client() -> reqwest::Client {
    sairex_engine::http_client::builder()
        .expect("tls config")
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

async fn call(
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

/// An organization and a key of it with room for the test's traffic.
async fn tenant(client: &reqwest::Client, base: &str) -> String {
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
    key["data"]["key"].as_str().expect("key").to_owned()
}

/// What the senders saw.
#[derive(Default)]
struct Sent {
    /// token → message id, for every 202.
    accepted: BTreeMap<u64, u64>,
    /// Answers other than 202 by status, and transport errors as 0.
    other: BTreeMap<u16, u64>,
}

/// Sends until `stop`, with a fresh token per request, to whichever server `base` names.
async fn sender(
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

/// Waits until more than `before` messages were accepted (a few more than that, in fact).
async fn accepted_since(sent: &Mutex<Sent>, before: usize, log: &Path) {
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

/// How many times the simulator accepted each token's submit.
fn submits_by_token(sim: &SimHandle) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for m in sim.received() {
        if m.message_id.is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&m.short_message);
        if let Some(token) = text
            .strip_prefix("crash ")
            .and_then(|t| t.parse::<u64>().ok())
        {
            *counts.entry(token).or_default() += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_accepted_message() {
    let started = Instant::now();
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(30),
        // Receipts for a killed server's binds wait for the next server's binds.
        delivery_retry_interval: Duration::from_millis(200),
        delivery_resp_timeout: Duration::from_secs(2),
        delivery_max_attempts: 1000,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let mut dir = tempfile::tempdir().expect("tempdir");
    // SAIREX_KEEP=1 keeps the store, config and the gateway's log for a look afterwards.
    dir.disable_cleanup(std::env::var_os("SAIREX_KEEP").is_some());
    let config = write_config(dir.path(), sim.addr());
    let log = dir.path().join("gateway.log");
    let client = client();

    let mut gateway = Gateway::start(&config, &log);
    let key = tenant(&client, &gateway.base).await;

    let (base_tx, base_rx) = watch::channel(Some(gateway.base.clone()));
    let next = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            tokio::spawn(sender(
                client.clone(),
                key.clone(),
                base_rx.clone(),
                Arc::clone(&next),
                Arc::clone(&stop),
                Arc::clone(&sent),
            ))
        })
        .collect();

    let mut requeued = Vec::new();
    let mut accepted_at_kill = Vec::new();
    for round in 0..KILLS {
        // A fresh process answers its first send slowly (lazy tables, a debug build): kill
        // only once this one has accepted traffic, then at a different moment each round.
        let before = sent.lock().expect("lock").accepted.len();
        accepted_since(&sent, before, &log).await;
        tokio::time::sleep(Duration::from_millis(300 + 300 * round as u64)).await;
        accepted_at_kill.push(sent.lock().expect("lock").accepted.len());
        base_tx.send_replace(None);
        gateway.kill();
        gateway = Gateway::start(&config, &log);
        requeued.push(requeued_in(&gateway.recovery));
        base_tx.send_replace(Some(gateway.base.clone()));
    }
    let before = sent.lock().expect("lock").accepted.len();
    accepted_since(&sent, before, &log).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));
    assert!(
        sent.accepted.len() > 100,
        "too little traffic to mean anything: {} accepted, others {:?}",
        sent.accepted.len(),
        sent.other
    );

    // Every 202 is there and reaches a final status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<(u64, u64)> = sent.accepted.iter().map(|(&t, &id)| (t, id)).collect();
    let mut finals: HashMap<u64, Value> = HashMap::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (token, id) in pending {
            let (status, v) = call(
                &client,
                reqwest::Method::GET,
                format!("{}/api/sms/status/{id}", gateway.base),
                &key,
                None,
            )
            .await
            .expect("status");
            assert_eq!(
                status, 200,
                "message {id} (token {token}) was acknowledged with 202 but is missing: {v}"
            );
            let s = v["data"]["status"].as_str().unwrap_or_default().to_owned();
            if matches!(s.as_str(), "DELIVERED" | "FAILED" | "REJECTED" | "EXPIRED") {
                finals.insert(id, v);
            } else {
                still.push((token, id));
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} acknowledged messages not final after 60 s, e.g. {:?}; log {}; simulator \
                 receipts {:?}",
                pending.len(),
                &pending[..pending.len().min(5)],
                log.display(),
                sim.stats().receipts
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for v in finals.values() {
        *by_status
            .entry(v["data"]["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }

    // Duplicates: only messages that were in flight at a kill, and no more than recovery
    // re-queued.
    let submits = submits_by_token(&sim);
    let in_flight_at_kill = |v: &Value| {
        v["data"]["timeline"].as_array().is_some_and(|t| {
            t.iter().any(|e| {
                matches!(
                    e["event"].as_str(),
                    Some("RESUBMITTED_AFTER_RESTART" | "IN_DOUBT")
                )
            })
        })
    };
    let mut duplicates = 0u64;
    let mut unexplained = Vec::new();
    for (&token, &count) in &submits {
        if count <= 1 {
            continue;
        }
        duplicates += u64::from(count - 1);
        match sent.accepted.get(&token).and_then(|id| finals.get(id)) {
            Some(v) if in_flight_at_kill(v) => {}
            // A message whose 202 never arrived (the kill cut the answer) is checked by count.
            None => {}
            Some(v) => unexplained.push(v["data"]["messageId"].clone()),
        }
    }
    // Every acknowledged message reached the simulator at least once unless it failed.
    let never_sent: Vec<u64> = sent
        .accepted
        .iter()
        .filter(|(t, id)| {
            !submits.contains_key(t)
                && finals
                    .get(id)
                    .is_some_and(|v| v["data"]["status"] == "DELIVERED")
        })
        .map(|(_, &id)| id)
        .collect();
    let requeued_total: usize = requeued.iter().sum();
    eprintln!(
        "crash test: {} accepted ({:?} at the kills), others {:?}; final {:?}; re-queued at restarts {:?}; \
         duplicates at the simulator {duplicates}; {:.1} s",
        sent.accepted.len(),
        accepted_at_kill,
        sent.other,
        by_status,
        requeued,
        started.elapsed().as_secs_f64()
    );
    assert!(
        unexplained.is_empty(),
        "sent twice but never in flight at a kill: {unexplained:?}"
    );
    assert!(
        duplicates <= requeued_total as u64,
        "{duplicates} duplicates, but only {requeued_total} messages were in flight at the kills"
    );
    assert!(
        requeued.iter().all(|&n| n <= (BINDS * WINDOW) as usize * 4),
        "recovery re-queued more than a few windows: {requeued:?}"
    );
    assert!(
        never_sent.is_empty(),
        "DELIVERED without reaching the simulator: {never_sent:?}"
    );

    // A graceful stop at the end, so the child does not outlive the test.
    gateway.kill();
    sim.shutdown().await;
}

#[test]
fn the_requeued_count_is_read_from_the_store_open_line() {
    let line = "2026-11-26T16:14:15.573714Z  INFO sairex::serve: store open path=/tmp/x/data requeued=26 failed=0";
    assert_eq!(requeued_in(line), 26);
    assert_eq!(
        requeued_in("INFO sairex::serve: serving api_addr=127.0.0.1:1"),
        0
    );
}
