//! The one way syncgate builds an HTTP client: reqwest 0.13 on rustls with the `ring`
//! crypto provider.
//!
//! reqwest is built without a crypto provider of its own (the pact crates choose the same
//! feature). syncgate's clients carry `ring` in the TLS configuration they are given; the
//! process default is set to `ring` as well ([`install_crypto_provider`]), for the clients
//! the pact crates build with reqwest's own defaults — `ring` is the provider tokio-rustls
//! (the mock's TLS), tonic and rcgen already use, so the binary carries one TLS stack.
//! Every client in the crate, its tests and benches comes from here; clippy's
//! `disallowed-methods` (clippy.toml) refuses `reqwest::Client::new` and
//! `reqwest::Client::builder` elsewhere.
//!
//! The trusted roots are the Mozilla set compiled in (`webpki-roots`), plus a CA file where
//! one is given: the TLS configuration is built once per process and shared. (reqwest's own
//! default reads the system's CA store from disk each time a client is built — most of a
//! gate run's TLS cost though no run uses TLS — and fails to build any client on a machine
//! without one.)

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use tokio_rustls::rustls;

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

/// The TLS configuration every client uses: `roots` trusted, TLS 1.2 and 1.3, HTTP/2 and
/// HTTP/1.1 offered by ALPN.
fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The public web's roots (Mozilla's set, compiled in).
fn web_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A client builder with the crypto provider in place and the web's roots trusted; callers
/// add timeouts.
pub fn client_builder() -> reqwest::ClientBuilder {
    static SHARED: OnceLock<rustls::ClientConfig> = OnceLock::new();
    let config = SHARED.get_or_init(|| {
        tls_config(web_roots()).expect("ring supports the safe default TLS versions")
    });
    builder_with(config.clone())
}

#[allow(clippy::disallowed_methods)] // the one place that may call it
fn builder_with(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().tls_backend_preconfigured(tls)
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
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable CA certificate: {e}"))?;
    if certs.is_empty() {
        return Err("the CA file holds no PEM certificate".into());
    }
    let mut roots = web_roots();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    builder_with(tls_config(roots)?)
        .timeout(REQUEST_TIMEOUT)
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
