//! The schema: every section's keys, their defaults and ranges, and the checks across keys.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::error::Problem;
use crate::model::{
    AdminConfig, BindMode, Concatenation, Config, DataCoding, EngineConfig, Gsm7Packing,
    HttpConfig, InDoubt, InboundRoute, LimitsConfig, OrgRef, ProviderConfig, ProviderConnection,
    ProviderKind, ServerConfig, ServerTlsFiles, SmppConfig, SmppServerConfig, StoreConfig,
    SyncMode, TlsConfig, WebhooksConfig,
};
use crate::secret::{MasterKey, MasterKeyError, Secret};
use crate::values::{
    boolean, decimal_micros, duration_in, http_url, int_in, limit, name, number, one_of, org_ref,
    path, secret, size_in, smpp_text, socket_addr,
};
use crate::walk::{Ctx, Section, describe};
use crate::{ENV_ADMIN_TOKEN, ENV_MASTER_KEY};

const MS: Duration = Duration::from_millis(1);
const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Shortest admin token accepted: it guards every organization.
pub(crate) const ADMIN_TOKEN_MIN_CHARS: usize = 16;
/// Longest secret string accepted (a bound, not a policy).
const SECRET_MAX_CHARS: usize = 4096;
/// Longest key file read (a key is 32 bytes, or at most 64 characters of text).
const KEY_FILE_MAX_BYTES: u64 = 4096;

/// The whole document.
pub(crate) fn config(
    cx: &mut Ctx,
    document: &DeTable<'_>,
    env: &HashMap<String, String>,
) -> Config {
    let mut config = Config::default();
    let mut root = Section::root(document);

    let mut server_spans = ServerSpans::default();
    if let Some(mut s) = root.table(cx, "server") {
        server_spans = server(cx, &mut s, &mut config.server);
        s.finish(cx);
    }
    // The environment's key first: with it, the key file is neither read nor needed.
    master_key(cx, env, &mut config.store);
    if let Some(mut s) = root.table(cx, "store") {
        store(cx, &mut s, &mut config.store);
        s.finish(cx);
    }
    let mut admin_section = root.table(cx, "admin");
    admin(cx, admin_section.as_mut(), env, &mut config.admin);
    if let Some(s) = admin_section {
        s.finish(cx);
    }
    if let Some(mut s) = root.table(cx, "limits") {
        limits(cx, &mut s, &mut config.limits);
        s.finish(cx);
    }
    let mut engine_grace_span = None;
    if let Some(mut s) = root.table(cx, "engine") {
        engine_grace_span = engine(cx, &mut s, &mut config.engine);
        s.finish(cx);
    }
    if let Some(mut s) = root.table(cx, "webhooks") {
        webhooks(cx, &mut s, &mut config.webhooks);
        s.finish(cx);
    }
    let mut names = HashMap::new();
    for mut s in root.tables(cx, "providers") {
        if let Some(provider) = provider(cx, &mut s, &mut names) {
            config.providers.push(provider);
        }
        s.finish(cx);
    }
    let mut numbers = HashMap::new();
    for mut s in root.tables(cx, "inbound_routes") {
        if let Some(route) = inbound_route(cx, &mut s, &mut numbers) {
            config.inbound_routes.push(route);
        }
        s.finish(cx);
    }
    if let Some(mut s) = root.table(cx, "smpp_server") {
        smpp_server(cx, &mut s, &mut config.smpp_server);
        s.finish(cx);
    }
    root.finish(cx);

    if config.engine.shutdown_grace > config.server.shutdown_grace {
        let span = engine_grace_span.or(server_spans.shutdown_grace);
        cx.error(
            "engine.shutdown_grace",
            span.as_ref(),
            Problem::Conflict(format!(
                "the engine's drain ({}) must fit in server.shutdown_grace ({})",
                humantime::format_duration(config.engine.shutdown_grace),
                humantime::format_duration(config.server.shutdown_grace)
            )),
        );
    }
    if let Some(metrics) = config.server.metrics_listen
        && same_listener(metrics, config.server.listen)
    {
        cx.error(
            "server.metrics_listen",
            server_spans.metrics_listen.as_ref(),
            Problem::Conflict(format!(
                "the metrics listener must not use the API's address {}",
                config.server.listen
            )),
        );
    }
    config
}

