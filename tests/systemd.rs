//! The systemd unit: `systemd-analyze verify` accepts it (where the tool exists), and its stop
//! timeout leaves the example configuration's drain its whole grace period.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/sairex.service"))
        .unwrap()
}

/// The value of `key=` in the unit (the last one, as systemd takes it).
fn setting(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(|value| value.trim().to_owned())
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        println!("note: systemd-analyze not found; skipping the verification of sairex.service");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the binary just built, in a
    // copy of the unit (same file name, so the unit name is the same).
    let unit = unit_text();
    let exec_start = setting(&unit, "ExecStart").unwrap();
    assert!(
        exec_start.starts_with("/usr/local/bin/sairex serve --config /etc/sairex/sairex.toml"),
        "{exec_start}"
    );
    let rewritten = unit.replace(
        "ExecStart=/usr/local/bin/sairex ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_sairex")),
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sairex.service");
    std::fs::write(&copy, rewritten).unwrap();

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        // Warnings too: an unknown or misspelt directive is only a warning.
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("sairex.service"))
        .collect();
    assert!(
        output.status.success() && ours.is_empty(),
        "systemd-analyze verify failed ({}):\n{stderr}",
        output.status
    );
}

#[test]
fn the_unit_has_the_settings_the_deployment_relies_on() {
    let unit = unit_text();
    for (key, value) in [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("StateDirectory", "sairex"),
        ("ConfigurationDirectory", "sairex"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("LimitNOFILE", "65536"),
        ("User", "sairex"),
    ] {
        assert_eq!(setting(&unit, key).as_deref(), Some(value), "{key}");
    }
}

#[test]
fn stop_timeout_is_above_the_example_drain() {
    let unit = unit_text();
    let stop = humantime::parse_duration(&setting(&unit, "TimeoutStopSec").unwrap()).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/sairex.toml");
    let env = std::collections::HashMap::from([(
        "SAIREX_ADMIN_TOKEN".to_owned(),
        "an-admin-token-for-the-tests".to_owned(),
    )]);
    let config = sairex_config::load(&example, &env).unwrap();
    let grace = config.server.shutdown_grace;
    assert!(
        stop >= grace + Duration::from_secs(5),
        "TimeoutStopSec {stop:?} should leave margin above shutdown_grace {grace:?}"
    );
}
