//! `sairex check-config`, run as the built binary on good and bad files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOKEN: &str = "an-admin-token-for-the-tests";

fn check_config(file: &Path, token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sairex"));
    command
        .arg("check-config")
        .arg(file)
        .env_remove("SAIREX_ADMIN_TOKEN")
        .env_remove("SAIREX_MASTER_KEY");
    if let Some(token) = token {
        command.env("SAIREX_ADMIN_TOKEN", token);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/sairex.toml")
}

#[test]
fn the_example_config_passes() {
    // As deployed: the admin token comes from /etc/sairex/sairex.env.
    let output = check_config(&example(), Some(TOKEN));
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.starts_with(&format!("{}: OK\n", example().display())),
        "{stdout}"
    );
    assert!(stdout.contains("listen 127.0.0.1:8080"), "{stdout}");
    assert!(stdout.contains("store /var/lib/sairex"), "{stdout}");
    assert!(stdout.contains("2 providers"), "{stdout}");
    assert!(
        !stdout.contains(TOKEN) && !stdout.contains("changeme"),
        "{stdout}"
    );
}

#[test]
fn the_example_without_a_token_names_the_missing_secret() {
    let output = check_config(&example(), None);
    assert_eq!(output.status.code(), Some(64));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("admin.token: missing secret"), "{stderr}");
}

#[test]
fn a_good_file_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sairex.toml");
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, [9u8; 32]).unwrap();
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:18080\"\n[store]\npath = \"./data\"\nmaster_key_file = {:?}\n[admin]\ntoken = \"a-token-in-the-file-000\"\n",
            key_file.display().to_string()
        ),
    )
    .unwrap();
    let output = check_config(&file, None);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("listen 127.0.0.1:18080"), "{stdout}");
    assert!(stdout.contains("0 providers"), "{stdout}");
    assert!(stdout.contains("admin token from the file"), "{stdout}");
    assert!(
        stdout.contains(&format!("master key from {}", key_file.display())),
        "{stdout}"
    );
    assert!(text(&output.stderr).is_empty());
}

#[test]
fn a_bad_file_lists_every_problem_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sairex.toml");
    std::fs::write(
        &file,
        r#"[server]
listen = "localhost"
lisen = "127.0.0.1:1"

[store]
sync = "sometimes"

[[providers]]
name = "p"
kind = "smpp"
[providers.smpp]
host = "127.0.0.1"
port = "abc"
system_id = "x"
password = "secretpw"
window = 5000
"#,
    )
    .unwrap();
    let output = check_config(&file, None);
    assert_eq!(output.status.code(), Some(64));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let name = file.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    let expected_prefixes = [
        format!("{name}:2: server.listen: expected an IP address and port"),
        format!("{name}:3: server.lisen: unknown key (did you mean `listen`?)"),
        format!("{name}:6: store.sync: expected one of"),
        format!("{name}:13: providers[0].smpp.port: expected an integer 1..=65535, found \"abc\""),
        format!("{name}:16: providers[0].smpp.window: expected an integer 1..=1024, found 5000"),
        format!("{name}: admin.token: missing secret"),
        format!("{name}: 6 problems"),
    ];
    assert_eq!(lines.len(), expected_prefixes.len(), "{stderr}");
    for (line, prefix) in lines.iter().zip(&expected_prefixes) {
        assert!(
            line.starts_with(prefix.as_str()),
            "{line:?} should start with {prefix:?}"
        );
    }
    assert!(!stderr.contains("secretpw"));
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absent.toml");
    let output = check_config(&file, Some(TOKEN));
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).starts_with(&format!("{}: cannot use", file.display())));
}
