//! A stored HTTP provider record (`twilio`, `vonage`, `veevo`) turned into what the provider
//! task needs ([`http_config`]) and what the API's callbacks need ([`callback_config`]).
//! `docs/providers.md` lists every key with its default.
//!
//! `credentials` (secret, encrypted at rest; camelCase, the config file's snake_case also
//! taken):
//! - Twilio `{accountSid, authToken, messagingServiceSid?, fromNumber?}`
//! - Vonage `{apiKey, apiSecret?, signatureSecret?, fromNumber?}` (one of the two secrets)
//! - Veevo `{hash (or apikey), senderId?, callbackSecret?}`
//!
//! `settings` (camelCase; unknown keys are refused so a typo is not a silent default):
//! `baseUrl, from, concurrency, requestTimeoutMs, connectTimeoutMs, healthIntervalMs, inDoubt,
//! callbackBaseUrl, validityPeriod, signatureMethod, autoReply, allowUnsignedCallbacks,
//! callbackAllowIps, sendPath, format, keyParam, toParam, fromParam, textParam, toPlus,
//! balancePath, balanceField, dlrIdParam, dlrStatusParam, dlrErrorParam, inboundFromParam,
//! inboundToParam, inboundTextParam, inboundIdParam, organizations, fromConfig`.

use serde::Deserialize;
use tokio::time::Duration;

use sairex_store::model::{ProviderConfig, ProviderKind};

use super::signature::VonageSignatureMethod;
use super::twilio::TwilioApi;
use super::veevo::{VeevoApi, VeevoFormat};
use super::vonage::VonageApi;
use super::{HttpApi, HttpProviderConfig, Secret};
use crate::provider::InDoubtPolicy;
use crate::provider::settings::SettingsError;

/// Default requests in flight per provider.
pub const DEFAULT_CONCURRENCY: u32 = 16;
/// Most requests in flight one provider may ask for.
pub const MAX_CONCURRENCY: u32 = 1_024;
/// Default whole-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Default connection set-up timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval of balance checks.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HttpSettings {
    base_url: Option<String>,
    #[serde(alias = "senderId", alias = "fromNumber")]
    from: Option<String>,
    concurrency: Option<u32>,
    request_timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    health_interval_ms: Option<u64>,
    #[serde(default)]
    in_doubt: InDoubtPolicy,
    callback_base_url: Option<String>,
    validity_period: Option<u32>,
    #[serde(default)]
    signature_method: VonageSignatureMethod,
    auto_reply: Option<String>,
    #[serde(default)]
    allow_unsigned_callbacks: bool,
    #[serde(default)]
    callback_allow_ips: Vec<String>,
    send_path: Option<String>,
    format: Option<VeevoFormat>,
    key_param: Option<String>,
    to_param: Option<String>,
    from_param: Option<String>,
    text_param: Option<String>,
    to_plus: Option<bool>,
    balance_path: Option<String>,
    balance_field: Option<String>,
    dlr_id_param: Option<String>,
    dlr_status_param: Option<String>,
    dlr_error_param: Option<String>,
    inbound_from_param: Option<String>,
    inbound_to_param: Option<String>,
    inbound_text_param: Option<String>,
    inbound_id_param: Option<String>,
    /// For a system provider: the organizations it serves (read by routing).
    #[allow(dead_code)]
    organizations: Option<Vec<u64>>,
    /// Set on records made from the config file (read by the binary).
    #[allow(dead_code)]
    from_config: Option<bool>,
}

