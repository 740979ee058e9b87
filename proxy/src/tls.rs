//! TLS for upstream calls: rustls with the ring provider (no OpenSSL, no aws-lc build).

/// Makes ring rustls' process-wide provider. Idempotent; every reqwest client built after it
/// (the proxy's, and those of tests and benchmarks in this process) uses it.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
