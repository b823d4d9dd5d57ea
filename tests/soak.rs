//! `sairex loadtest soak` as CI runs it: a few seconds, every fault phase once, the binary's
//! own checks (nothing lost, no unexplained duplicate, memory flat) and its JSON report.
//!
//! Bodies of 1 to 3 segments: a long message partly accepted before a throttle or a restart
//! must resend only its missing parts (the soak counts first parts, so a resent first part is
//! an unexplained duplicate). The provider DOWN probe is shortened so that the restarts of a
//! seconds-long run do not park both providers for a minute.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_soak_through_every_fault_phase_loses_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args([
            "loadtest",
            "soak",
            "--duration",
            "10s",
            "--phase",
            "2s",
            "--rate",
            "100",
            "--segments",
            "1:60,2:25,3:15",
            "--probe-after",
            "2s",
            "--drain-timeout",
            "30s",
            "--json",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("the sairex binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{r:#}");
    assert_eq!(r["ok"], true, "{r:#}");
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for phase in [
        "normal",
        "throttled",
        "slow-receipts",
        "primary-failing",
        "primary-down",
    ] {
        assert!(phases.contains(&phase), "{phase} missing: {phases:?}");
    }
    let m = &r["messages"];
    assert_eq!(m["planned"], 1000);
    assert_eq!(m["accepted"], 1000);
    assert_eq!(m["lost"], 0);
    assert_eq!(m["queuedWithoutReason"], 0);
    assert!(m["byStatus"]["DELIVERED"].as_u64().unwrap() > 500, "{m}");
    // The faults really happened: binds dropped, throttling, failover.
    let s = &r["simulators"];
    assert!(s["restarts"].as_u64().unwrap() >= 8, "{s}");
    assert!(s["throttled"].as_u64().unwrap() > 0, "{s}");
    assert!(r["engine"]["failovers"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["memory"]["endKib"].as_u64().unwrap() > 0);
}
