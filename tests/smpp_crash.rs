//! SIGKILL test of the SMPP server: the real `sairex serve` binary with `[smpp_server]`, an
//! SMSC simulator in this process as its provider, and a customer ESME on loopback.
//!
//! The customer submits (asking for receipts) with no receiver bound, so receipts pile up in
//! its outbox; the server is SIGKILLed mid-stream and restarted on the same store. Then a
//! receiver binds and must get a receipt for every id it was ever answered with: an id given in
//! submit_sm_resp is never lost, and receipts owed are delivered after the restart.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_pdu::{
    Bind, Command, CommandStatus, DeliverSmResp, Pdu, ShortMessage, SmppCodec, SubmitSm,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;

const ADMIN_TOKEN: &str = "smpp-crash-admin-token-0123456789";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Gateway {
    child: Child,
    base: String,
    smpp: SocketAddr,
}

impl Gateway {
    fn start(config: &Path, log: &Path) -> Self {
        let mut child = Process::new(env!("CARGO_BIN_EXE_sairex"))
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
                if line.contains("SMPP server started") || line.contains("api_addr=") {
                    let _ = tx.send(line);
                }
            }
        });
        let field = |line: &str, key: &str| -> Option<SocketAddr> {
            let rest = line.split(key).nth(1)?;
            let rest = rest.strip_prefix("Some(").unwrap_or(rest);
            rest.split(|c: char| c == ')' || c.is_whitespace())
                .next()?
                .parse()
                .ok()
        };
        let (mut base, mut smpp) = (None, None);
        while base.is_none() || smpp.is_none() {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(addr) = field(&line, "plain=") {
                        smpp = Some(addr);
                    }
                    if let Some(addr) = field(&line, "api_addr=") {
                        base = Some(format!("http://{addr}"));
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("the gateway did not start ({e}); see {}", log.display());
                }
            }
        }
        Self {
            child,
            base: base.unwrap_or_default(),
            smpp: smpp.expect("SMPP address"),
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, sim: SocketAddr) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
path = "{data}"
sync = "batch"
cache_mb = 16

[admin]
token = "{ADMIN_TOKEN}"

[engine]
poll_interval = "20ms"
shutdown_grace = "2s"

[smpp_server]
listen = "127.0.0.1:0"
response_timeout = "2s"

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
"#,
        data = dir.join("data").display(),
        port = sim.port(),
    );
    let path = dir.join("sairex.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

async fn call(client: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn bind(addr: SocketAddr, kind: &str, password: &str) -> Framed<TcpStream, SmppCodec> {
    let mut framed = Framed::new(
        TcpStream::connect(addr).await.expect("connect"),
        SmppCodec::new(),
    );
    let body = Bind {
        system_id: "crashco".try_into().expect("system id"),
        password: password.try_into().expect("password"),
        interface_version: 0x34,
        ..Bind::default()
    };
    let pdu = if kind == "rx" {
        Pdu::BindReceiver(body)
    } else {
        Pdu::BindTransmitter(body)
    };
    framed.send(Command::new(1, pdu)).await.expect("bind sent");
    let resp = framed
        .next()
        .await
        .expect("bind resp")
        .expect("frame")
        .expect("pdu");
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK, "{resp:?}");
    framed
}

/// Submits until the connection dies (the kill), pipelined up to 8; every id answered.
async fn submit_until_killed(addr: SocketAddr, password: String, ids: Arc<Mutex<HashSet<String>>>) {
    let mut esme = bind(addr, "tx", &password).await;
    let mut seq = 1u32;
    let mut outstanding = 0;
    loop {
        while outstanding < 8 {
            seq += 1;
            let submit = SubmitSm {
                source_addr: "CRASH".try_into().expect("source"),
                dest_addr_ton: 1,
                destination_addr: format!("92300{:07}", seq)
                    .as_str()
                    .try_into()
                    .expect("dest"),
                registered_delivery: 1,
                short_message: ShortMessage::new(format!("crash {seq}").into_bytes()).expect("sm"),
                ..SubmitSm::default()
            };
            if esme.send(Command::new(seq, submit)).await.is_err() {
                return;
            }
            outstanding += 1;
        }
        match esme.next().await {
            Some(Ok(Ok(Command {
                command_status,
                pdu: Pdu::SubmitSmResp(r),
                ..
            }))) => {
                outstanding -= 1;
                if command_status.is_ok() {
                    ids.lock()
                        .expect("lock")
                        .insert(r.message_id.to_string_lossy());
                }
            }
            Some(Ok(Ok(_))) => {}
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_submits_and_owed_receipts_survive_sigkill() {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), sim.addr());
    let log = dir.path().join("sairex.log");
    let client = sairex_engine::http_client::builder()
        .expect("tls")
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let gateway = Gateway::start(&config, &log);
    let (status, org) = call(
        &client,
        format!("{}/api/admin/organizations", gateway.base),
        ADMIN_TOKEN,
        json!({ "name": "crash", "defaultCountry": "PK" }),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let key = org["data"]["apiKey"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let (status, account) = call(
        &client,
        format!("{}/api/sms/smpp-accounts", gateway.base),
        &key,
        json!({ "systemId": "crashco", "maxWindow": 64 }),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let password = account["data"]["password"]
        .as_str()
        .expect("password")
        .to_owned();

    // Submits run while the server is SIGKILLed.
    let ids = Arc::new(Mutex::new(HashSet::new()));
    let submitter = tokio::spawn(submit_until_killed(
        gateway.smpp,
        password.clone(),
        Arc::clone(&ids),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.lock().expect("lock").len() < 200 {
        assert!(
            Instant::now() < deadline,
            "no submits acknowledged; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.kill();
    submitter.await.expect("submitter");
    let acknowledged: HashSet<String> = ids.lock().expect("lock").clone();

    // Restarted on the same store, a receiver gets a receipt for every acknowledged id.
    let gateway = Gateway::start(&config, &log);
    let mut receiver = bind(gateway.smpp, "rx", &password).await;
    let mut receipted = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !acknowledged.is_subset(&receipted) {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, receiver.next()).await;
        let command = match next {
            Ok(Some(Ok(Ok(c)))) => c,
            _ => {
                let missing: Vec<_> = acknowledged.difference(&receipted).take(10).collect();
                panic!(
                    "{} of {} acknowledged ids got no receipt (e.g. {missing:?}); see {}",
                    acknowledged.difference(&receipted).count(),
                    acknowledged.len(),
                    log.display()
                );
            }
        };
        match command.pdu {
            Pdu::DeliverSm(d) => {
                if let Some(id) = d.tlvs.receipted_message_id() {
                    receipted.insert(String::from_utf8_lossy(id).into_owned());
                }
                receiver
                    .send(Command::new(
                        command.sequence_number,
                        Pdu::DeliverSmResp(DeliverSmResp::default()),
                    ))
                    .await
                    .expect("resp");
            }
            Pdu::EnquireLink => {
                receiver
                    .send(Command::new(command.sequence_number, Pdu::EnquireLinkResp))
                    .await
                    .expect("resp");
            }
            _ => {}
        }
    }
    gateway.kill();
    sim.shutdown().await;
}
