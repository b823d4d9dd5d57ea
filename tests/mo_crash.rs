//! SIGKILL between the parts of a concatenated inbound message: the real `sairex serve` binary
//! with the SMSC simulator (in this process) as its SMPP provider.
//!
//! The simulator sends two of three parts of one concatenated MO; each is acknowledged
//! (deliver_sm_resp ESME_ROK) by the gateway, which is then SIGKILLed (no drain, no flush).
//! Restarted on the same store, it gets the last part: exactly one inbound message must be
//! stored, with the whole text. An acknowledged part is never lost, and never stored twice.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sairex_loadtest::sim::{MoPart, SimConfig, SimHandle, SimServer, SimStats};
use serde_json::{Value, json};
use tokio::time::Instant;

const ADMIN_TOKEN: &str = "mo-crash-admin-token-0123456789";
/// 32 bytes in hex: provider credentials in the store are encrypted with it.
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const ORG_NAME: &str = "moco";
const SHORT_CODE: &str = "8080";
const SENDER: &str = "923001234567";
const PARTS: [&str; 3] = ["Fee due on ", "Friday at the ", "school office"];

/// A running `sairex serve` child.
struct Gateway {
    child: Child,
    base: String,
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
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .expect("log file");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if line.contains("serving") && line.contains("api_addr=") {
                    let _ = tx.send(line);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let addr = line
                    .split("api_addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .unwrap_or_else(|| panic!("no address in {line:?}"));
                Self {
                    child,
                    base: format!("http://{addr}"),
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("the gateway did not start ({e}); see {}", log.display());
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

/// The config; with `route`, the short code's inbound messages go to the organization (which
/// must exist when the gateway starts: routes are resolved then).
fn write_config(dir: &Path, sim: SocketAddr, route: bool) -> PathBuf {
    let route = if route {
        format!("[[inbound_routes]]\nnumber = \"{SHORT_CODE}\"\norganization = \"{ORG_NAME}\"\n")
    } else {
        String::new()
    };
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
binds = 1
window = 16
response_timeout = "5s"
reconnect_min = "50ms"
reconnect_max = "500ms"

{route}"#,
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

async fn sim_until(sim: &SimHandle, what: &str, log: &Path, check: impl Fn(&SimStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = sim.stats();
        if check(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {stats:?}; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send_part(sim: &SimHandle, seq: u8) {
    let part = MoPart {
        reference: 77,
        total: 3,
        seq,
    };
    sim.send_mo_part(SENDER, SHORT_CODE, part, PARTS[usize::from(seq - 1)])
        .await
        .expect("part queued");
}

async fn inbound(client: &reqwest::Client, base: &str, key: &str) -> Vec<Value> {
    let response = client
        .get(format!(
            "{base}/api/sms/messages?direction=INBOUND&limit=50"
        ))
        .bearer_auth(key)
        .send()
        .await
        .expect("list");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    body["data"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_inbound_part_survives_sigkill_and_joins_its_siblings() {
    let sim = SimServer::start(SimConfig {
        delivery_retry_interval: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("sairex.log");
    let client = client();

    // The organization first: inbound routes name it, and are resolved at start.
    let gateway = Gateway::start(&write_config(dir.path(), sim.addr(), false), &log);
    let response = client
        .post(format!("{}/api/admin/organizations", gateway.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": ORG_NAME, "defaultCountry": "PK" }))
        .send()
        .await
        .expect("create organization");
    assert_eq!(response.status().as_u16(), 201);
    let org: Value = response.json().await.expect("json");
    let key = org["data"]["apiKey"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    gateway.kill();

    let config = write_config(dir.path(), sim.addr(), true);
    let gateway = Gateway::start(&config, &log);
    sim_until(&sim, "a bind", &log, |s| s.binds.bound >= 1).await;
    // Out of order, as carriers do; each answered ESME_ROK.
    send_part(&sim, 3).await;
    send_part(&sim, 1).await;
    sim_until(&sim, "both parts acknowledged", &log, |s| s.mo.acked == 2).await;
    gateway.kill();

    let gateway = Gateway::start(&config, &log);
    assert!(
        inbound(&client, &gateway.base, &key).await.is_empty(),
        "the held parts are not given up as an incomplete message at start"
    );
    send_part(&sim, 2).await;
    sim_until(&sim, "the last part acknowledged", &log, |s| {
        s.mo.acked == 3
    })
    .await;
    let stored = inbound(&client, &gateway.base, &key).await;
    assert_eq!(stored.len(), 1, "{stored:?}; see {}", log.display());
    assert_eq!(stored[0]["body"], PARTS.concat());
    assert_eq!(stored[0]["segments"], 3);
    assert_eq!(stored[0]["status"], "RECEIVED");
    assert_eq!(stored[0]["from"], "+923001234567");

    // And once only, also after another restart (no part left to be given up).
    gateway.kill();
    let gateway = Gateway::start(&config, &log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(inbound(&client, &gateway.base, &key).await.len(), 1);
    let stats = sim.stats();
    assert_eq!(
        (stats.mo.acked, stats.mo.nacked),
        (3, 0),
        "every part answered OK once: {stats:?}"
    );
    gateway.kill();
    sim.shutdown().await;
}
