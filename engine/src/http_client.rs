//! The TLS set-up of every outbound HTTP client (webhooks, HTTP providers): rustls with the
//! ring provider, as the rest of the gateway, and the Mozilla root certificates
//! (`webpki-roots`), so a client behaves the same on every host whatever its system store.
//!
//! reqwest is built without a crypto provider of its own (`rustls-no-provider`): a second
//! provider compiled in would make any plain `rustls::ClientConfig::builder()` panic, and
//! would add a C toolchain dependency to the build. So a plain `reqwest::Client::new()`
//! panics unless a process-wide provider is installed: build clients with [`builder`], or
//! call [`install_ring_provider`] first (the binary does at start; tests may).

use std::sync::Arc;

/// A rustls client configuration for HTTPS to public endpoints.
///
/// # Errors
/// When the ring provider supports none of the safe protocol versions (it always does; the
/// error is kept rather than unwrapped).
pub fn rustls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Installs ring as the process-wide rustls provider, for clients built the plain way. A
/// provider already installed is kept.
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with [`rustls_config`] installed.
///
/// # Errors
/// See [`rustls_config`].
pub fn builder() -> Result<reqwest::ClientBuilder, rustls::Error> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(rustls_config()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_builds_with_the_ring_provider() {
        let client = builder().expect("tls config").build();
        assert!(client.is_ok(), "{client:?}");
    }
}
