//! The SMPP 3.4 server customers bind to (docs/smpp-server.md): applications and resellers
//! submit over SMPP instead of HTTP, into the same send path as `POST /api/sms/send`, and get
//! receipts and MO back as deliver_sm from a durable per-account outbox.
//!
//! # Contract
//! - A submit_sm_resp with an id means the message is durable (the same writer job and flush
//!   as a 202). A store failure answers `ESME_RSYSERR`, a full queue `ESME_RMSGQFUL`; no id is
//!   ever given for a message that could be lost.
//! - Receipts and MO stay in the store until the customer's deliver_sm_resp `ESME_ROK`; after
//!   a rebind or a restart they are sent again; past `receipt_max_age` they are dropped.
//! - One customer's slow or absent receiver holds only its own entries: every session has a
//!   bounded writer queue and a write timeout; every account has its own pump.
//!
//! # Layout
//! - [`SmppServer`]: listeners (TCP, TLS), the connection limit, shutdown.
//! - `session`: one connection (bind state, dispatch, timers, writer).
//! - `bind`: authentication; `lockout`: bad-password lock-out; `password`: argon2id, CIDR.
//! - `submit`: submit_sm / data_sm / submit_multi into the send path; `incoming`: text, UDH,
//!   SAR; `smpp_time`: SMPP time fields.
//! - `query`: query_sm, cancel_sm.
//! - `registry`: bound sessions per account, TPS buckets.
//! - `outbox`: receipts and MO owed (feeder and per-account pumps); `deliver`: the deliver_sm.
//! - [`metrics`]: metric names.

mod bind;
mod deliver;
mod incoming;
mod lockout;
pub mod metrics;
mod outbox;
pub(crate) mod password;
mod query;
mod registry;
mod session;
mod settings;
mod smpp_time;
mod submit;

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub(crate) use registry::Registry;
pub use settings::SmppServerSettings;

use crate::ApiHandle;
use crate::state::AppState;
use lockout::Lockout;

/// A new SMPP password (8 characters, SMPP 3.4's longest).
pub fn generate_password() -> String {
    password::generate()
}

/// The argon2id hash the store keeps of an SMPP password.
///
/// # Errors
/// When hashing fails (it does not for a password of printable characters).
pub fn hash_password(plain: &str) -> Result<String, SmppServerError> {
    password::hash(plain).map_err(|e| SmppServerError::Tls(format!("hashing: {e}")))
}

/// What every connection shares.
pub(crate) struct ServerCtx {
    pub(crate) state: AppState,
    pub(crate) settings: Arc<SmppServerSettings>,
    pub(crate) lockout: Lockout,
    pub(crate) shutdown: CancellationToken,
}

/// Why the SMPP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum SmppServerError {
    /// A PEM file could not be read.
    #[error("reading {path}: {source}")]
    ReadPem {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A TLS acceptor (rustls, ring) from PEM certificate chain and key bytes.
///
/// # Errors
/// [`SmppServerError::Tls`] for PEM without a certificate or key, or a key that does not fit.
pub fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, SmppServerError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut BufReader::new(cert_pem))
        .collect::<Result<_, _>>()
        .map_err(|e| SmppServerError::Tls(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(SmppServerError::Tls("no certificate in the PEM".into()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut BufReader::new(key_pem))
        .map_err(|e| SmppServerError::Tls(format!("key PEM: {e}")))?
        .ok_or_else(|| SmppServerError::Tls("no private key in the PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SmppServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SmppServerError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// [`tls_acceptor`] from PEM files.
///
/// # Errors
/// [`SmppServerError::ReadPem`], or as [`tls_acceptor`].
pub fn tls_acceptor_from_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, SmppServerError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| SmppServerError::ReadPem {
            path: p.display().to_string(),
            source,
        })
    };
    tls_acceptor(&read(cert)?, &read(key)?)
}

/// The running SMPP server.
#[derive(Debug)]
pub struct SmppServer {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl SmppServer {
    /// Serves customers on `plain` (TCP) and `tls` (a listener with its acceptor), over the
    /// same state as the API `api` came from. Call inside a tokio runtime.
    pub fn start(
        api: &ApiHandle,
        settings: SmppServerSettings,
        plain: Option<TcpListener>,
        tls: Option<(TcpListener, TlsAcceptor)>,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let ctx = Arc::new(ServerCtx {
            state: api.state.clone(),
            lockout: Lockout::new(settings.lockout_after, settings.lockout_duration),
            settings: Arc::new(settings),
            shutdown: shutdown.clone(),
        });
        outbox::spawn_feeder(ctx.state.clone(), shutdown.clone());
        let limit = Arc::new(Semaphore::new(ctx.settings.max_connections));
        if let Some(listener) = plain {
            tasks.spawn(accept_loop(
                listener,
                None,
                Arc::clone(&ctx),
                Arc::clone(&limit),
                tasks.clone(),
            ));
        }
        if let Some((listener, acceptor)) = tls {
            tasks.spawn(accept_loop(
                listener,
                Some(acceptor),
                Arc::clone(&ctx),
                limit,
                tasks.clone(),
            ));
        }
        Self { shutdown, tasks }
    }

    /// Stops accepting, unbinds every session (each sends what it has queued) and waits for
    /// them, at most `grace`.
    pub async fn shutdown(self, grace: std::time::Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("SMPP server: sessions still open after the grace period");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ServerCtx>,
    limit: Arc<Semaphore>,
    tasks: TaskTracker,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, tls = tls.is_some(), "SMPP server listening");
    }
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "SMPP server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            warn!(%peer, "SMPP server: connection limit reached; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = Arc::clone(&ctx);
        let tls = tls.clone();
        tasks.spawn(async move {
            serve(stream, peer, tls, ctx).await;
            drop(permit);
        });
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ServerCtx>,
) {
    match tls {
        None => session::run(stream, peer, ctx).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(ctx.settings.bind_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => session::run(stream, peer, ctx).await,
                Ok(Err(e)) => info!(%peer, error = %e, "SMPP server: TLS handshake failed"),
                Err(_) => info!(%peer, "SMPP server: TLS handshake timed out"),
            }
        }
    }
}
