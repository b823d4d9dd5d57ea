//! A stored provider record ([`ProviderConfig`]: `settings` and `credentials` as JSON, the
//! shapes the admin API takes) turned into what a provider actor needs.
//!
//! SMPP, camelCase (`docs/providers.md` lists every key):
//! - `credentials`: `{host, port, systemId, password, systemType, tls: {clientKeyPem}}`
//!   (the blueprint's shape; `host` and `port` may also be in `settings`).
//! - `settings`: `{binds, bindMode, window, responseTimeoutMs, enquireLinkIntervalMs,
//!   connectTimeoutMs, reconnectMinMs, reconnectMaxMs, addrTon, addrNpi, addressRange,
//!   sourceTon, sourceNpi, destTon, destNpi, dataCoding, gsm7Packing, concatenation,
//!   registeredDelivery, inDoubt, organizations, tls: {enabled, caPem, caFile, clientCertPem,
//!   clientCertFile, clientKeyFile, serverName}}` (`organizations`: the ids a system provider
//!   is limited to); the record's own `tps` is the provider's TPS.
//!
//! Unknown keys in `settings` are refused (a typo must not silently fall back to a default);
//! `credentials` may carry more than SMPP needs.

use std::num::NonZeroU32;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Duration;

use sairex_pdu::COctetString;
use sairex_pdu::text::Gsm7Packing;
use sairex_store::model::{ProviderConfig, ProviderKind};

use crate::backoff::ExponentialBackoff;
use crate::provider::InDoubtPolicy;
use crate::provider::smpp::{ConcatenationPolicy, DataCodingPolicy, SmppProviderConfig};
use crate::session::{BindMode, SessionConfig, TlsSettings};

/// Why a provider record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider {provider_id}: {problem}")]
pub struct SettingsError {
    /// The record.
    pub provider_id: u64,
    /// What is wrong, naming the key.
    pub problem: String,
}

