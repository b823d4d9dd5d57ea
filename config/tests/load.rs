//! The configuration as a whole: a full file, defaults, environment overrides, and one test per
//! kind of problem, each asserting the key and the line reported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use sairex_config::{
    BindMode, Concatenation, Config, ConfigErrors, DataCoding, Gsm7Packing, InDoubt, OrgRef,
    Problem, ProviderConnection, ProviderKind, SyncMode, parse,
};

const TOKEN: &str = "an-admin-token-of-some-length";

fn env_with_token() -> HashMap<String, String> {
    HashMap::from([("SAIREX_ADMIN_TOKEN".to_owned(), TOKEN.to_owned())])
}

/// Parses text that must be invalid; the problems as (key, line, problem).
fn problems(text: &str) -> Vec<(String, Option<usize>, Problem)> {
    problems_with(text, &env_with_token())
}

fn problems_with(
    text: &str,
    env: &HashMap<String, String>,
) -> Vec<(String, Option<usize>, Problem)> {
    let errors: ConfigErrors = parse(text, env).expect_err("the config should be refused");
    errors
        .errors()
        .iter()
        .map(|e| (e.key.clone(), e.line, e.problem.clone()))
        .collect()
}

/// The (key, line) pairs reported.
fn places(text: &str) -> Vec<(String, Option<usize>)> {
    problems(text).into_iter().map(|(k, l, _)| (k, l)).collect()
}

fn place(key: &str, line: usize) -> (String, Option<usize>) {
    (key.to_owned(), Some(line))
}