/// Whether two listeners would collide (port 0 picks a free port, so never).
fn same_listener(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Spans of the `[server]` values that checks across sections point at.
#[derive(Default)]
struct ServerSpans {
    metrics_listen: Option<Range<usize>>,
    shutdown_grace: Option<Range<usize>>,
}

fn server(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut ServerConfig) -> ServerSpans {
    let mut spans = ServerSpans::default();
    s.set(cx, "listen", &mut out.listen, socket_addr);
    if let Some((addr, span)) = s.get_spanned(cx, "metrics_listen", socket_addr) {
        out.metrics_listen = Some(addr);
        spans.metrics_listen = Some(span);
    }
    s.set(cx, "body_limit", &mut out.body_limit, |v| {
        size_in(v, KIB, 64 * MIB)
    });
    out.public_base_url = s.get(cx, "public_base_url", http_url);
    if let Some((grace, span)) = s.get_spanned(cx, "shutdown_grace", |v| {
        duration_in(v, secs(1), secs(3600))
    }) {
        out.shutdown_grace = grace;
        spans.shutdown_grace = Some(span);
    }
    spans
}

fn store(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut StoreConfig) {
    s.set(cx, "path", &mut out.path, path);
    s.set(cx, "sync", &mut out.sync, |v| {
        one_of(
            v,
            &[
                ("always", SyncMode::Always),
                ("batch", SyncMode::Batch),
                ("none", SyncMode::None),
            ],
        )
    });
    s.set(cx, "cache_mb", &mut out.cache_mb, |v| int_in(v, 8, 65536));
    s.set(cx, "write_buffer_mb", &mut out.write_buffer_mb, |v| {
        int_in(v, 8, 65536)
    });
    if let Some((file, span)) = s.get_spanned(cx, "master_key_file", path) {
        if cx.check_files && out.master_key.is_none() {
            match read_master_key(&file) {
                Ok(key) => out.master_key = Some(key),
                Err(reason) => cx.error(
                    s.key("master_key_file"),
                    Some(&span),
                    Problem::File {
                        path: file.clone(),
                        reason,
                    },
                ),
            }
        }
        out.master_key_file = Some(file);
    }
    s.set(cx, "retention_days", &mut out.retention_days, |v| {
        int_in(v, 1, 36500)
    });
    s.set(cx, "outbox_retention", &mut out.outbox_retention, |v| {
        duration_in(v, secs(3600), secs(365 * 24 * 3600))
    });
}

/// `SAIREX_MASTER_KEY`, which wins over `master_key_file`.
fn master_key(cx: &mut Ctx, env: &HashMap<String, String>, out: &mut StoreConfig) {
    let Some(text) = env.get(ENV_MASTER_KEY).filter(|t| !t.trim().is_empty()) else {
        return;
    };
    match MasterKey::parse(text) {
        Ok(key) => out.master_key = Some(key),
        Err(error) => cx.error(
            format!("env {ENV_MASTER_KEY}"),
            None,
            Problem::InvalidValue {
                expected: "32 bytes as 64 hexadecimal digits or base64".to_owned(),
                found: match error {
                    MasterKeyError::WrongLength { actual } => format!("{actual} bytes of base64"),
                    MasterKeyError::Malformed { length } => format!("{length} characters"),
                },
            },
        ),
    }
}

fn read_master_key(file: &Path) -> Result<MasterKey, String> {
    let metadata = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    if metadata.len() > KEY_FILE_MAX_BYTES {
        return Err(format!(
            "{} bytes is too large for a key file",
            metadata.len()
        ));
    }
    let content = std::fs::read(file).map_err(|e| e.to_string())?;
    MasterKey::from_file_content(&content).map_err(|e| e.to_string())
}

fn admin(
    cx: &mut Ctx,
    section: Option<&mut Section<'_, '_>>,
    env: &HashMap<String, String>,
    out: &mut AdminConfig,
) {
    let mut span = None;
    if let Some(s) = section {
        span = s.span().cloned();
        out.token = s.get(cx, "token", |v| {
            secret(v, ADMIN_TOKEN_MIN_CHARS, SECRET_MAX_CHARS)
        });
    }
    let from_env = env.get(ENV_ADMIN_TOKEN).filter(|t| !t.is_empty());
    if let Some(token) = from_env {
        let token = Secret::new(token.as_str());
        let count = token.char_count();
        if count < ADMIN_TOKEN_MIN_CHARS {
            cx.error(
                format!("env {ENV_ADMIN_TOKEN}"),
                None,
                Problem::InvalidValue {
                    expected: format!("a secret of at least {ADMIN_TOKEN_MIN_CHARS} characters"),
                    found: format!("{count} characters"),
                },
            );
        } else {
            out.token = Some(token);
        }
    } else if out.token.is_none() && !cx.errors.iter().any(|e| e.key == "admin.token") {
        cx.error(
            "admin.token",
            span.as_ref(),
            Problem::Missing {
                what: format!(
                    "secret: set [admin] token, or the environment variable {ENV_ADMIN_TOKEN}"
                ),
            },
        );
    }
}

fn limits(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut LimitsConfig) {
    s.set(cx, "global_tps", &mut out.global_tps, limit);
    s.set(cx, "org_per_minute", &mut out.org_per_minute, limit);
    s.set(cx, "org_per_day", &mut out.org_per_day, limit);
    s.set(cx, "max_queue_depth", &mut out.max_queue_depth, |v| {
        int_in(v, 1, 1_000_000_000_000)
    });
}

/// Returns the span of `shutdown_grace`, for the check against the server's.
fn engine(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut EngineConfig) -> Option<Range<usize>> {
    s.set(cx, "request_receipts", &mut out.request_receipts, boolean);
    s.set(cx, "poll_interval", &mut out.poll_interval, |v| {
        duration_in(v, MS, secs(10))
    });
    s.set(cx, "receipt_grace", &mut out.receipt_grace, |v| {
        duration_in(v, secs(60), secs(30 * 86_400))
    });
    let (grace, span) = s.get_spanned(cx, "shutdown_grace", |v| {
        duration_in(v, 100 * MS, secs(3600))
    })?;
    out.shutdown_grace = grace;
    Some(span)
}

fn webhooks(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut WebhooksConfig) {
    s.set(
        cx,
        "allow_private_targets",
        &mut out.allow_private_targets,
        boolean,
    );
    s.set(cx, "timeout", &mut out.timeout, |v| {
        duration_in(v, secs(1), secs(300))
    });
    s.set(cx, "max_attempts", &mut out.max_attempts, |v| {
        int_in(v, 1, 50)
    });
    s.set(
        cx,
        "disable_after_failures",
        &mut out.disable_after_failures,
        |v| int_in(v, 1, 1_000_000),
    );
}

fn smpp_server(cx: &mut Ctx, s: &mut Section<'_, '_>, out: &mut SmppServerConfig) {
    out.listen = s.get(cx, "listen", socket_addr);
    let tls_listen = s.get_spanned(cx, "tls_listen", socket_addr);
    let cert = s.get_spanned(cx, "tls_cert_file", path);
    let key = s.get_spanned(cx, "tls_key_file", path);
    s.set(cx, "system_id", &mut out.system_id, |v| name(v, 15));
    s.set(cx, "idle_timeout", &mut out.idle_timeout, |v| {
        duration_in(v, secs(5), secs(86_400))
    });
    s.set(
        cx,
        "enquire_link_interval",
        &mut out.enquire_link_interval,
        |v| duration_in(v, secs(1), secs(3600)),
    );
    s.set(cx, "bind_timeout", &mut out.bind_timeout, |v| {
        duration_in(v, secs(1), secs(300))
    });
    s.set(cx, "response_timeout", &mut out.response_timeout, |v| {
        duration_in(v, secs(1), secs(600))
    });
    s.set(cx, "receipt_max_age", &mut out.receipt_max_age, |v| {
        duration_in(v, secs(60), secs(30 * 86_400))
    });
    s.set(cx, "max_command_length", &mut out.max_command_length, |v| {
        int_in(v, 1024, 1024 * 1024)
    });
    s.set(cx, "lockout_after", &mut out.lockout_after, |v| {
        int_in(v, 1, 1000)
    });
    s.set(cx, "lockout_duration", &mut out.lockout_duration, |v| {
        duration_in(v, secs(1), secs(86_400))
    });
    s.set(cx, "max_connections", &mut out.max_connections, |v| {
        int_in(v, 1, 1_000_000)
    });
    if let Some((addr, span)) = tls_listen {
        out.tls_listen = Some(addr);
        if let (Some(l), Some(t)) = (out.listen, out.tls_listen)
            && same_listener(l, t)
        {
            cx.error(
                s.key("tls_listen"),
                Some(&span),
                Problem::Conflict(format!(
                    "the TLS listener must not use listen's address {l}"
                )),
            );
        }
        match (&cert, &key) {
            (Some((cert_file, cert_span)), Some((key_file, key_span))) => {
                let mut usable = true;
                if cx.check_files {
                    for (name, file, span) in [
                        ("tls_cert_file", cert_file, cert_span),
                        ("tls_key_file", key_file, key_span),
                    ] {
                        if let Err(reason) = check_readable(file) {
                            cx.error(
                                s.key(name),
                                Some(span),
                                Problem::File {
                                    path: file.clone(),
                                    reason,
                                },
                            );
                            usable = false;
                        }
                    }
                }
                if usable {
                    out.tls = Some(ServerTlsFiles {
                        cert_file: cert_file.clone(),
                        key_file: key_file.clone(),
                    });
                }
            }
            _ => cx.error(
                s.key(if cert.is_none() {
                    "tls_cert_file"
                } else {
                    "tls_key_file"
                }),
                s.span(),
                Problem::Missing {
                    what: "key with tls_listen: tls_cert_file and tls_key_file (PEM)".to_owned(),
                },
            ),
        }
    } else if cert.is_some() || key.is_some() {
        cx.error(
            s.key("tls_listen"),
            s.span(),
            Problem::Missing {
                what: "key: tls_cert_file and tls_key_file are used only with tls_listen"
                    .to_owned(),
            },
        );
    }
}

const KINDS: [(&str, ProviderKind); 4] = [
    ("smpp", ProviderKind::Smpp),
    ("twilio", ProviderKind::Twilio),
    ("vonage", ProviderKind::Vonage),
    ("veevo", ProviderKind::Veevo),
];

/// One provider; `None` when a required part is missing or unusable (the problem is recorded).
fn provider(
    cx: &mut Ctx,
    s: &mut Section<'_, '_>,
    names: &mut HashMap<String, usize>,
) -> Option<ProviderConfig> {
    let name = required(cx, s, "name", "required key: a unique provider name", |v| {
        name(v, 64)
    });
    if let Some((name, span)) = &name {
        let line = cx.line_of(span.start);
        match names.entry(name.clone()) {
            Entry::Occupied(first) => cx.error(
                s.key("name"),
                Some(span),
                Problem::Duplicate {
                    what: format!("provider name {name:?}"),
                    first_line: Some(*first.get()),
                },
            ),
            Entry::Vacant(slot) => {
                slot.insert(line);
            }
        }
    }
    let kind = required(
        cx,
        s,
        "kind",
        "required key: \"smpp\", \"twilio\", \"vonage\" or \"veevo\"",
        |v| one_of(v, &KINDS),
    )
    .map(|(kind, _)| kind);
    let priority = s.get(cx, "priority", |v| int_in(v, 0, 65535)).unwrap_or(0);
    let active = s.get(cx, "active", boolean).unwrap_or(true);
    let organizations = organizations(cx, s);
    let tps = s.get(cx, "tps", limit).flatten();
    let cost_per_segment = s.get(cx, "cost_per_segment", decimal_micros);

    let smpp_section = s.table(cx, "smpp");
    let http_section = s.table(cx, "http");
    let connection = match kind {
        Some(ProviderKind::Smpp) => {
            if let Some(http) = &http_section {
                wrong_section(cx, http, "smpp");
            }
            match smpp_section {
                Some(mut section) => {
                    let smpp = smpp(cx, &mut section);
                    section.finish(cx);
                    smpp.map(|c| ProviderConnection::Smpp(Box::new(c)))
                }
                None => {
                    missing_section(cx, s, "smpp", "smpp");
                    None
                }
            }
        }
        Some(kind) => {
            if let Some(smpp) = &smpp_section {
                wrong_section(cx, smpp, kind.as_str());
            }
            match http_section {
                Some(mut section) => {
                    let http = http(cx, &mut section, Some(kind));
                    section.finish(cx);
                    http.map(ProviderConnection::Http)
                }
                None => {
                    missing_section(cx, s, "http", kind.as_str());
                    None
                }
            }
        }
        None => {
            // The kind is unknown: still check what is there, for every problem at once.
            if let Some(mut section) = smpp_section {
                smpp(cx, &mut section);
                section.finish(cx);
            }
            if let Some(mut section) = http_section {
                http(cx, &mut section, None);
                section.finish(cx);
            }
            None
        }
    };
    Some(ProviderConfig {
        name: name?.0,
        kind: kind?,
        priority,
        active,
        organizations,
        tps,
        cost_per_segment,
        connection: connection?,
    })
}

/// [`Section::get_spanned`], recording a missing key at the table's header.
fn required<'i, T>(
    cx: &mut Ctx,
    s: &mut Section<'_, 'i>,
    key: &'static str,
    what: &str,
    convert: impl FnOnce(&DeValue<'i>) -> Result<T, Problem>,
) -> Option<(T, Range<usize>)> {
    let found = s.get_spanned(cx, key, convert);
    if found.is_none() && s.raw(key).is_none() {
        cx.error(
            s.key(key),
            s.span(),
            Problem::Missing {
                what: what.to_owned(),
            },
        );
    }
    found
}

fn wrong_section(cx: &mut Ctx, section: &Section<'_, '_>, kind: &str) {
    cx.error(
        section.path(),
        section.span(),
        Problem::Conflict(format!("this section does not apply to kind = {kind:?}")),
    );
}

fn missing_section(cx: &mut Ctx, provider: &Section<'_, '_>, section: &str, kind: &str) {
    cx.error(
        provider.key(section),
        provider.span(),
        Problem::Missing {
            what: format!("section [providers.{section}] (required by kind = {kind:?})"),
        },
    );
}

fn organizations(cx: &mut Ctx, s: &mut Section<'_, '_>) -> Vec<OrgRef> {
    let Some(value) = s.raw("organizations") else {
        return Vec::new();
    };
    let key = s.key("organizations");
    let DeValue::Array(items) = value.get_ref() else {
        cx.error(
            key,
            Some(&value.span()),
            Problem::WrongType {
                expected: "an array of organization ids or names ([] for all)".to_owned(),
                found: describe(value.get_ref(), false),
            },
        );
        return Vec::new();
    };
    let mut out: Vec<OrgRef> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{index}]");
        match org_ref(item.get_ref()) {
            Ok(org) if out.contains(&org) => cx.error(
                item_key,
                Some(&item.span()),
                Problem::Duplicate {
                    what: "organization".to_owned(),
                    first_line: None,
                },
            ),
            Ok(org) => out.push(org),
            Err(problem) => cx.error(item_key, Some(&item.span()), problem),
        }
    }
    out
}

