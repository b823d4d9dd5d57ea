//! TLS for the simulator: a rustls server config (ring provider) from PEM.

use std::io::BufReader;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::sim::config::TlsConfig;
use crate::sim::error::SimError;

/// Builds the acceptor, reading the PEM files if the config names files.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, SimError> {
    let (cert_pem, key_pem) = match config {
        TlsConfig::Pem { cert, key } => (cert.clone(), key.clone()),
        TlsConfig::PemFiles { cert, key } => {
            let read = |path: &std::path::PathBuf| {
                std::fs::read(path).map_err(|source| SimError::ReadPem {
                    path: path.clone(),
                    source,
                })
            };
            (read(cert)?, read(key)?)
        }
    };
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_slice()))
            .collect::<Result<_, _>>()
            .map_err(|e| SimError::Tls(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(SimError::Tls(
            "no certificate in the certificate PEM".into(),
        ));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_slice()))
            .map_err(|e| SimError::Tls(format!("key PEM: {e}")))?
            .ok_or_else(|| SimError::Tls("no private key in the key PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