#[test]
fn full_fixture_parses_every_key() {
    let text = include_str!("fixtures/full.toml");
    let config = parse(text, &HashMap::new()).unwrap();

    assert_eq!(
        config.server.listen,
        "0.0.0.0:8443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.server.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(config.server.body_limit, 2 * 1024 * 1024);
    assert_eq!(
        config.server.public_base_url.as_deref(),
        Some("https://sms.example.com")
    );
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(45));

    assert_eq!(config.store.path, PathBuf::from("/var/lib/sairex"));
    assert_eq!(config.store.sync, SyncMode::Always);
    assert_eq!(config.store.cache_mb, 256);
    assert_eq!(
        config.store.master_key_file,
        Some(PathBuf::from("/etc/sairex/master.key"))
    );
    // parse() reads no file.
    assert_eq!(config.store.master_key, None);
    assert_eq!(config.store.retention_days, 90);
    assert_eq!(
        config.store.outbox_retention,
        Duration::from_secs(3 * 24 * 3600)
    );

    assert_eq!(
        config.admin.token.as_ref().unwrap().expose(),
        "0123456789abcdef0123"
    );

    assert_eq!(config.limits.global_tps, NonZeroU32::new(500));
    assert_eq!(config.limits.org_per_minute, None);
    assert_eq!(config.limits.org_per_day, NonZeroU32::new(100_000));
    assert_eq!(config.limits.max_queue_depth, 2_000_000);

    assert!(!config.engine.request_receipts);
    assert_eq!(config.engine.poll_interval, Duration::from_millis(50));
    assert_eq!(config.engine.shutdown_grace, Duration::from_secs(20));
    assert_eq!(config.engine.receipt_grace, Duration::from_secs(7_200));

    assert!(config.webhooks.allow_private_targets);
    assert_eq!(config.webhooks.timeout, Duration::from_secs(5));
    assert_eq!(config.webhooks.max_attempts, 3);
    assert_eq!(config.webhooks.disable_after_failures, 10);

    assert_eq!(config.providers.len(), 2);
    let jazz = &config.providers[0];
    assert_eq!(jazz.name, "jazz-primary");
    assert_eq!(jazz.kind, ProviderKind::Smpp);
    assert_eq!(jazz.priority, 1);
    assert!(jazz.active);
    assert!(jazz.organizations.is_empty());
    assert_eq!(jazz.tps, NonZeroU32::new(100));
    assert_eq!(jazz.cost_per_segment, Some(500_000));
    let ProviderConnection::Smpp(smpp) = &jazz.connection else {
        panic!("smpp expected, got {:?}", jazz.connection);
    };
    assert_eq!(smpp.host, "smsc.jazz.example");
    assert_eq!(smpp.port, 2776);
    assert_eq!(smpp.system_id, "sairex");
    assert_eq!(smpp.password.expose(), "s3cret");
    assert_eq!(smpp.system_type, "VMA");
    assert_eq!(smpp.bind_mode, BindMode::TransmitterReceiver);
    assert_eq!(smpp.binds, 4);
    assert_eq!(smpp.window, 128);
    assert_eq!(smpp.response_timeout, Duration::from_secs(5));
    assert_eq!(smpp.enquire_link_interval, Duration::from_secs(20));
    assert_eq!(smpp.reconnect_min, Duration::from_millis(500));
    assert_eq!(smpp.reconnect_max, Duration::from_secs(120));
    assert_eq!(smpp.source_ton, Some(5));
    assert_eq!(smpp.source_npi, Some(0));
    assert_eq!((smpp.dest_ton, smpp.dest_npi), (1, 1));
    assert_eq!(smpp.data_coding, DataCoding::Ucs2);
    assert_eq!(smpp.gsm7_packing, Gsm7Packing::Packed);
    assert_eq!(smpp.concatenation, Concatenation::Sar);
    assert_eq!(smpp.registered_delivery, 17);
    assert_eq!(smpp.in_doubt, InDoubt::Fail);
    assert_eq!(smpp.tls, None);

    let twilio = &config.providers[1];
    assert_eq!(twilio.kind, ProviderKind::Twilio);
    assert!(!twilio.active);
    assert_eq!(
        twilio.organizations,
        vec![OrgRef::Id(7), OrgRef::Name("demo".to_owned())]
    );
    let ProviderConnection::Http(http) = &twilio.connection else {
        panic!("http expected, got {:?}", twilio.connection);
    };
    assert_eq!(http.base_url.as_deref(), Some("http://127.0.0.1:9999"));
    assert_eq!(http.credential("auth_token").unwrap().expose(), "tok");
    assert_eq!(http.credentials.len(), 3);

    assert_eq!(config.inbound_routes.len(), 2);
    assert_eq!(config.inbound_routes[0].number, "8001");
    assert_eq!(
        config.inbound_routes[0].organization,
        OrgRef::Name("demo".to_owned())
    );
    assert_eq!(config.inbound_routes[1].organization, OrgRef::Id(7));
}

#[test]
fn secrets_never_appear_in_debug() {
    let text = include_str!("fixtures/full.toml");
    let config = parse(text, &HashMap::new()).unwrap();
    let debug = format!("{config:?}");
    for secret in ["0123456789abcdef0123", "s3cret", "AC123", "\"tok\""] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("Secret(***)"));
}

#[test]
fn defaults_suit_a_demo() {
    let config = Config::default();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.store.path, PathBuf::from("./sairex-data"));
    assert_eq!(config.store.sync, SyncMode::Batch);
    assert!(config.providers.is_empty());
    // The smallest file (a token from the environment) gives exactly the defaults plus it.
    let parsed = parse("", &env_with_token()).unwrap();
    assert_eq!(parsed.admin.token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(
        Config {
            admin: Default::default(),
            ..parsed
        },
        config
    );
}

#[test]
fn environment_overrides_secrets() {
    let text = "[admin]\ntoken = \"token-from-the-file-0000\"\n";
    let from_file = parse(text, &HashMap::new()).unwrap();
    assert_eq!(
        from_file.admin.token.unwrap().expose(),
        "token-from-the-file-0000"
    );
    let from_env = parse(text, &env_with_token()).unwrap();
    assert_eq!(from_env.admin.token.unwrap().expose(), TOKEN);

    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let mut env = env_with_token();
    env.insert("SAIREX_MASTER_KEY".to_owned(), hex.to_owned());
    let config = parse("[store]\nmaster_key_file = \"/nonexistent\"\n", &env).unwrap();
    let key = config.store.master_key.unwrap();
    assert_eq!(key.bytes()[1], 0x11);
    assert_eq!(key.bytes()[31], 0xff);
}

