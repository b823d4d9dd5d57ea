//! SIGKILL between the parts of a concatenated inbound message: the real `sairex serve` binary
//! with the SMSC simulator (in this process) as its SMPP provider.
//!
//! The simulator sends two of three parts of one concatenated MO; each is acknowledged
//! (deliver_sm_resp ESME_ROK) by the gateway, which is then SIGKILLed (no drain, no flush).
//! Restarted on the same store, it gets the last part: exactly one inbound message must be
//! stored, with the whole text. An acknowledged part is never lost, and never stored twice.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sairex_loadtest::sim::{MoPart, SimConfig, SimHandle, SimServer, SimStats};
use serde_json::{Value, json};
use tokio::time::Instant;

use support::{ADMIN_TOKEN, Gateway, client};

const ORG_NAME: &str = "moco";
const SHORT_CODE: &str = "8080";
const SENDER: &str = "923001234567";
const PARTS: [&str; 3] = ["Fee due on ", "Friday at the ", "school office"];

/// The crash tests' config; with `route`, the short code's inbound messages go to the
/// organization (which must exist when the gateway starts: routes are resolved then).
fn write_config(dir: &Path, sim: SocketAddr, route: bool) -> PathBuf {
    let route = if route {
        format!("[[inbound_routes]]\nnumber = \"{SHORT_CODE}\"\norganization = \"{ORG_NAME}\"\n")
    } else {
        String::new()
    };
    support::write_config(dir, sim, &route)
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