/// SMPP 3.4 §5.2.6 numbering plan indicators.
const NPI_VALUES: [u8; 10] = [0, 1, 3, 4, 6, 8, 9, 10, 14, 18];

fn npi(value: &DeValue<'_>) -> Result<u8, Problem> {
    let expected = "an SMPP 3.4 NPI: 0, 1, 3, 4, 6, 8, 9, 10, 14 or 18";
    let n: u8 = int_in(value, 0, 255).map_err(|_| Problem::InvalidValue {
        expected: expected.to_owned(),
        found: describe(value, false),
    })?;
    if NPI_VALUES.contains(&n) {
        Ok(n)
    } else {
        Err(Problem::InvalidValue {
            expected: expected.to_owned(),
            found: n.to_string(),
        })
    }
}

fn host(value: &DeValue<'_>) -> Result<String, Problem> {
    let expected = "a host name or IP address";
    let DeValue::String(s) = value else {
        return Err(Problem::WrongType {
            expected: expected.to_owned(),
            found: describe(value, false),
        });
    };
    let s = s.trim();
    if s.is_empty() || s.len() > 253 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::InvalidValue {
            expected: expected.to_owned(),
            found: describe(value, false),
        });
    }
    Ok(s.to_owned())
}

fn smpp_password(value: &DeValue<'_>) -> Result<Secret, Problem> {
    let password = secret(value, 0, 8)?;
    if password.expose().is_ascii() {
        Ok(password)
    } else {
        Err(Problem::InvalidValue {
            expected: "a secret string of at most 8 ASCII characters".to_owned(),
            found: "non-ASCII characters".to_owned(),
        })
    }
}