#[test]
fn bad_environment_values_are_problems_without_echo() {
    let mut env = HashMap::new();
    env.insert("SAIREX_ADMIN_TOKEN".to_owned(), "short".to_owned());
    env.insert("SAIREX_MASTER_KEY".to_owned(), "not-a-key".to_owned());
    let errors = parse("", &env).unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(text.contains("env SAIREX_ADMIN_TOKEN: expected a secret of at least 16 characters, found 5 characters"), "{text}");
    assert!(text.contains("env SAIREX_MASTER_KEY"), "{text}");
    assert!(
        !text.contains("short") && !text.contains("not-a-key"),
        "{text}"
    );
}

#[test]
fn missing_admin_token_is_a_problem() {
    let got = problems_with("[server]\nlisten = \"127.0.0.1:1\"\n", &HashMap::new());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "admin.token");
    // No [admin] section: no line to point at.
    assert_eq!(got[0].1, None);
    assert!(matches!(got[0].2, Problem::Missing { .. }));

    let got = problems_with("\n[admin]\n", &HashMap::new());
    assert_eq!(got[0].0, "admin.token");
    assert_eq!(got[0].1, Some(2));
    let message = parse("[admin]\n", &HashMap::new()).unwrap_err().to_string();
    assert_eq!(
        message,
        "config:1: admin.token: missing secret: set [admin] token, or the environment variable SAIREX_ADMIN_TOKEN"
    );
}

#[test]
fn short_admin_token_in_the_file_is_shown_by_length_only() {
    let got = problems_with("[admin]\ntoken = \"abc\"\n", &HashMap::new());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1), ("admin.token", Some(2)));
    assert_eq!(
        got[0].2.to_string(),
        "expected a secret string of 16 to 4096 characters, found 3 characters"
    );
}

#[test]
fn syntax_errors_are_reported_alone_with_their_lines() {
    let text = "[server]\nlisten = 127.0.0.1:8080\n\n[store]\npath = \"x\"\nsync = \n";
    let got = problems(text);
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|(k, _, p)| k.is_empty() && matches!(p, Problem::Syntax(_))),
        "{got:?}"
    );
    let lines: Vec<_> = got.iter().map(|(_, l, _)| *l).collect();
    assert!(lines.contains(&Some(2)), "{got:?}");
    assert!(lines.contains(&Some(6)), "{got:?}");
}

#[test]
fn unknown_keys_everywhere_with_suggestions() {
    let text = r#"
[sever]
listen = "127.0.0.1:1"

[server]
lisen = "127.0.0.1:1"
colour = "blue"

[[providers]]
name = "a"
kind = "smpp"
[providers.smpp]
host = "127.0.0.1"
system_id = "x"
password = "y"
windw = 10
tls = { enabled = false, ca_fle = "x" }
"#;
    let got = problems(text);
    let summary: Vec<(&str, Option<usize>, String)> = got
        .iter()
        .map(|(k, l, p)| (k.as_str(), *l, p.to_string()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "sever",
                Some(2),
                "unknown key (did you mean `server`?)".to_owned()
            ),
            (
                "server.lisen",
                Some(6),
                "unknown key (did you mean `listen`?)".to_owned()
            ),
            ("server.colour", Some(7), "unknown key".to_owned()),
            (
                "providers[0].smpp.windw",
                Some(16),
                "unknown key (did you mean `window`?)".to_owned()
            ),
            (
                "providers[0].smpp.tls.ca_fle",
                Some(17),
                "unknown key (did you mean `ca_file`?)".to_owned()
            ),
        ]
    );
}

#[test]
fn odd_keys_are_quoted_in_paths() {
    let text = "[server]\n\"a.b\" = 1\n\"\" = 2\n";
    assert_eq!(
        places(text),
        vec![place("server.\"a.b\"", 2), place("server.\"\"", 3)]
    );
}