/// Every credential of the three APIs; each takes what it needs.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    #[serde(alias = "account_sid")]
    account_sid: Option<String>,
    #[serde(alias = "auth_token")]
    auth_token: Option<String>,
    #[serde(alias = "messaging_service_sid")]
    messaging_service_sid: Option<String>,
    #[serde(alias = "from_number", alias = "from")]
    from_number: Option<String>,
    #[serde(alias = "api_key")]
    api_key: Option<String>,
    #[serde(alias = "api_secret")]
    api_secret: Option<String>,
    #[serde(alias = "signature_secret")]
    signature_secret: Option<String>,
    #[serde(alias = "apikey")]
    hash: Option<String>,
    #[serde(alias = "sender_id")]
    sender_id: Option<String>,
    #[serde(alias = "callback_secret")]
    callback_secret: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned + Default>(
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

/// Credentials as parsed: a serde error would quote the value, so none is shown.
fn credentials(record: &ProviderConfig) -> Result<Credentials, SettingsError> {
    if record.credentials.is_null() {
        return Ok(Credentials::default());
    }
    Credentials::deserialize(&record.credentials).map_err(|_| SettingsError {
        provider_id: record.id,
        problem: "credentials: not an object of strings".into(),
    })
}

fn nonempty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn url(value: Option<String>, key: &str, id: u64) -> Result<Option<String>, SettingsError> {
    match nonempty(value) {
        None => Ok(None),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Ok(Some(u.trim_end_matches('/').to_owned()))
        }
        Some(_) => Err(SettingsError {
            provider_id: id,
            problem: format!("settings.{key} must be an http:// or https:// URL"),
        }),
    }
}

/// The HTTP provider configuration a stored record describes. `public_base_url` is the
/// gateway's (`server.public_base_url`), used for receipt callbacks unless the record's
/// `callbackBaseUrl` says otherwise.
///
/// # Errors
/// [`SettingsError`] naming the first unusable key: not an HTTP kind, a missing credential,
/// a value out of range, an unknown settings key. Errors never contain a credential.
pub fn http_config(
    record: &ProviderConfig,
    public_base_url: Option<&str>,
) -> Result<HttpProviderConfig, SettingsError> {
    let id = record.id;
    let bad = |problem: String| SettingsError {
        provider_id: id,
        problem,
    };
    let settings: HttpSettings = parse(id, "settings", &record.settings)?;
    let creds = credentials(record)?;
    let from = nonempty(settings.from.clone());
    let (api, default_base) = match record.provider_kind {
        ProviderKind::Smpp => {
            return Err(bad("an SMPP provider is not an HTTP provider".into()));
        }
        ProviderKind::Twilio => {
            let account_sid = nonempty(creds.account_sid)
                .ok_or_else(|| bad("credentials.accountSid is missing".into()))?;
            let auth_token = nonempty(creds.auth_token)
                .ok_or_else(|| bad("credentials.authToken is missing".into()))?;
            if let Some(v) = settings.validity_period
                && !(1..=36_000).contains(&v)
            {
                return Err(bad(format!(
                    "settings.validityPeriod must be 1..=36000 seconds, not {v}"
                )));
            }
            (
                HttpApi::Twilio(TwilioApi {
                    account_sid,
                    auth_token: Secret::new(auth_token),
                    messaging_service_sid: nonempty(creds.messaging_service_sid),
                    from: from.or(nonempty(creds.from_number)),
                    validity_period: settings.validity_period,
                }),
                super::twilio::DEFAULT_BASE_URL,
            )
        }
        ProviderKind::Vonage => {
            let api_key = nonempty(creds.api_key)
                .ok_or_else(|| bad("credentials.apiKey is missing".into()))?;
            let api_secret = nonempty(creds.api_secret).unwrap_or_default();
            let signature_secret = nonempty(creds.signature_secret).unwrap_or_default();
            if api_secret.is_empty() && signature_secret.is_empty() {
                return Err(bad(
                    "credentials.apiSecret or credentials.signatureSecret is required".into(),
                ));
            }
            (
                HttpApi::Vonage(VonageApi {
                    api_key,
                    api_secret: Secret::new(api_secret),
                    signature_secret: Secret::new(signature_secret),
                    signature_method: settings.signature_method,
                    from: from.or(nonempty(creds.from_number)),
                }),
                super::vonage::DEFAULT_BASE_URL,
            )
        }
        ProviderKind::Veevo => {
            let hash =
                nonempty(creds.hash).ok_or_else(|| bad("credentials.hash is missing".into()))?;
            let mut api = VeevoApi::new(Secret::new(hash));
            if let Some(f) = from.or(nonempty(creds.sender_id)) {
                api.from = f;
            }
            for (key, value, target) in [
                ("keyParam", settings.key_param, &mut api.key_param),
                ("toParam", settings.to_param, &mut api.to_param),
                ("fromParam", settings.from_param, &mut api.from_param),
                ("textParam", settings.text_param, &mut api.text_param),
                (
                    "balanceField",
                    settings.balance_field,
                    &mut api.balance_field,
                ),
            ] {
                if let Some(v) = value {
                    *target = nonempty(Some(v))
                        .ok_or_else(|| bad(format!("settings.{key} must not be empty")))?;
                }
            }
            if let Some(path) = settings.send_path {
                api.send_path = path_setting(&path, "sendPath").map_err(&bad)?;
            }
            if let Some(path) = settings.balance_path {
                api.balance_path = Some(path_setting(&path, "balancePath").map_err(&bad)?);
            }
            if let Some(format) = settings.format {
                api.format = format;
            }
            if let Some(plus) = settings.to_plus {
                api.to_plus = plus;
            }
            (HttpApi::Veevo(api), super::veevo::DEFAULT_BASE_URL)
        }
    };
    let concurrency = settings.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(bad(format!(
            "settings.concurrency must be 1..={MAX_CONCURRENCY}, not {concurrency}"
        )));
    }
    if record.tps == Some(0) {
        return Err(bad(
            "tps must be above zero (leave it out for no limit)".into()
        ));
    }
    let ms = |key: &str, value: Option<u64>, default: Duration| match value {
        Some(0) => Err(bad(format!("settings.{key} must be above zero"))),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Ok(default),
    };
    let request_timeout = ms(
        "requestTimeoutMs",
        settings.request_timeout_ms,
        DEFAULT_REQUEST_TIMEOUT,
    )?;
    let connect_timeout = ms(
        "connectTimeoutMs",
        settings.connect_timeout_ms,
        DEFAULT_CONNECT_TIMEOUT,
    )?;
    let health_interval = match settings.health_interval_ms {
        Some(0) => None,
        Some(ms) => Some(Duration::from_millis(ms)),
        None => Some(DEFAULT_HEALTH_INTERVAL),
    };
    let base_url = url(settings.base_url, "baseUrl", id)?.unwrap_or_else(|| default_base.into());
    let callback_base = match url(settings.callback_base_url, "callbackBaseUrl", id)? {
        Some(u) => Some(u),
        None => public_base_url.map(|u| u.trim_end_matches('/').to_owned()),
    };
    Ok(HttpProviderConfig {
        provider_id: id,
        api,
        base_url,
        concurrency,
        tps: record.tps,
        request_timeout,
        connect_timeout,
        health_interval,
        in_doubt: settings.in_doubt,
        callback_base,
    })
}

