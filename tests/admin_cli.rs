//! `sairex status` and `sairex admin`, the real binary against a real `sairex serve --demo`
//! on loopback: bind state, queue depths, the store's size, exit codes for monitoring, and
//! organizations, keys, providers and webhooks managed with the superadmin token.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Value, json};

/// `serve --demo` in `dir` until its banner ends; the child, its URL and superadmin token.
fn demo(dir: &Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("SAIREX_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sairex serve --demo");
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
    let find = |marker: &str| {
        lines
            .iter()
            .find_map(|l| l.split(marker).nth(1))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| panic!("{marker} in {lines:?}"))
    };
    let url = find("is running: ");
    let token = find("`sairex admin`): ");
    (child, url, token)
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `sairex ARGS` with the gateway given by the environment.
fn sairex(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(args)
        .env("SAIREX_URL", url)
        .env("SAIREX_ADMIN_TOKEN", token)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sairex")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn status_json(url: &str, token: &str) -> (Option<i32>, Value) {
    let o = sairex(url, token, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&o), String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_admin_against_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url, token) = demo(dir.path());
    let _stop = Stop(child);

    // The demo's SMSC simulator binds: all up, exit 0, each bind with its window.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, status) = loop {
        let (code, status) = status_json(&url, &token);
        if code == Some(0) || Instant::now() > deadline {
            break (code, status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["ok"], true);
    let smsc = &status["providers"][0];
    assert_eq!(smsc["displayName"], "demo-smsc", "{status:#}");
    assert_eq!(smsc["state"], "up");
    let binds = smsc["binds"].as_array().unwrap();
    assert!(!binds.is_empty());
    for b in binds {
        assert_eq!(b["state"], "bound", "{b}");
        assert_eq!(b["window"], 64);
        assert!(b["windowInUse"].is_u64() && b["reconnects"].is_u64(), "{b}");
    }
    assert!(status["store"]["sizeBytes"].as_u64().unwrap() > 0);

    let text = sairex(&url, &token, &["status"]);
    assert_eq!(text.status.code(), Some(0));
    let out = stdout(&text);
    assert!(out.starts_with("Sairex: OK"), "{out}");
    assert!(
        out.contains("demo-smsc") && out.contains("bind 0: bound"),
        "{out}"
    );
    assert!(out.contains("Store: "), "{out}");

    // Organizations and keys with the superadmin token.
    let orgs = stdout(&sairex(&url, &token, &["admin", "orgs"]));
    assert!(
        orgs.contains("demo") && orgs.contains("Asia/Karachi"),
        "{orgs}"
    );
    let created = sairex(
        &url,
        &token,
        &[
            "admin",
            "--json",
            "org-create",
            "Lahore School",
            "--country",
            "PK",
        ],
    );
    assert!(created.status.success(), "{created:?}");
    let org: Value = serde_json::from_slice(&created.stdout).unwrap();
    let org_id = org["id"].as_u64().unwrap().to_string();
    let admin_key = org["apiKey"]["key"].as_str().unwrap().to_owned();
    let key = sairex(
        &url,
        &token,
        &[
            "admin",
            "key-create",
            &org_id,
            "--name",
            "sender",
            "--scopes",
            "sms:send",
        ],
    );
    assert!(stdout(&key).contains("sk_live_"), "{key:?}");
    let keys = stdout(&sairex(&url, &token, &["admin", "keys", &org_id]));
    assert!(
        keys.contains("sender") && keys.contains("sms:send"),
        "{keys}"
    );
    assert!(!keys.contains(&admin_key), "keys are masked: {keys}");

    let http = sairex_engine::http_client::builder()
        .unwrap()
        .build()
        .unwrap();

    // A provider whose SMSC is not there: reconnecting, its last error named, exit 2.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = http
        .post(format!("{url}/api/sms/providers"))
        .bearer_auth(&admin_key)
        .json(&json!({ "providerName": "smpp", "displayName": "Dead SMSC",
                       "credentials": { "host": "127.0.0.1", "port": port, "systemId": "x", "password": "y" },
                       "settings": { "reconnectMinMs": 100, "reconnectMaxMs": 200 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let webhook = http
        .post(format!("{url}/api/sms/webhooks"))
        .bearer_auth(&admin_key)
        .json(&json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, status) = loop {
        let (code, status) = status_json(&url, &token);
        let dead = status["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["displayName"] == "Dead SMSC")
            .cloned()
            .unwrap_or(Value::Null);
        if dead["binds"][0]["lastError"].is_string() || Instant::now() > deadline {
            break (code, status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, Some(2), "{status:#}");
    assert_eq!(status["ok"], false);
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("Dead SMSC") && problems.contains("no bind up"),
        "{problems}"
    );
    let dead = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Dead SMSC")
        .unwrap();
    assert_eq!(dead["state"], "down");
    assert!(
        dead["binds"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("ConnectFailed"),
        "{dead}"
    );
    assert_ne!(dead["binds"][0]["state"], "bound");
    assert!(status["queues"].is_array(), "{status:#}");

    let text = sairex(&url, &token, &["status"]);
    assert_eq!(text.status.code(), Some(2));
    let out = stdout(&text);
    assert!(out.starts_with("Sairex: DOWN"), "{out}");
    assert!(
        out.contains("Dead SMSC") && out.contains("last error ConnectFailed"),
        "{out}"
    );
    let providers = stdout(&sairex(&url, &token, &["admin", "providers"]));
    assert!(
        providers.contains("Dead SMSC") && providers.contains("down"),
        "{providers}"
    );
    let hooks = stdout(&sairex(&url, &token, &["admin", "webhooks", &org_id]));
    assert!(hooks.contains("http://127.0.0.1:9/hook"), "{hooks}");

    // The URL and token from a config file instead of the environment.
    let config = dir.path().join("admin.toml");
    let listen = url.trim_start_matches("http://");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"{listen}\"\n\n[admin]\ntoken = \"{token}\"\n"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["admin", "--config", config.to_str().unwrap(), "orgs"])
        .env_remove("SAIREX_URL")
        .env_remove("SAIREX_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("Lahore School"), "{o:?}");

    // A wrong token is an error naming the problem, exit 1.
    let o = sairex(&url, "wrong-token-wrong-token", &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{o:?}");
}
