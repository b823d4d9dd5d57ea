//! The validated configuration. Every value here has passed validation: other crates take it
//! as it is, without checking again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::{MasterKey, Secret};

/// The whole configuration (`sairex.toml`).
///
/// [`Config::default`] is a working demo configuration: HTTP on `127.0.0.1:8080`, the store in
/// `./sairex-data` with batch sync, no providers (the demo adds its own), no admin token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[server]`: the HTTP listeners.
    pub server: ServerConfig,
    /// `[store]`: the durable store.
    pub store: StoreConfig,
    /// `[admin]`: the superadmin token.
    pub admin: AdminConfig,
    /// `[limits]`: global rate limits and queue bound.
    pub limits: LimitsConfig,
    /// `[engine]`: dispatcher settings.
    pub engine: EngineConfig,
    /// `[webhooks]`: outbound webhook delivery.
    pub webhooks: WebhooksConfig,
    /// `[[providers]]`: system-level providers (organization 0), names unique.
    pub providers: Vec<ProviderConfig>,
    /// `[[inbound_routes]]`: number or short code → organization, numbers unique.
    pub inbound_routes: Vec<InboundRoute>,
    /// `[smpp_server]`: customers binding to Sairex over SMPP; off unless a listener is set.
    pub smpp_server: SmppServerConfig,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address of the public API and admin JSON (`listen`).
    pub listen: SocketAddr,
    /// Address of `/metrics` (`metrics_listen`); `None` serves no metrics listener. Never
    /// equal to `listen` (unless both use port 0).
    pub metrics_listen: Option<SocketAddr>,
    /// Largest request body in bytes (`body_limit`), 1 KiB..=64 MiB.
    pub body_limit: u64,
    /// The externally visible base URL (`public_base_url`, no trailing slash), for signature
    /// checks of provider callbacks behind a proxy; `None` derives it from the request.
    pub public_base_url: Option<String>,
    /// How long a graceful shutdown may take in total (`shutdown_grace`), at least
    /// [`EngineConfig::shutdown_grace`].
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            metrics_listen: None,
            body_limit: 1024 * 1024,
            public_base_url: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Durability of acknowledged writes (`[store] sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncMode {
    /// `"always"`: flush before each acknowledgement.
    Always,
    /// `"batch"`: group commit; acknowledged after the flush of its group.
    #[default]
    Batch,
    /// `"none"`: acknowledged before any flush (tests and benchmarks only).
    None,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Directory of the store (`path`).
    pub path: PathBuf,
    /// `sync`.
    pub sync: SyncMode,
    /// Block cache in MiB (`cache_mb`), 8..=65536.
    pub cache_mb: u64,
    /// In-memory write buffers (memtables) of all keyspaces together, in MiB
    /// (`write_buffer_mb`), 8..=65536.
    pub write_buffer_mb: u64,
    /// Where the master key is read from (`master_key_file`), if anywhere.
    pub master_key_file: Option<PathBuf>,
    /// The master key: from `SAIREX_MASTER_KEY` when set (it wins over the file), else read
    /// from `master_key_file` by [`crate::load`]. [`crate::parse`] reads no file, so after it
    /// only the environment's key is here.
    pub master_key: Option<MasterKey>,
    /// Days a message is kept (`retention_days`), 1..=36500.
    pub retention_days: u32,
    /// How long the event outbox keeps an entry once every webhook is past it
    /// (`outbox_retention`), 1 hour..=365 days: how long a webhook receiver may be down and
    /// still get its backlog, and how far back the event stream resumes.
    pub outbox_retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./sairex-data"),
            sync: SyncMode::Batch,
            cache_mb: 64,
            write_buffer_mb: 64,
            master_key_file: None,
            master_key: None,
            retention_days: 365,
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminConfig {
    /// The superadmin token (`token`, or `SAIREX_ADMIN_TOKEN`, which wins), at least 16
    /// characters. Always `Some` after [`crate::parse`] / [`crate::load`] (a missing token is
    /// a problem); `None` only in [`Config::default`], for the demo to fill in.
    pub token: Option<Secret>,
}

/// `[limits]`. A limit of 0 or absent means unlimited (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Messages per second over all providers (`global_tps`).
    pub global_tps: Option<NonZeroU32>,
    /// Messages per minute per organization (`org_per_minute`).
    pub org_per_minute: Option<NonZeroU32>,
    /// Messages per day per organization (`org_per_day`).
    pub org_per_day: Option<NonZeroU32>,
    /// Queued messages above which sends get 503 (`max_queue_depth`), at least 1.
    pub max_queue_depth: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            global_tps: None,
            org_per_minute: None,
            org_per_day: None,
            max_queue_depth: 1_000_000,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Whether to ask providers for delivery receipts (`request_receipts`).
    pub request_receipts: bool,
    /// How often the dispatcher looks for ready messages (`poll_interval`), 1ms..=10s.
    pub poll_interval: Duration,
    /// How long the engine's drain may take (`shutdown_grace`).
    pub shutdown_grace: Duration,
    /// How long after the end of its validity (48 h from submission when it has none) a
    /// message SUBMITTED with no receipt becomes EXPIRED with a RECEIPT_TIMEOUT event
    /// (`receipt_grace`), 1 min..=30 days.
    pub receipt_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            request_receipts: true,
            poll_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(10),
            receipt_grace: Duration::from_secs(3_600),
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// Whether webhook and callback URLs may resolve to private, loopback or link-local
    /// addresses (`allow_private_targets`; off: SSRF protection).
    pub allow_private_targets: bool,
    /// Timeout of one delivery attempt (`timeout`).
    pub timeout: Duration,
    /// Attempts per delivery (`max_attempts`), 1..=50.
    pub max_attempts: u32,
    /// Consecutive failures after which a webhook is disabled (`disable_after_failures`).
    pub disable_after_failures: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            disable_after_failures: 50,
        }
    }
}

/// A provider's kind (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `"smpp"`: an SMPP 3.4 SMSC or GSM gateway.
    Smpp,
    /// `"twilio"`.
    Twilio,
    /// `"vonage"`.
    Vonage,
    /// `"veevo"`: Veevo Tech.
    Veevo,
}

impl ProviderKind {
    /// The word used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smpp => "smpp",
            Self::Twilio => "twilio",
            Self::Vonage => "vonage",
            Self::Veevo => "veevo",
        }
    }

    /// The credentials an HTTP provider of this kind must have (none for SMPP).
    pub fn required_credentials(self) -> &'static [&'static str] {
        match self {
            Self::Smpp => &[],
            Self::Twilio => &["account_sid", "auth_token"],
            Self::Vonage => &["api_key", "api_secret"],
            Self::Veevo => &["hash"],
        }
    }
}

/// An organization named in the file: integers are ids, strings are names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrgRef {
    /// An organization id (at least 1; 0 is the system).
    Id(u64),
    /// An organization name (not empty).
    Name(String),
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Unique name (`name`), 1..=64 characters.
    pub name: String,
    /// `kind`.
    pub kind: ProviderKind,
    /// Failover order (`priority`): lower is tried first, 0..=65535.
    pub priority: u32,
    /// Whether it is used (`active`).
    pub active: bool,
    /// The organizations it serves (`organizations`); empty serves all.
    pub organizations: Vec<OrgRef>,
    /// Its own submit rate limit (`tps`; 0 or absent: none).
    pub tps: Option<NonZeroU32>,
    /// Cost of one part in millionths of the currency unit (`cost_per_segment = "0.50"`
    /// gives 500000).
    pub cost_per_segment: Option<i64>,
    /// How to reach it: `[providers.smpp]` or `[providers.http]`, matching `kind`.
    pub connection: ProviderConnection,
}

/// How a provider is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConnection {
    /// `kind = "smpp"`: `[providers.smpp]`.
    Smpp(Box<SmppConfig>),
    /// `kind = "twilio" | "vonage" | "veevo"`: `[providers.http]`.
    Http(HttpConfig),
}

/// Which binds a connection asks for (`bind_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BindMode {
    /// `"transceiver"`: one connection submits and receives.
    #[default]
    Transceiver,
    /// `"transmitter_receiver"`: a transmitter and a receiver connection per bind.
    TransmitterReceiver,
    /// `"transmitter"`: submit only (no receipts over SMPP).
    Transmitter,
    /// `"receiver"`: receive only (receipts and inbound messages).
    Receiver,
}

/// Alphabet choice (`data_coding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataCoding {
    /// `"auto"`: GSM 7-bit when every character fits, else UCS-2.
    #[default]
    Auto,
    /// `"gsm7"`: the same as auto (GSM 7-bit, UCS-2 for what does not fit); spelled out for
    /// operators who want to say so.
    Gsm7,
    /// `"ucs2"`: always UCS-2.
    Ucs2,
    /// `"latin1"`: Latin-1 when every character fits, else UCS-2.
    Latin1,
}