fn path_setting(path: &str, key: &str) -> Result<String, String> {
    let path = path.trim();
    if path.starts_with('/') && !path.contains(['?', '#', ' ']) {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "settings.{key} must be a path starting with / (no query)"
        ))
    }
}

/// How the API authenticates a provider's callbacks.
#[derive(Debug, Clone)]
pub enum CallbackAuth {
    /// Twilio: `X-Twilio-Signature` with the auth token.
    Twilio {
        /// `AC…`, matched against the callback's `AccountSid`.
        account_sid: String,
        /// The signing key.
        auth_token: Secret,
    },
    /// Vonage: the `sig` parameter, with the signature secret and method.
    Vonage {
        /// Matched against the callback's `api-key`.
        api_key: String,
        /// The signing key (empty when the account has none).
        signature_secret: Secret,
        /// The method.
        method: VonageSignatureMethod,
    },
    /// Veevo: a shared secret (`token` query parameter or `X-Callback-Token` header) and/or
    /// an IP allow-list.
    Veevo {
        /// The shared secret (empty when none).
        callback_secret: Secret,
    },
}

/// Parameter names of Veevo's callbacks (their docs do not fix them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeevoCallbackFields {
    /// Receipt: the message id (`MESSAGE_ID`).
    pub dlr_id: String,
    /// Receipt: the state (`DELIVERY_STATUS`: `DELIVRD`, `UNDELIV`, …).
    pub dlr_status: String,
    /// Receipt: the error code (`ERROR_CODE`).
    pub dlr_error: String,
    /// Inbound: the sender (`from`).
    pub inbound_from: String,
    /// Inbound: the number it was sent to (`to`).
    pub inbound_to: String,
    /// Inbound: the text (`text`).
    pub inbound_text: String,
    /// Inbound: Veevo's id of it (`id`).
    pub inbound_id: String,
}

