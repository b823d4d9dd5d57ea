//! [`SessionConfig`]: everything one SMPP bind to a carrier needs, already validated where the
//! types allow it (the credential fields are the PDU's own bounded strings, so a config that
//! exists can always be encoded into a bind).

use std::fmt;
use std::io::BufReader;
use std::num::NonZeroU32;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sairex_pdu::{Bind, COctetString, DEFAULT_MAX_COMMAND_LENGTH};
use tokio::time::Duration;
use tokio_rustls::TlsConnector;

use crate::backoff::ExponentialBackoff;

/// Default window: outstanding requests per bind (issue 4).
pub const DEFAULT_WINDOW: u32 = 64;
/// Default time a request may wait for its response before it is given up (submit: in doubt;
/// bind, enquire_link, unbind: the connection is considered dead).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default idle time after which an enquire_link is sent.
pub const DEFAULT_ENQUIRE_LINK_INTERVAL: Duration = Duration::from_secs(30);
/// Default bound on TCP connect plus TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a drain waits for outstanding responses before it unbinds anyway.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(10);
/// SMPP 3.4 `interface_version`.
pub const INTERFACE_VERSION_34: u8 = 0x34;

/// Which bind to ask for (SMPP 3.4 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BindMode {
    /// bind_transceiver: submit and receive on one connection.
    #[default]
    Transceiver,
    /// bind_transmitter: submit only.
    Transmitter,
    /// bind_receiver: receive receipts and MOs only; submits are answered `NotSent`.
    Receiver,
}

impl BindMode {
    /// Whether this bind may submit.
    pub fn can_submit(self) -> bool {
        !matches!(self, Self::Receiver)
    }
}

/// TLS towards the SMSC (tokio-rustls, ring provider).
#[derive(Clone)]
pub struct TlsSettings {
    /// PEM of the CA certificate(s) the SMSC's certificate must chain to. Carriers' SMPP
    /// endpoints are usually signed by a private CA, so there is no system-root fallback.
    pub ca_pem: Vec<u8>,
    /// Optional client certificate chain (PEM, leaf first) for mutual TLS.
    pub client_cert_pem: Option<Vec<u8>>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); required with
    /// `client_cert_pem`. Never printed.
    pub client_key_pem: Option<Vec<u8>>,
    /// The name sent as SNI and checked against the certificate; `None` uses the host.
    pub server_name: Option<String>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem_len", &self.ca_pem.len())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("client_key", &self.client_key_pem.as_ref().map(|_| "***"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Why a [`SessionConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionConfigError {
    /// The host is empty.
    #[error("host must not be empty")]
    EmptyHost,
    /// A timeout or interval is zero.
    #[error("{0} must be above zero")]
    ZeroDuration(&'static str),
    /// A TLS setting is unusable.
    #[error("tls: {0}")]
    Tls(String),
}