/// GSM 7-bit packing (`gsm7_packing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gsm7Packing {
    /// `"unpacked"`: one septet per octet, the SMPP norm.
    #[default]
    Unpacked,
    /// `"packed"`: for SMSCs that expect packed septets.
    Packed,
}

/// How long messages are split (`concatenation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Concatenation {
    /// `"udh8"`: UDH with an 8-bit reference.
    #[default]
    Udh8,
    /// `"udh16"`: UDH with a 16-bit reference.
    Udh16,
    /// `"sar"`: `sar_*` TLVs.
    Sar,
    /// `"payload"`: one `message_payload` TLV; the SMSC splits.
    Payload,
}

/// What to do with a submit whose outcome is unknown (`in_doubt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InDoubt {
    /// `"resubmit"`: send it again (a possible duplicate).
    #[default]
    Resubmit,
    /// `"fail"`: fail it (a possible loss).
    Fail,
}

/// `[providers.smpp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmppConfig {
    /// SMSC host name or address (`host`), not empty.
    pub host: String,
    /// SMSC port (`port`), 1..=65535.
    pub port: u16,
    /// `system_id`, 1..=15 ASCII characters (SMPP 3.4 §4.1.1).
    pub system_id: String,
    /// `password`, at most 8 ASCII characters (SMPP 3.4 §4.1.1).
    pub password: Secret,
    /// `system_type`, at most 12 ASCII characters.
    pub system_type: String,
    /// `bind_mode`.
    pub bind_mode: BindMode,
    /// Binds kept open (`binds`), 1..=64.
    pub binds: u32,
    /// Outstanding requests per bind (`window`), 1..=1024.
    pub window: u32,
    /// How long a request waits for its response (`response_timeout`).
    pub response_timeout: Duration,
    /// Idle time before an enquire_link (`enquire_link_interval`).
    pub enquire_link_interval: Duration,
    /// First reconnect delay (`reconnect_min`), at most `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnect delay (`reconnect_max`).
    pub reconnect_max: Duration,
    /// `source_addr_ton` (0..=6); `None` derives it from the sender.
    pub source_ton: Option<u8>,
    /// `source_addr_npi` (an SMPP 3.4 NPI value); `None` derives it from the sender.
    pub source_npi: Option<u8>,
    /// `dest_addr_ton` (0..=6).
    pub dest_ton: u8,
    /// `dest_addr_npi`.
    pub dest_npi: u8,
    /// `data_coding`.
    pub data_coding: DataCoding,
    /// `gsm7_packing`.
    pub gsm7_packing: Gsm7Packing,
    /// `concatenation`.
    pub concatenation: Concatenation,
    /// `registered_delivery` of messages that ask for a receipt, 0..=31.
    pub registered_delivery: u8,
    /// `in_doubt`.
    pub in_doubt: InDoubt,
    /// `tls`, when `enabled = true`; `None` for plain TCP.
    pub tls: Option<TlsConfig>,
}