/// What the API needs to take a provider's callbacks.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// The record's id.
    pub provider_id: u64,
    /// Its organization (0: a system provider).
    pub organization_id: u64,
    /// How callbacks are authenticated.
    pub auth: CallbackAuth,
    /// Accept callbacks without a valid signature (only for providers that cannot sign;
    /// off by default).
    pub allow_unsigned: bool,
    /// Source addresses allowed to call (empty: any).
    pub allow_ips: Vec<std::net::IpAddr>,
    /// Its numbers (the sender setting and the registered sender IDs), to tell apart two
    /// records of one account by the callback's `To`.
    pub numbers: Vec<String>,
    /// A TwiML `<Message>` answered to each inbound message (Twilio).
    pub auto_reply: Option<String>,
    /// Veevo's callback parameter names.
    pub veevo_fields: VeevoCallbackFields,
}

/// The callback configuration of an HTTP provider record.
///
/// # Errors
/// [`SettingsError`] as [`http_config`], or an unreadable address in `callbackAllowIps`.
pub fn callback_config(record: &ProviderConfig) -> Result<CallbackConfig, SettingsError> {
    let id = record.id;
    let bad = |problem: String| SettingsError {
        provider_id: id,
        problem,
    };
    let settings: HttpSettings = parse(id, "settings", &record.settings)?;
    let creds = credentials(record)?;
    let auth = match record.provider_kind {
        ProviderKind::Smpp => return Err(bad("an SMPP provider has no HTTP callbacks".into())),
        ProviderKind::Twilio => CallbackAuth::Twilio {
            account_sid: nonempty(creds.account_sid)
                .ok_or_else(|| bad("credentials.accountSid is missing".into()))?,
            auth_token: Secret::new(
                nonempty(creds.auth_token)
                    .ok_or_else(|| bad("credentials.authToken is missing".into()))?,
            ),
        },
        ProviderKind::Vonage => CallbackAuth::Vonage {
            api_key: nonempty(creds.api_key)
                .ok_or_else(|| bad("credentials.apiKey is missing".into()))?,
            signature_secret: Secret::new(nonempty(creds.signature_secret).unwrap_or_default()),
            method: settings.signature_method,
        },
        ProviderKind::Veevo => CallbackAuth::Veevo {
            callback_secret: Secret::new(nonempty(creds.callback_secret).unwrap_or_default()),
        },
    };
    let mut allow_ips = Vec::new();
    for ip in &settings.callback_allow_ips {
        allow_ips.push(
            ip.trim()
                .parse()
                .map_err(|_| bad(format!("settings.callbackAllowIps: {ip:?} is not an IP")))?,
        );
    }
    let mut numbers: Vec<String> = record.registered_sender_ids.clone();
    numbers.extend(nonempty(settings.from));
    numbers.extend(nonempty(creds.from_number));
    numbers.extend(nonempty(creds.sender_id));
    let name = |v: Option<String>, default: &str| nonempty(v).unwrap_or_else(|| default.into());
    Ok(CallbackConfig {
        provider_id: id,
        organization_id: record.organization_id,
        auth,
        allow_unsigned: settings.allow_unsigned_callbacks,
        allow_ips,
        numbers,
        auto_reply: nonempty(settings.auto_reply),
        veevo_fields: VeevoCallbackFields {
            dlr_id: name(settings.dlr_id_param, "MESSAGE_ID"),
            dlr_status: name(settings.dlr_status_param, "DELIVERY_STATUS"),
            dlr_error: name(settings.dlr_error_param, "ERROR_CODE"),
            inbound_from: name(settings.inbound_from_param, "from"),
            inbound_to: name(settings.inbound_to_param, "to"),
            inbound_text: name(settings.inbound_text_param, "text"),
            inbound_id: name(settings.inbound_id_param, "id"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(
        kind: ProviderKind,
        settings: serde_json::Value,
        credentials: serde_json::Value,
    ) -> ProviderConfig {
        ProviderConfig {
            id: 9,
            provider_kind: kind,
            settings,
            credentials,
            tps: Some(20),
            ..ProviderConfig::default()
        }
    }

    #[test]
    fn twilio_with_defaults_and_the_config_files_spelling() {
        let c = http_config(
            &record(
                ProviderKind::Twilio,
                json!({}),
                json!({"account_sid": "AC1", "auth_token": "s3cr3t-value"}),
            ),
            Some("https://sms.example.com/"),
        )
        .expect("valid");
        assert_eq!(c.base_url, "https://api.twilio.com");
        assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(c.tps, Some(20));
        assert_eq!(
            c.receipt_callback().as_deref(),
            Some("https://sms.example.com/api/sms/dlr?provider=twilio&providerId=9")
        );
        let HttpApi::Twilio(t) = &c.api else {
            panic!("twilio")
        };
        assert_eq!(t.account_sid, "AC1");
        assert!(!format!("{c:?}").contains("s3cr3t"), "token printed");
    }

    #[test]
    fn bad_records_name_the_key_and_hide_secrets() {
        let cases = [
            (
                ProviderKind::Twilio,
                json!({}),
                json!({"authToken": "s3cret"}),
                "accountSid",
            ),
            (
                ProviderKind::Vonage,
                json!({}),
                json!({"apiKey": "k"}),
                "apiSecret or",
            ),
            (
                ProviderKind::Veevo,
                json!({}),
                json!({}),
                "credentials.hash",
            ),
            (
                ProviderKind::Veevo,
                json!({"concurency": 3}),
                json!({"hash": "h"}),
                "concurency",
            ),
            (
                ProviderKind::Veevo,
                json!({"concurrency": 0}),
                json!({"hash": "h"}),
                "concurrency",
            ),
            (
                ProviderKind::Veevo,
                json!({"baseUrl": "ftp://x"}),
                json!({"hash": "h"}),
                "baseUrl",
            ),
            (
                ProviderKind::Veevo,
                json!({"sendPath": "v3"}),
                json!({"hash": "h"}),
                "sendPath",
            ),
            (ProviderKind::Smpp, json!({}), json!({}), "SMPP"),
        ];
        for (kind, settings, credentials, expected) in cases {
            let err = http_config(&record(kind, settings.clone(), credentials), None)
                .expect_err(&format!("{settings} must be refused"));
            let text = err.to_string();
            assert!(text.contains(expected), "{text} should mention {expected}");
            assert!(!text.contains("s3cret"));
        }
    }

    #[test]
    fn veevo_shape_is_configurable() {
        let c = http_config(
            &record(
                ProviderKind::Veevo,
                json!({"baseUrl": "http://127.0.0.1:9", "format": "form", "keyParam": "apikey",
                       "toPlus": false, "sendPath": "/v2/send", "balancePath": "/v3/balance",
                       "healthIntervalMs": 0}),
                json!({"apikey": "h", "senderId": "SAIREX"}),
            ),
            None,
        )
        .expect("valid");
        let HttpApi::Veevo(v) = &c.api else {
            panic!("veevo")
        };
        assert_eq!(v.key_param, "apikey");
        assert_eq!(v.format, VeevoFormat::Form);
        assert!(!v.to_plus);
        assert_eq!(v.send_path, "/v2/send");
        assert_eq!(v.from, "SAIREX");
        assert_eq!(c.health_interval, None);
        assert_eq!(c.receipt_callback(), None);
    }

    #[test]
    fn callback_config_reads_auth_and_fields() {
        let c = callback_config(&record(
            ProviderKind::Vonage,
            json!({"signatureMethod": "sha256", "from": "SAIREX"}),
            json!({"apiKey": "abc", "apiSecret": "x", "signatureSecret": "sig"}),
        ))
        .expect("valid");
        match c.auth {
            CallbackAuth::Vonage {
                api_key, method, ..
            } => {
                assert_eq!(api_key, "abc");
                assert_eq!(method, VonageSignatureMethod::Sha256);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.numbers, vec!["SAIREX".to_owned()]);
        let bad = callback_config(&record(
            ProviderKind::Veevo,
            json!({"callbackAllowIps": ["nope"]}),
            json!({"hash": "h"}),
        ));
        assert!(bad.is_err());
    }
}