/// One SMPP bind to a carrier or SMSC. Build with [`SessionConfig::new`] and struct update.
#[derive(Clone)]
pub struct SessionConfig {
    /// Host name or IP address of the SMSC.
    pub host: String,
    /// TCP port of the SMSC.
    pub port: u16,
    /// TLS settings; `None` for plain TCP.
    pub tls: Option<TlsSettings>,
    /// `system_id` to bind with.
    pub system_id: COctetString<16>,
    /// Password to bind with. Never printed.
    pub password: COctetString<9>,
    /// `system_type` to bind with (often empty).
    pub system_type: COctetString<13>,
    /// Which bind to ask for.
    pub bind_mode: BindMode,
    /// `addr_ton` of the bind.
    pub addr_ton: u8,
    /// `addr_npi` of the bind.
    pub addr_npi: u8,
    /// `address_range` of the bind (receivers).
    pub address_range: COctetString<41>,
    /// Most requests outstanding at once on this bind (submits and enquire_link).
    pub window: NonZeroU32,
    /// How long a request waits for its response.
    pub response_timeout: Duration,
    /// Idle time (nothing received) after which an enquire_link is sent.
    pub enquire_link_interval: Duration,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Delay between reconnect attempts: exponential, capped, jittered (default 500 ms to 60 s).
    pub reconnect: ExponentialBackoff,
    /// Largest `command_length` accepted from the SMSC; a longer frame closes the connection.
    pub max_command_length: u32,
    /// How long a drain waits for outstanding responses before unbinding anyway.
    pub drain_grace: Duration,
    /// When true the session connects and waits for the SMSC's outbind (SMPP 3.4 §2.2.1)
    /// before binding as a receiver, instead of binding at once.
    pub wait_for_outbind: bool,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("system_type", &self.system_type)
            .field("bind_mode", &self.bind_mode)
            .field("window", &self.window)
            .field("response_timeout", &self.response_timeout)
            .field("enquire_link_interval", &self.enquire_link_interval)
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// A transceiver bind to `host:port` with empty credentials and the default timings.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: None,
            system_id: COctetString::empty(),
            password: COctetString::empty(),
            system_type: COctetString::empty(),
            bind_mode: BindMode::Transceiver,
            addr_ton: 0,
            addr_npi: 0,
            address_range: COctetString::empty(),
            window: NonZeroU32::new(DEFAULT_WINDOW).unwrap_or(NonZeroU32::MIN),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            enquire_link_interval: DEFAULT_ENQUIRE_LINK_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect: ExponentialBackoff::default(),
            max_command_length: DEFAULT_MAX_COMMAND_LENGTH,
            drain_grace: DEFAULT_DRAIN_GRACE,
            wait_for_outbind: false,
        }
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        if self.host.is_empty() {
            return Err(SessionConfigError::EmptyHost);
        }
        for (name, d) in [
            ("response_timeout", self.response_timeout),
            ("enquire_link_interval", self.enquire_link_interval),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(SessionConfigError::ZeroDuration(name));
            }
        }
        if let Some(tls) = &self.tls {
            tls_connector(tls)?;
        }
        Ok(())
    }

    /// The body of the bind this config asks for.
    pub(crate) fn bind_body(&self) -> Bind {
        Bind {
            system_id: self.system_id.clone(),
            password: self.password.clone(),
            system_type: self.system_type.clone(),
            interface_version: INTERFACE_VERSION_34,
            addr_ton: self.addr_ton,
            addr_npi: self.addr_npi,
            address_range: self.address_range.clone(),
        }
    }

    /// The window as a count.
    pub(crate) fn window_len(&self) -> usize {
        usize::try_from(self.window.get()).unwrap_or(usize::MAX)
    }

    /// The SNI / verification name.
    pub(crate) fn server_name(&self) -> Result<ServerName<'static>, SessionConfigError> {
        let name = self
            .tls
            .as_ref()
            .and_then(|t| t.server_name.clone())
            .unwrap_or_else(|| self.host.clone());
        ServerName::try_from(name).map_err(|e| SessionConfigError::Tls(e.to_string()))
    }
}

/// Builds the rustls client (ring provider) from PEM.
pub(crate) fn tls_connector(tls: &TlsSettings) -> Result<TlsConnector, SessionConfigError> {
    let err = |what: &str, e: &dyn fmt::Display| SessionConfigError::Tls(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(tls.ca_pem.as_slice())) {
        let cert = cert.map_err(|e| err("CA PEM", &e))?;
        roots.add(cert).map_err(|e| err("CA certificate", &e))?;
    }
    if roots.is_empty() {
        return Err(SessionConfigError::Tls(
            "no certificate in the CA PEM".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions", &e))?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert_pem), Some(key_pem)) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_slice()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| err("client certificate PEM", &e))?;
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_slice()))
                    .map_err(|e| err("client key PEM", &e))?
                    .ok_or_else(|| SessionConfigError::Tls("no private key in the PEM".into()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| err("client certificate", &e))?
        }
        _ => {
            return Err(SessionConfigError::Tls(
                "client certificate and key go together".into(),
            ));
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}
