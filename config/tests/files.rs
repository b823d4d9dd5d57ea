//! `load`: the file itself, and the files it names (master key, TLS), read for real from a
//! temporary directory.

use std::collections::HashMap;
use std::path::Path;

use sairex_config::{Problem, ProviderConnection, load};

fn env() -> HashMap<String, String> {
    HashMap::from([(
        "SAIREX_ADMIN_TOKEN".to_owned(),
        "an-admin-token-of-some-length".to_owned(),
    )])
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn master_key_file_is_read_in_each_form() {
    let dir = tempfile::tempdir().unwrap();
    let raw: [u8; 32] = std::array::from_fn(|i| u8::try_from(255 - i).unwrap());
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    for (name, content) in [
        ("raw.key", raw.to_vec()),
        ("hex.key", format!("{hex}\n").into_bytes()),
    ] {
        let key_path = write(dir.path(), name, &content);
        let config_path = write(
            dir.path(),
            "sairex.toml",
            format!("[store]\nmaster_key_file = {key_path:?}\n").as_bytes(),
        );
        let config = load(Path::new(&config_path), &env()).unwrap();
        assert_eq!(config.store.master_key.unwrap().bytes(), &raw, "{name}");
    }
}

#[test]
fn unusable_named_files_are_problems_on_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bad_key = write(dir.path(), "bad.key", b"too short to be a key\n");
    let missing = dir.path().join("missing.pem").display().to_string();
    let ca = write(dir.path(), "ca.pem", b"-----BEGIN CERTIFICATE-----\n");
    let text = format!(
        r#"[store]
master_key_file = {bad_key:?}

[[providers]]
name = "tls"
kind = "smpp"
[providers.smpp]
host = "127.0.0.1"
system_id = "x"
password = "p"
tls = {{ enabled = true, ca_file = {missing:?} }}

[[providers]]
name = "tls-dir"
kind = "smpp"
[providers.smpp]
host = "127.0.0.1"
system_id = "x"
password = "p"
[providers.smpp.tls]
enabled = true
ca_file = {ca:?}
client_cert_file = {dir:?}
client_key_file = {ca:?}
"#,
        dir = dir.path().display().to_string()
    );
    let config_path = write(dir.path(), "sairex.toml", text.as_bytes());
    let errors = load(Path::new(&config_path), &env()).unwrap_err();
    assert_eq!(errors.origin(), config_path);
    let got: Vec<(&str, Option<usize>)> = errors
        .errors()
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("store.master_key_file", Some(2)),
            ("providers[0].smpp.tls.ca_file", Some(11)),
            ("providers[1].smpp.tls.client_cert_file", Some(23)),
        ]
    );
    assert!(
        errors
            .errors()
            .iter()
            .all(|e| matches!(e.problem, Problem::File { .. }))
    );
    let text = errors.to_string();
    assert!(!text.contains("too short"), "key content leaked: {text}");
    assert!(text.contains("not a regular file"), "{text}");

    // The same text through parse() reads no file: no problem.
    let config =
        sairex_config::parse(&std::fs::read_to_string(&config_path).unwrap(), &env()).unwrap();
    let ProviderConnection::Smpp(smpp) = &config.providers[1].connection else {
        panic!("smpp expected");
    };
    assert!(smpp.tls.as_ref().unwrap().client_key_file.is_some());
}

#[test]
fn environment_key_makes_the_file_unneeded() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = write(
        dir.path(),
        "sairex.toml",
        b"[store]\nmaster_key_file = \"/nonexistent/master.key\"\n",
    );
    assert!(load(Path::new(&config_path), &env()).is_err());
    let mut env = env();
    env.insert("SAIREX_MASTER_KEY".to_owned(), "ab".repeat(32));
    let config = load(Path::new(&config_path), &env).unwrap();
    assert_eq!(config.store.master_key.unwrap().bytes(), &[0xab; 32]);
}

#[test]
fn unreadable_config_file_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let errors = load(&missing, &env()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(matches!(errors.errors()[0].problem, Problem::File { .. }));
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot use", missing.display()))
    );

    let binary = write(dir.path(), "binary.toml", &[0xff, 0xfe, 0x00]);
    let errors = load(Path::new(&binary), &env()).unwrap_err();
    assert_eq!(errors.len(), 1);
}
