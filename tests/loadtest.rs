//! `sairex loadtest` as a user runs it: the built binary, `--json`, the report parsed. Small
//! counts, so the modes cannot rot without CI noticing.

#[path = "../loadtest/tests/support/fake_api.rs"]
mod fake_api;

use std::process::{Command, Output};

use serde_json::Value;

fn sairex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sairex binary runs")
}

fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn store_mode_moves_every_message_through_the_queue() {
    let out = sairex(&[
        "loadtest",
        "store",
        "--messages",
        "300",
        "--concurrency",
        "8",
        "--lease-batch",
        "50",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(r["mode"], "store");
    assert_eq!(r["delivered"], 300);
    let phases = r["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["enqueue", "lease", "ack", "finalize"]);
    for p in phases {
        assert_eq!(p["messages"], 300, "{p}");
        assert_eq!(p["errors"], serde_json::json!({}), "{p}");
        assert!(p["messagesPerSecond"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["latencyUs"]["p50"].as_u64().unwrap() > 0, "{p}");
    }
    // Leases of 50: at least 6 calls moved the 300.
    assert!(phases[1]["operations"].as_u64().unwrap() >= 6);
    assert_eq!(phases[0]["operations"], 300);
}

#[test]
fn smpp_mode_delivers_pre_queued_messages_through_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let out = sairex(&[
        "loadtest",
        "smpp",
        "--messages",
        "300",
        "--binds",
        "2",
        "--window",
        "16",
        "--receipt-delay-ms",
        "5",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(r["mode"], "smpp");
    assert_eq!(r["enqueue"]["messages"], 300);
    let d = &r["delivery"];
    assert_eq!(d["accepted"], 300);
    assert_eq!(d["delivered"], 300);
    assert_eq!(d["missing"], 0);
    assert_eq!(d["latencyUs"]["count"], 300);
    assert!(d["deliveredPerSecond"].as_f64().unwrap() > 0.0);
    assert_eq!(r["engine"]["submitted"], 300);
    assert_eq!(r["simulator"]["submits"]["received"], 300);
    // The store was written where asked.
    assert!(data.read_dir().unwrap().next().is_some());
}

#[test]
fn smpp_mode_feeds_at_a_rate() {
    let out = sairex(&[
        "loadtest",
        "smpp",
        "--messages",
        "200",
        "--rate",
        "400",
        "--receipt-delay-ms",
        "5",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(r["delivery"]["delivered"], 200);
    // 200 at 400/s: the feeding takes half a second.
    let fed = r["enqueue"]["seconds"].as_f64().unwrap();
    assert!(fed >= 0.49, "{fed}");
    assert_eq!(r["settings"]["rate"], 400.0);
}

#[test]
fn http_mode_reports_json_against_a_fake_api() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(fake_api::FakeApi::start(fake_api::FakeConfig::default()));
    let url = api.url();
    let out = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args([
            "loadtest",
            "http",
            "--target",
            &url,
            "--rate",
            "1000",
            "--count",
            "300",
            "--concurrency",
            "4",
            "--mix",
            "otp:1,bulk:2",
            "--segments",
            "1,3",
            "--e2e",
            "--json",
        ])
        // The key from the environment: it stays out of the process list.
        .env("SAIREX_API_KEY", "sk_live_test")
        .output()
        .unwrap();
    let r = report(&out);
    assert_eq!(r["mode"], "http");
    assert_eq!(r["requests"], 300);
    assert_eq!(r["accepted"], 300);
    assert_eq!(r["e2e"]["delivered"], 300);
    assert_eq!(r["settings"]["pacing"], "open");
    assert!(r["acceptLatencyUs"]["p99"].as_u64().unwrap() > 0);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("sk_live_test"));
    assert_eq!(api.requests(), 300);
    let received = api.received();
    assert_eq!(
        received.iter().filter(|r| r["priority"] == "otp").count(),
        100
    );
}

#[test]
fn bad_settings_exit_with_64() {
    let out = sairex(&[
        "loadtest",
        "http",
        "--target",
        "ftp://127.0.0.1:1",
        "--key",
        "k",
        "--max",
        "--count",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target"));
    let out = sairex(&["loadtest", "store", "--messages", "0"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}