fn smpp(cx: &mut Ctx, s: &mut Section<'_, '_>) -> Option<SmppConfig> {
    let host = required(cx, s, "host", "required key: the SMSC's host", host);
    let port = s.get(cx, "port", |v| int_in(v, 1, 65535)).unwrap_or(2775);
    let system_id = required(
        cx,
        s,
        "system_id",
        "required key: the bind's system_id",
        |v| smpp_text(v, 1, 15),
    );
    let password = required(
        cx,
        s,
        "password",
        "secret: the bind's password (\"\" if the SMSC takes none)",
        smpp_password,
    );
    let system_type = s
        .get(cx, "system_type", |v| smpp_text(v, 0, 12))
        .unwrap_or_default();
    let bind_mode = s
        .get(cx, "bind_mode", |v| {
            one_of(
                v,
                &[
                    ("transceiver", BindMode::Transceiver),
                    ("transmitter_receiver", BindMode::TransmitterReceiver),
                    ("transmitter", BindMode::Transmitter),
                    ("receiver", BindMode::Receiver),
                ],
            )
        })
        .unwrap_or_default();
    let binds = s.get(cx, "binds", |v| int_in(v, 1, 64)).unwrap_or(1);
    let window = s.get(cx, "window", |v| int_in(v, 1, 1024)).unwrap_or(64);
    let response_timeout = s
        .get(cx, "response_timeout", |v| {
            duration_in(v, 100 * MS, secs(300))
        })
        .unwrap_or(secs(10));
    let enquire_link_interval = s
        .get(cx, "enquire_link_interval", |v| {
            duration_in(v, secs(1), secs(3600))
        })
        .unwrap_or(secs(30));
    let reconnect_min = s.get_spanned(cx, "reconnect_min", |v| duration_in(v, 10 * MS, secs(3600)));
    let reconnect_max = s
        .get(cx, "reconnect_max", |v| duration_in(v, 10 * MS, secs(3600)))
        .unwrap_or(secs(60));
    let reconnect_min = match reconnect_min {
        Some((min, span)) if min > reconnect_max => {
            cx.error(
                s.key("reconnect_min"),
                Some(&span),
                Problem::Conflict(format!(
                    "reconnect_min ({}) must not exceed reconnect_max ({})",
                    humantime::format_duration(min),
                    humantime::format_duration(reconnect_max)
                )),
            );
            min
        }
        Some((min, _)) => min,
        None => secs(1).min(reconnect_max),
    };
    let source_ton = s.get(cx, "source_ton", |v| int_in(v, 0, 6));
    let source_npi = s.get(cx, "source_npi", npi);
    let dest_ton = s.get(cx, "dest_ton", |v| int_in(v, 0, 6)).unwrap_or(1);
    let dest_npi = s.get(cx, "dest_npi", npi).unwrap_or(1);
    let data_coding = s
        .get(cx, "data_coding", |v| {
            one_of(
                v,
                &[
                    ("auto", DataCoding::Auto),
                    ("gsm7", DataCoding::Gsm7),
                    ("ucs2", DataCoding::Ucs2),
                    ("latin1", DataCoding::Latin1),
                ],
            )
        })
        .unwrap_or_default();
    let gsm7_packing = s
        .get(cx, "gsm7_packing", |v| {
            one_of(
                v,
                &[
                    ("unpacked", Gsm7Packing::Unpacked),
                    ("packed", Gsm7Packing::Packed),
                ],
            )
        })
        .unwrap_or_default();
    let concatenation = s
        .get(cx, "concatenation", |v| {
            one_of(
                v,
                &[
                    ("udh8", Concatenation::Udh8),
                    ("udh16", Concatenation::Udh16),
                    ("sar", Concatenation::Sar),
                    ("payload", Concatenation::Payload),
                ],
            )
        })
        .unwrap_or_default();
    let registered_delivery = s
        .get(cx, "registered_delivery", |v| int_in(v, 0, 31))
        .unwrap_or(1);
    let in_doubt = s
        .get(cx, "in_doubt", |v| {
            one_of(
                v,
                &[("resubmit", InDoubt::Resubmit), ("fail", InDoubt::Fail)],
            )
        })
        .unwrap_or_default();
    let tls = match s.table(cx, "tls") {
        Some(mut section) => {
            let tls = tls(cx, &mut section);
            section.finish(cx);
            tls
        }
        None => Ok(None),
    };
    Some(SmppConfig {
        host: host?.0,
        port,
        system_id: system_id?.0,
        password: password?.0,
        system_type,
        bind_mode,
        binds,
        window,
        response_timeout,
        enquire_link_interval,
        reconnect_min,
        reconnect_max,
        source_ton,
        source_npi,
        dest_ton,
        dest_npi,
        data_coding,
        gsm7_packing,
        concatenation,
        registered_delivery,
        in_doubt,
        tls: tls.ok()?,
    })
}