/// How the binds of an SMPP provider are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
enum BindModeSetting {
    /// `binds` transceivers.
    #[default]
    #[serde(alias = "trx")]
    Transceiver,
    /// `binds` transmitters and as many receivers.
    #[serde(alias = "transmitter_receiver", alias = "pair")]
    TransmitterReceiver,
    /// `binds` transmitters only (receipts come elsewhere, or not at all).
    Transmitter,
    /// `binds` receivers only (inbound only).
    Receiver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
enum DataCodingSetting {
    #[default]
    Auto,
    Latin1,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
enum PackingSetting {
    #[default]
    Unpacked,
    Packed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
enum ConcatenationSetting {
    #[default]
    Udh8,
    Udh16,
    Sar,
    #[serde(alias = "messagePayload")]
    Payload,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TlsSetting {
    #[serde(default)]
    enabled: bool,
    ca_pem: Option<String>,
    ca_file: Option<String>,
    client_cert_pem: Option<String>,
    client_cert_file: Option<String>,
    client_key_file: Option<String>,
    server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SmppSettings {
    host: Option<String>,
    port: Option<u16>,
    binds: Option<u32>,
    #[serde(default)]
    bind_mode: BindModeSetting,
    window: Option<u32>,
    response_timeout_ms: Option<u64>,
    enquire_link_interval_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    reconnect_min_ms: Option<u64>,
    reconnect_max_ms: Option<u64>,
    addr_ton: Option<u8>,
    addr_npi: Option<u8>,
    address_range: Option<String>,
    source_ton: Option<u8>,
    source_npi: Option<u8>,
    dest_ton: Option<u8>,
    dest_npi: Option<u8>,
    #[serde(default)]
    data_coding: DataCodingSetting,
    #[serde(default)]
    gsm7_packing: PackingSetting,
    #[serde(default)]
    concatenation: ConcatenationSetting,
    registered_delivery: Option<u8>,
    #[serde(default)]
    in_doubt: InDoubtPolicy,
    tls: Option<TlsSetting>,
    /// For a system provider: the organizations it serves (read by routing).
    #[allow(dead_code)]
    organizations: Option<Vec<u64>>,
    /// Set on records made from the config file (read by the binary).
    #[allow(dead_code)]
    from_config: Option<bool>,
    /// The API accepts `tps` in settings and keeps it in the record's own `tps`.
    #[allow(dead_code)]
    tps: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmppTlsCredentials {
    client_key_pem: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmppCredentials {
    host: Option<String>,
    port: Option<u16>,
    #[serde(default)]
    system_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    system_type: String,
    tls: Option<SmppTlsCredentials>,
}

/// Most binds one provider may ask for (each is a TCP connection and a session actor).
pub const MAX_BINDS: u32 = 64;
/// Largest window accepted (outstanding requests per bind).
pub const MAX_WINDOW: u32 = 1_024;

fn parse<T: DeserializeOwned + Default>(
    id: u64,
    what: &str,
    value: &serde_json::Value,
) -> Result<T, SettingsError> {
    if value.is_null() {
        return Ok(T::default());
    }
    T::deserialize(value).map_err(|e| SettingsError {
        provider_id: id,
        problem: format!("{what}: {e}"),
    })
}

/// The SMPP provider configuration a stored record describes.
///
/// # Errors
/// [`SettingsError`] naming the first unusable key: not an SMPP record, a missing host,
/// port or systemId, a credential longer than SMPP allows, a value out of range, an unknown
/// settings key, or TLS material that cannot be read or used.
pub fn smpp_config(record: &ProviderConfig) -> Result<SmppProviderConfig, SettingsError> {
    let id = record.id;
    let bad = |problem: String| SettingsError {
        provider_id: id,
        problem,
    };
    if record.provider_kind != ProviderKind::Smpp {
        return Err(bad(format!(
            "not an SMPP provider ({:?})",
            record.provider_kind
        )));
    }
    let settings: SmppSettings = parse(id, "settings", &record.settings)?;
    let credentials: SmppCredentials = parse(id, "credentials", &record.credentials)?;

    let host = credentials
        .host
        .or(settings.host)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("credentials.host is missing".into()))?;
    let port = credentials
        .port
        .or(settings.port)
        .filter(|&p| p != 0)
        .ok_or_else(|| bad("credentials.port is missing".into()))?;
    if credentials.system_id.is_empty() {
        return Err(bad("credentials.systemId is missing".into()));
    }
    let mut session = SessionConfig::new(host, port);
    session.system_id = c_octet(&credentials.system_id)
        .ok_or_else(|| bad("credentials.systemId is longer than 15 characters".into()))?;
    session.password = c_octet(&credentials.password)
        .ok_or_else(|| bad("credentials.password is longer than 8 characters".into()))?;
    session.system_type = c_octet(&credentials.system_type)
        .ok_or_else(|| bad("credentials.systemType is longer than 12 characters".into()))?;
    if let Some(range) = &settings.address_range {
        session.address_range = c_octet(range)
            .ok_or_else(|| bad("settings.addressRange is longer than 40 characters".into()))?;
    }
    session.addr_ton = settings.addr_ton.unwrap_or(0);
    session.addr_npi = settings.addr_npi.unwrap_or(0);

    let binds = settings.binds.unwrap_or(1);
    if !(1..=MAX_BINDS).contains(&binds) {
        return Err(bad(format!(
            "settings.binds must be 1..={MAX_BINDS}, not {binds}"
        )));
    }
    let window = settings
        .window
        .unwrap_or(crate::session::config::DEFAULT_WINDOW);
    session.window = NonZeroU32::new(window)
        .filter(|w| w.get() <= MAX_WINDOW)
        .ok_or_else(|| {
            bad(format!(
                "settings.window must be 1..={MAX_WINDOW}, not {window}"
            ))
        })?;
    for (key, value, target) in [
        (
            "responseTimeoutMs",
            settings.response_timeout_ms,
            &mut session.response_timeout,
        ),
        (
            "enquireLinkIntervalMs",
            settings.enquire_link_interval_ms,
            &mut session.enquire_link_interval,
        ),
        (
            "connectTimeoutMs",
            settings.connect_timeout_ms,
            &mut session.connect_timeout,
        ),
    ] {
        if let Some(ms) = value {
            if ms == 0 {
                return Err(bad(format!("settings.{key} must be above zero")));
            }
            *target = Duration::from_millis(ms);
        }
    }
    if settings.reconnect_min_ms.is_some() || settings.reconnect_max_ms.is_some() {
        let min = Duration::from_millis(settings.reconnect_min_ms.unwrap_or(500));
        let max = Duration::from_millis(settings.reconnect_max_ms.unwrap_or(60_000));
        session.reconnect = ExponentialBackoff::try_new(min, max)
            .map_err(|e| bad(format!("settings.reconnectMinMs/reconnectMaxMs: {e}")))?;
    }

    let client_key_pem = credentials
        .tls
        .and_then(|t| t.client_key_pem)
        .map(String::into_bytes);
    if let Some(tls) = settings.tls.filter(|t| t.enabled) {
        session.tls = Some(tls_settings(tls, client_key_pem).map_err(bad)?);
    }

    let (bind_mode, receivers) = match settings.bind_mode {
        BindModeSetting::Transceiver => (BindMode::Transceiver, 0),
        BindModeSetting::TransmitterReceiver => (BindMode::Transmitter, binds),
        BindModeSetting::Transmitter => (BindMode::Transmitter, 0),
        BindModeSetting::Receiver => (BindMode::Receiver, 0),
    };
    session.bind_mode = bind_mode;

    let mut config = SmppProviderConfig::new(id, session);
    config.binds = binds;
    config.receivers = receivers;
    config.tps = record.tps;
    config.source_ton = settings.source_ton;
    config.source_npi = settings.source_npi;
    config.dest_ton = settings.dest_ton.unwrap_or(1);
    config.dest_npi = settings.dest_npi.unwrap_or(1);
    config.data_coding = match settings.data_coding {
        DataCodingSetting::Auto => DataCodingPolicy::Auto,
        DataCodingSetting::Latin1 => DataCodingPolicy::Latin1,
        DataCodingSetting::Ucs2 => DataCodingPolicy::Ucs2,
    };
    config.gsm7_packing = match settings.gsm7_packing {
        PackingSetting::Unpacked => Gsm7Packing::Unpacked,
        PackingSetting::Packed => Gsm7Packing::Packed,
    };
    config.concatenation = match settings.concatenation {
        ConcatenationSetting::Udh8 => ConcatenationPolicy::Udh8,
        ConcatenationSetting::Udh16 => ConcatenationPolicy::Udh16,
        ConcatenationSetting::Sar => ConcatenationPolicy::Sar,
        ConcatenationSetting::Payload => ConcatenationPolicy::MessagePayload,
    };
    if let Some(rd) = settings.registered_delivery {
        config.registered_delivery = rd;
    }
    config.in_doubt = settings.in_doubt;
    config
        .validate()
        .map_err(|e| bad(format!("settings: {e}")))?;
    Ok(config)
}

fn c_octet<const N: usize>(s: &str) -> Option<COctetString<N>> {
    COctetString::from_str_checked(s).ok()
}

fn pem(inline: Option<String>, file: Option<String>, key: &str) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(pem), None) => Ok(Some(pem.into_bytes())),
        (None, Some(path)) => std::fs::read(&path)
            .map(Some)
            .map_err(|e| format!("settings.tls.{key}File {path}: {e}")),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(format!(
            "settings.tls: give {key}Pem or {key}File, not both"
        )),
    }
}

fn tls_settings(tls: TlsSetting, client_key_pem: Option<Vec<u8>>) -> Result<TlsSettings, String> {
    let ca_pem = pem(tls.ca_pem, tls.ca_file, "ca")?
        .ok_or_else(|| "settings.tls: caPem or caFile is required with TLS".to_owned())?;
    let client_cert_pem = pem(tls.client_cert_pem, tls.client_cert_file, "clientCert")?;
    let client_key_pem = match (client_key_pem, tls.client_key_file) {
        (Some(pem), None) => Some(pem),
        (None, Some(path)) => Some(
            std::fs::read(&path).map_err(|e| format!("settings.tls.clientKeyFile {path}: {e}"))?,
        ),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(
                "give credentials.tls.clientKeyPem or settings.tls.clientKeyFile, not both".into(),
            );
        }
    };
    Ok(TlsSettings {
        ca_pem,
        client_cert_pem,
        client_key_pem,
        server_name: tls.server_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(settings: serde_json::Value, credentials: serde_json::Value) -> ProviderConfig {
        ProviderConfig {
            id: 7,
            provider_kind: ProviderKind::Smpp,
            settings,
            credentials,
            tps: Some(50),
            ..ProviderConfig::default()
        }
    }

    fn creds() -> serde_json::Value {
        json!({"host": "127.0.0.1", "port": 2775, "systemId": "sairex", "password": "secret", "systemType": "SMPP"})
    }

    #[test]
    fn the_blueprint_shape_with_defaults() {
        let c = smpp_config(&record(serde_json::Value::Null, creds())).expect("valid");
        assert_eq!(c.provider_id, 7);
        assert_eq!(
            (c.session.host.as_str(), c.session.port),
            ("127.0.0.1", 2775)
        );
        assert_eq!(c.session.system_id.as_bytes(), b"sairex");
        assert_eq!(c.session.password.as_bytes(), b"secret");
        assert_eq!(c.session.system_type.as_bytes(), b"SMPP");
        assert_eq!((c.binds, c.receivers), (1, 0));
        assert_eq!(c.session.bind_mode, BindMode::Transceiver);
        assert_eq!(c.session.window.get(), 64);
        assert_eq!(c.tps, Some(50));
        assert_eq!(c.in_doubt, InDoubtPolicy::Resubmit);
        assert!(c.session.tls.is_none());
    }

    #[test]
    fn every_setting_is_applied() {
        let settings = json!({
            "binds": 3, "bindMode": "transmitterReceiver", "window": 10,
            "responseTimeoutMs": 2500, "enquireLinkIntervalMs": 15000, "connectTimeoutMs": 900,
            "reconnectMinMs": 100, "reconnectMaxMs": 5000, "addrTon": 1, "addrNpi": 1,
            "addressRange": "^92", "sourceTon": 5, "sourceNpi": 0, "destTon": 2, "destNpi": 9,
            "dataCoding": "ucs2", "gsm7Packing": "packed", "concatenation": "sar",
            "registeredDelivery": 17, "inDoubt": "fail"
        });
        let c = smpp_config(&record(settings, creds())).expect("valid");
        assert_eq!((c.binds, c.receivers), (3, 3));
        assert_eq!(c.session.bind_mode, BindMode::Transmitter);
        assert_eq!(c.session.window.get(), 10);
        assert_eq!(c.session.response_timeout, Duration::from_millis(2500));
        assert_eq!(c.session.enquire_link_interval, Duration::from_secs(15));
        assert_eq!(c.session.connect_timeout, Duration::from_millis(900));
        assert_eq!(c.session.reconnect.ceiling(0), Duration::from_millis(100));
        assert_eq!(c.session.address_range.as_bytes(), b"^92");
        assert_eq!((c.source_ton, c.source_npi), (Some(5), Some(0)));
        assert_eq!((c.dest_ton, c.dest_npi), (2, 9));
        assert_eq!(c.data_coding, DataCodingPolicy::Ucs2);
        assert_eq!(c.gsm7_packing, Gsm7Packing::Packed);
        assert_eq!(c.concatenation, ConcatenationPolicy::Sar);
        assert_eq!(c.registered_delivery, 17);
        assert_eq!(c.in_doubt, InDoubtPolicy::Fail);
    }

    #[test]
    fn bad_records_name_the_key() {
        let cases = [
            (
                json!({}),
                json!({"port": 1, "systemId": "a"}),
                "credentials.host",
            ),
            (
                json!({}),
                json!({"host": "h", "systemId": "a"}),
                "credentials.port",
            ),
            (
                json!({}),
                json!({"host": "h", "port": 1}),
                "credentials.systemId",
            ),
            (
                json!({}),
                json!({"host": "h", "port": 1, "systemId": "a", "password": "123456789"}),
                "password is longer",
            ),
            (json!({"binds": 0}), creds(), "settings.binds"),
            (json!({"window": 5000}), creds(), "settings.window"),
            (json!({"windw": 5}), creds(), "unknown field `windw`"),
            (
                json!({"bindMode": "both"}),
                creds(),
                "unknown variant `both`",
            ),
            (
                json!({"responseTimeoutMs": 0}),
                creds(),
                "responseTimeoutMs",
            ),
            (
                json!({"tls": {"enabled": true}}),
                creds(),
                "caPem or caFile",
            ),
            (
                json!({"tls": {"enabled": true, "caFile": "/nonexistent/ca.pem"}}),
                creds(),
                "/nonexistent/ca.pem",
            ),
        ];
        for (settings, credentials, expected) in cases {
            let err = smpp_config(&record(settings.clone(), credentials))
                .expect_err(&format!("{settings} must be refused"));
            assert!(
                err.to_string().contains(expected),
                "{settings}: {err} should mention {expected}"
            );
        }
        let twilio = ProviderConfig {
            provider_kind: ProviderKind::Twilio,
            ..record(json!({}), creds())
        };
        assert!(smpp_config(&twilio).is_err());
    }

    #[test]
    fn an_error_never_shows_the_password() {
        let err = smpp_config(&record(
            json!({"windw": 1}),
            json!({"host": "h", "port": 1, "systemId": "a", "password": "hunter2"}),
        ))
        .expect_err("unknown key");
        assert!(!err.to_string().contains("hunter2"));
    }
}