#[test]
fn wrong_types() {
    let text = r#"[server]
listen = 8080
body_limit = true
[store]
cache_mb = "big"
[engine]
request_receipts = "yes"
[limits]
global_tps = 1.5
[webhooks]
timeout = 10
"#;
    let got = problems(text);
    assert!(
        got.iter()
            .all(|(_, _, p)| matches!(p, Problem::WrongType { .. })),
        "{got:?}"
    );
    assert_eq!(
        places(text),
        vec![
            place("server.listen", 2),
            place("server.body_limit", 3),
            place("store.cache_mb", 5),
            place("engine.request_receipts", 7),
            place("limits.global_tps", 9),
            place("webhooks.timeout", 11),
        ]
    );
    let sections = "server = 1\nproviders = { name = \"x\" }\n";
    let got = problems(sections);
    assert_eq!(
        got.iter()
            .map(|(k, l, _)| (k.as_str(), *l))
            .collect::<Vec<_>>(),
        vec![("server", Some(1)), ("providers", Some(2))]
    );
}

#[test]
fn the_message_format_of_the_brief() {
    let text = "[[providers]]\nname = \"a\"\nkind = \"smpp\"\n[providers.smpp]\nhost = \"h\"\nsystem_id = \"x\"\npassword = \"\"\n\n[[providers]]\nname = \"b\"\nkind = \"smpp\"\n[providers.smpp]\nhost = \"h\"\nport = \"abc\"\nsystem_id = \"x\"\npassword = \"\"\n";
    let errors = parse(text, &env_with_token())
        .unwrap_err()
        .with_origin("sairex.toml");
    assert_eq!(
        errors.to_string(),
        "sairex.toml:14: providers[1].smpp.port: expected an integer 1..=65535, found \"abc\""
    );
}

#[test]
fn bad_addresses_durations_sizes_and_words() {
    let text = r#"[server]
listen = "localhost:80"
metrics_listen = "127.0.0.1:99999"
body_limit = "12 parsecs"
public_base_url = "ftp://example.com"
shutdown_grace = "soon"
[store]
sync = "sometimes"
path = ""
[engine]
poll_interval = "0s"
receipt_grace = "5s"
"#;
    let got = problems(text);
    assert!(
        got.iter()
            .all(|(_, _, p)| matches!(p, Problem::InvalidValue { .. })),
        "{got:?}"
    );
    assert_eq!(
        places(text),
        vec![
            place("server.listen", 2),
            place("server.metrics_listen", 3),
            place("server.body_limit", 4),
            place("server.public_base_url", 5),
            place("server.shutdown_grace", 6),
            place("store.sync", 8),
            place("store.path", 9),
            place("engine.poll_interval", 11),
            place("engine.receipt_grace", 12),
        ]
    );
    let sync = &got[5].2;
    assert_eq!(
        sync.to_string(),
        "expected one of \"always\", \"batch\", \"none\", found \"sometimes\""
    );
}

#[test]
fn out_of_range_values() {
    let text = r#"[store]
cache_mb = 1
retention_days = 0
[limits]
max_queue_depth = 0
global_tps = -1
[webhooks]
max_attempts = 51
[[providers]]
name = "a"
kind = "smpp"
priority = -1
tps = 5000000000
[providers.smpp]
host = "h"
port = 0
system_id = "a-system-id-too-long"
password = "toolongpw"
binds = 65
window = 0
dest_ton = 7
dest_npi = 2
registered_delivery = 32
response_timeout = "10m"
"#;
    assert_eq!(
        places(text),
        vec![
            place("store.cache_mb", 2),
            place("store.retention_days", 3),
            place("limits.max_queue_depth", 5),
            place("limits.global_tps", 6),
            place("webhooks.max_attempts", 8),
            place("providers[0].priority", 12),
            place("providers[0].tps", 13),
            place("providers[0].smpp.port", 16),
            place("providers[0].smpp.system_id", 17),
            place("providers[0].smpp.password", 18),
            place("providers[0].smpp.binds", 19),
            place("providers[0].smpp.window", 20),
            place("providers[0].smpp.dest_ton", 21),
            place("providers[0].smpp.dest_npi", 22),
            place("providers[0].smpp.registered_delivery", 23),
            place("providers[0].smpp.response_timeout", 24),
        ]
    );
    let got = problems(text);
    let window = got.iter().find(|(k, _, _)| k.ends_with(".window")).unwrap();
    assert_eq!(
        window.2.to_string(),
        "expected an integer 1..=1024, found 0"
    );
    let password = got
        .iter()
        .find(|(k, _, _)| k.ends_with(".password"))
        .unwrap();
    assert!(!password.2.to_string().contains("toolongpw"));
}