/// `Ok(None)` when TLS is off, `Err(())` when it is on but unusable (problems recorded).
fn tls(cx: &mut Ctx, s: &mut Section<'_, '_>) -> Result<Option<TlsConfig>, ()> {
    let enabled = s.get(cx, "enabled", boolean).unwrap_or(false);
    let ca_file = s.get_spanned(cx, "ca_file", path);
    let client_cert_file = s.get_spanned(cx, "client_cert_file", path);
    let client_key_file = s.get_spanned(cx, "client_key_file", path);
    let server_name = s.get(cx, "server_name", |v| name(v, 253));
    if !enabled {
        return Ok(None);
    }
    let mut usable = true;
    if ca_file.is_none() && s.raw("ca_file").is_none() {
        cx.error(
            s.key("ca_file"),
            s.span(),
            Problem::Missing {
                what: "required key with enabled = true: the CA certificate(s) of the SMSC (PEM)"
                    .to_owned(),
            },
        );
        usable = false;
    }
    if client_cert_file.is_some() != client_key_file.is_some() {
        let key = if client_cert_file.is_some() {
            "client_key_file"
        } else {
            "client_cert_file"
        };
        cx.error(
            s.key(key),
            s.span(),
            Problem::Missing {
                what: "key: client_cert_file and client_key_file go together".to_owned(),
            },
        );
        usable = false;
    }
    if cx.check_files {
        for (key, file) in [
            ("ca_file", &ca_file),
            ("client_cert_file", &client_cert_file),
            ("client_key_file", &client_key_file),
        ] {
            if let Some((file, span)) = file
                && let Err(reason) = check_readable(file)
            {
                cx.error(
                    s.key(key),
                    Some(span),
                    Problem::File {
                        path: file.clone(),
                        reason,
                    },
                );
                usable = false;
            }
        }
    }
    match (usable, ca_file) {
        (true, Some((ca_file, _))) => Ok(Some(TlsConfig {
            ca_file,
            client_cert_file: client_cert_file.map(|(f, _)| f),
            client_key_file: client_key_file.map(|(f, _)| f),
            server_name,
        })),
        _ => Err(()),
    }
}