/// `[providers.smpp.tls]` with `enabled = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA(s) the SMSC's certificate must chain to (`ca_file`, required).
    pub ca_file: PathBuf,
    /// PEM client certificate chain for mutual TLS (`client_cert_file`), with its key.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (`client_key_file`), with the certificate.
    pub client_key_file: Option<PathBuf>,
    /// Name checked against the certificate and sent as SNI (`server_name`); `None` uses the
    /// host.
    pub server_name: Option<String>,
}

/// `[providers.http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// API base URL (`base_url`, no trailing slash); `None` uses the provider's public API.
    pub base_url: Option<String>,
    /// `credentials`: name → value, with at least the kind's
    /// [`ProviderKind::required_credentials`]. All values are treated as secrets.
    pub credentials: Vec<(String, Secret)>,
}

impl HttpConfig {
    /// A credential by name.
    pub fn credential(&self, name: &str) -> Option<&Secret> {
        self.credentials
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

/// One `[[inbound_routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRoute {
    /// Destination number or short code (`number`): digits with an optional leading `+`.
    pub number: String,
    /// Where its inbound messages go (`organization`).
    pub organization: OrgRef,
}

/// `[smpp_server]`: the SMPP 3.4 server customers bind to (docs/smpp-server.md). Off unless
/// `listen` or `tls_listen` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmppServerConfig {
    /// Plain TCP listener (`listen`, e.g. `"0.0.0.0:2775"`).
    pub listen: Option<SocketAddr>,
    /// TLS listener (`tls_listen`), with [`SmppServerConfig::tls`].
    pub tls_listen: Option<SocketAddr>,
    /// Certificate chain and key of the TLS listener (`tls_cert_file`, `tls_key_file`).
    pub tls: Option<ServerTlsFiles>,
    /// Our `system_id` in bind responses (`system_id`), at most 15 characters.
    pub system_id: String,
    /// A bound session that receives nothing for this long is unbound (`idle_timeout`).
    pub idle_timeout: Duration,
    /// How often we send enquire_link to a quiet customer (`enquire_link_interval`).
    pub enquire_link_interval: Duration,
    /// How long a bind may take after connect (`bind_timeout`).
    pub bind_timeout: Duration,
    /// How long we wait for a deliver_sm_resp before the receipt goes back to the queue
    /// (`response_timeout`).
    pub response_timeout: Duration,
    /// Receipts and MO owed to a customer older than this are dropped (`receipt_max_age`,
    /// default 72 h).
    pub receipt_max_age: Duration,
    /// Largest `command_length` accepted (`max_command_length`); a larger frame closes the
    /// connection.
    pub max_command_length: u32,
    /// Wrong passwords in a row, per system_id and per source IP, that lock binds out
    /// (`lockout_after`).
    pub lockout_after: u32,
    /// How long a lock-out lasts (`lockout_duration`).
    pub lockout_duration: Duration,
    /// Most open connections (`max_connections`).
    pub max_connections: u32,
}

impl SmppServerConfig {
    /// Whether any listener is configured.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.tls_listen.is_some()
    }
}

impl Default for SmppServerConfig {
    fn default() -> Self {
        Self {
            listen: None,
            tls_listen: None,
            tls: None,
            system_id: "Sairex".to_owned(),
            idle_timeout: Duration::from_secs(300),
            enquire_link_interval: Duration::from_secs(30),
            bind_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
            receipt_max_age: Duration::from_secs(72 * 3600),
            max_command_length: 64 * 1024,
            lockout_after: 5,
            lockout_duration: Duration::from_secs(300),
            max_connections: 1000,
        }
    }
}

/// A TLS server's PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// Certificate chain, leaf first (`tls_cert_file`).
    pub cert_file: PathBuf,
    /// Private key (`tls_key_file`).
    pub key_file: PathBuf,
}
