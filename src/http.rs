//! The one way syncgate builds an HTTP client: reqwest 0.13 on rustls with the `ring`
//! crypto provider.
//!
//! reqwest is built without a crypto provider of its own (the pact crates choose the same
//! feature), so a provider must be installed before the first client is built, or building
//! it panics. [`client_builder`] installs `ring` once per process — the provider
//! tokio-rustls (the mock's TLS), tonic and rcgen already use — so the binary carries one
//! TLS stack. Every client in the crate, its tests and benches comes from here; clippy's
//! `disallowed-methods` (clippy.toml) refuses `reqwest::Client::new` and
//! `reqwest::Client::builder` elsewhere.

use std::sync::Once;
use std::time::Duration;

/// How long one request may take before the client gives up: long enough for a Bulk
/// upload of a large file, short enough that a hung connection ends (a run's own deadline
/// usually ends it first).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Installs rustls' `ring` provider as the process default, once. Harmless when another
/// part of the process (a pact crate) installed `ring` already.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is installed already (the pact crates install `ring` too):
        // nothing to do.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder with the crypto provider in place; callers add timeouts and roots.
#[allow(clippy::disallowed_methods)] // the one place that may call it
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// A client with syncgate's defaults (the platform's trusted roots, [`REQUEST_TIMEOUT`]).
pub fn client() -> reqwest::Client {
    client_builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client with the platform's roots builds")
}

/// A client that trusts the CA certificate(s) in `pem` besides the platform's roots (a mock
/// org's self-signed CA, a corporate proxy's). Errors name what was wrong with the PEM.
pub fn client_trusting(pem: &[u8]) -> Result<reqwest::Client, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("unreadable CA certificate: {e}"))?;
    if certs.is_empty() {
        return Err("the CA file holds no PEM certificate".into());
    }
    client_builder()
        .timeout(REQUEST_TIMEOUT)
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| {
            format!(
                "cannot build the HTTPS client: {}",
                crate::store::cause_chain(&e)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_builds_with_the_provider_installed_and_a_garbage_ca_is_refused() {
        let _ = client();
        assert!(tokio_rustls::rustls::crypto::CryptoProvider::get_default().is_some());
        let err = client_trusting(b"not a certificate").unwrap_err();
        assert!(err.contains("CA"), "{err}");
    }
}