#[test]
fn providers_missing_pieces() {
    let text = r#"[[providers]]
kind = "smpp"

[[providers]]
name = "no-kind"

[[providers]]
name = "http-without-credentials"
kind = "vonage"
[providers.http]
base_url = "https://api.nexmo.example"

[[providers]]
name = "twilio-half"
kind = "twilio"
[providers.http.credentials]
account_sid = "AC1"

[[providers]]
name = "smpp-without-password"
kind = "smpp"
[providers.smpp]
host = "h"
system_id = "x"

[[providers]]
name = "tls-without-ca"
kind = "smpp"
[providers.smpp]
host = "h"
system_id = "x"
password = "p"
[providers.smpp.tls]
enabled = true
client_cert_file = "/c.pem"
"#;
    let got = problems(text);
    assert!(
        got.iter()
            .all(|(_, _, p)| matches!(p, Problem::Missing { .. })),
        "{got:?}"
    );
    assert_eq!(
        places(text),
        vec![
            place("providers[0].name", 1),
            place("providers[0].smpp", 1),
            place("providers[1].kind", 4),
            place("providers[2].http.credentials", 10),
            place("providers[3].http.credentials.auth_token", 16),
            place("providers[4].smpp.password", 22),
            place("providers[5].smpp.tls.ca_file", 33),
            place("providers[5].smpp.tls.client_key_file", 33),
        ]
    );
    assert_eq!(
        got[1].2.to_string(),
        "missing section [providers.smpp] (required by kind = \"smpp\")"
    );
}

#[test]
fn sections_that_do_not_match_the_kind() {
    let text = r#"[[providers]]
name = "a"
kind = "smpp"
[providers.smpp]
host = "h"
system_id = "x"
password = "p"
[providers.http]
base_url = "https://x.example"

[[providers]]
name = "b"
kind = "twilio"
smpp = { host = "h" }
[providers.http.credentials]
account_sid = "AC1"
auth_token = "t"
"#;
    let got = problems(text);
    assert!(
        got.iter()
            .all(|(_, _, p)| matches!(p, Problem::Conflict(_))),
        "{got:?}"
    );
    assert_eq!(
        places(text),
        vec![
            place("providers[0].http", 8),
            place("providers[1].smpp", 14)
        ]
    );
}

#[test]
fn duplicates() {
    let text = r#"[[providers]]
name = "jazz"
kind = "twilio"
organizations = ["demo", 3, "demo"]
http = { credentials = { account_sid = "a", auth_token = "b" } }

[[providers]]
name = "jazz"
kind = "veevo"
http = { credentials = { hash = "h" } }

[[inbound_routes]]
number = "8001"
organization = "demo"

[[inbound_routes]]
number = 8001
organization = 0
"#;
    let got = problems(text);
    assert_eq!(
        places(text),
        vec![
            place("providers[0].organizations[2]", 4),
            place("providers[1].name", 8),
            place("inbound_routes[1].number", 17),
            place("inbound_routes[1].organization", 18),
        ]
    );
    assert_eq!(
        got[1].2,
        Problem::Duplicate {
            what: "provider name \"jazz\"".to_owned(),
            first_line: Some(2)
        }
    );
    assert_eq!(
        got[2].2.to_string(),
        "duplicate inbound route for 8001 (first on line 13)"
    );
    // Organization 0 is the system, not a tenant a route can point at.
    assert!(matches!(got[3].2, Problem::InvalidValue { .. }));
}