fn check_readable(file: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    std::fs::File::open(file)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `kind` is `None` when the provider's kind is itself unusable (nothing is then required).
fn http(cx: &mut Ctx, s: &mut Section<'_, '_>, kind: Option<ProviderKind>) -> Option<HttpConfig> {
    let required_credentials = kind.map_or(&[][..], ProviderKind::required_credentials);
    let base_url = s.get(cx, "base_url", http_url);
    let Some(credentials_section) = s.table(cx, "credentials") else {
        if s.raw("credentials").is_none() && kind.is_some() {
            let names: Vec<String> = required_credentials
                .iter()
                .map(|n| format!("{n:?}"))
                .collect();
            cx.error(
                s.key("credentials"),
                s.span(),
                Problem::Missing {
                    what: format!("table of secrets (with {})", names.join(", ")),
                },
            );
        }
        return None;
    };
    let mut credentials = Vec::new();
    let mut usable = true;
    for (name, value) in credentials_section.entries() {
        match secret(value.get_ref(), 1, SECRET_MAX_CHARS) {
            Ok(secret) => credentials.push((name.to_owned(), secret)),
            Err(problem) => {
                cx.error(credentials_section.key(name), Some(&value.span()), problem);
                usable = false;
            }
        }
    }
    for required in required_credentials {
        if !credentials_section
            .entries()
            .any(|(name, _)| name == *required)
        {
            cx.error(
                credentials_section.key(required),
                credentials_section.span(),
                Problem::Missing {
                    what: format!(
                        "secret: required by kind = {:?}",
                        kind.map_or("", ProviderKind::as_str)
                    ),
                },
            );
            usable = false;
        }
    }
    usable.then_some(HttpConfig {
        base_url,
        credentials,
    })
}

fn inbound_route(
    cx: &mut Ctx,
    s: &mut Section<'_, '_>,
    numbers: &mut HashMap<String, usize>,
) -> Option<InboundRoute> {
    let number = required(
        cx,
        s,
        "number",
        "required key: the number or short code",
        number,
    );
    if let Some((number, span)) = &number {
        let line = cx.line_of(span.start);
        match numbers.entry(number.clone()) {
            Entry::Occupied(first) => cx.error(
                s.key("number"),
                Some(span),
                Problem::Duplicate {
                    what: format!("inbound route for {number}"),
                    first_line: Some(*first.get()),
                },
            ),
            Entry::Vacant(slot) => {
                slot.insert(line);
            }
        }
    }
    let organization = required(
        cx,
        s,
        "organization",
        "required key: the organization's id or name",
        org_ref,
    );
    Some(InboundRoute {
        number: number?.0,
        organization: organization?.0,
    })
}
