//! Every outbound HTTP client of the process is built from here, so that its TLS has a crypto
//! provider whichever part of the process builds it first (a server, a Lambda function, a test).

/// A client builder whose TLS goes through the AWS SDK's crypto library, aws-lc (a second one,
/// ring, would cost every function's zip). The provider is installed on first use; later
/// installs are no-ops.
pub fn http_client() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// Makes aws-lc the process's rustls provider, once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