#[test]
fn inbound_routes_must_point_somewhere() {
    let text = r#"[[inbound_routes]]
number = "80x1"
organization = ""

[[inbound_routes]]
organization = "demo"
"#;
    assert_eq!(
        places(text),
        vec![
            place("inbound_routes[0].number", 2),
            place("inbound_routes[0].organization", 3),
            place("inbound_routes[1].number", 5),
        ]
    );
}

#[test]
fn conflicts_across_keys() {
    let text = r#"[server]
listen = "0.0.0.0:8080"
metrics_listen = "127.0.0.1:8080"
shutdown_grace = "5s"
[engine]
shutdown_grace = "10s"
[[providers]]
name = "a"
kind = "smpp"
[providers.smpp]
host = "h"
system_id = "x"
password = "p"
reconnect_min = "2m"
reconnect_max = "1m"
"#;
    let got = problems(text);
    assert!(
        got.iter()
            .all(|(_, _, p)| matches!(p, Problem::Conflict(_))),
        "{got:?}"
    );
    assert_eq!(
        places(text),
        vec![
            place("server.metrics_listen", 3),
            place("engine.shutdown_grace", 6),
            place("providers[0].smpp.reconnect_min", 14),
        ]
    );
}

#[test]
fn every_problem_at_once_in_file_order() {
    // One of each kind, spread over the file: all are reported, sorted by line.
    let text = r#"[server]
listen = "nowhere"
extra = 1
[store]
sync = 3
[[providers]]
name = "p"
kind = "carrier-pigeon"
"#;
    let errors = parse(text, &HashMap::new()).unwrap_err();
    let lines: Vec<Option<usize>> = errors.errors().iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(2), Some(3), Some(5), Some(8), None]);
    assert_eq!(errors.errors()[4].key, "admin.token");
    assert_eq!(errors.lines().count(), 5);
}

#[test]
fn smpp_server_is_off_by_default_and_parses_its_keys() {
    let config = parse("", &env_with_token()).unwrap();
    assert!(!config.smpp_server.enabled());
    let config = parse(
        r#"
[smpp_server]
listen = "0.0.0.0:2775"
system_id = "SairexGW"
idle_timeout = "2m"
receipt_max_age = "24h"
lockout_after = 3
max_command_length = 4096
"#,
        &env_with_token(),
    )
    .unwrap();
    let s = &config.smpp_server;
    assert!(s.enabled());
    assert_eq!(s.listen, Some("0.0.0.0:2775".parse().unwrap()));
    assert_eq!(s.tls_listen, None);
    assert_eq!(s.system_id, "SairexGW");
    assert_eq!(s.idle_timeout, Duration::from_secs(120));
    assert_eq!(s.receipt_max_age, Duration::from_secs(24 * 3600));
    assert_eq!(s.lockout_after, 3);
    assert_eq!(s.max_command_length, 4096);
}

#[test]
fn smpp_server_tls_needs_its_files_and_its_own_port() {
    let found = places("[smpp_server]\nlisten = \"0.0.0.0:2775\"\ntls_listen = \"0.0.0.0:2775\"\n");
    assert!(
        found.contains(&place("smpp_server.tls_listen", 3)),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(k, _)| k == "smpp_server.tls_cert_file"),
        "{found:?}"
    );
    let found = places("[smpp_server]\ntls_cert_file = \"/x.pem\"\n");
    assert!(
        found.iter().any(|(k, _)| k == "smpp_server.tls_listen"),
        "{found:?}"
    );
    let found = places("[smpp_server]\nlisten = \"nowhere\"\nsurprise = 1\n");
    assert!(found.contains(&place("smpp_server.listen", 2)), "{found:?}");
    assert!(
        found.contains(&place("smpp_server.surprise", 3)),
        "{found:?}"
    );
}
