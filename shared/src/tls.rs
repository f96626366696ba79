//! What the functions' HTTPS clients trust, compiled into the binary.
//!
//! Both clients used to load the system's roots at every cold start
//! (rustls-native-certs reads the bundle and every file of /etc/ssl/certs, then decodes
//! each PEM): twice per start, most of the functions' init time over a bare Lambda
//! (`make bench-coldstart`). Instead:
//! - webhooks are sent trusting Mozilla's root program (webpki-roots: trust anchors as
//!   static data, nothing read or parsed at start), as browsers do;
//! - the AWS SDK trusts only Amazon Trust Services' roots, which sign the certificates
//!   of the AWS endpoints these functions call (DynamoDB, SQS, Secrets Manager):
//!   a certificate from any other CA is refused there, whoever issued it.
//!
//! Both use rustls on ring: smaller than aws-lc, and quicker to build.

use std::sync::Arc;

/// The crypto provider of both clients.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS configuration webhooks are sent with: Mozilla's roots, TLS 1.2 and 1.3,
/// HTTP/1.1 (what the sender speaks).
pub fn webhook_client_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    #[allow(clippy::expect_used)] // ring supports the default protocol versions
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A reqwest client builder with [`webhook_client_config`]: what every HTTP client of
/// the workspace starts from (reqwest is built without a default crypto provider).
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(webhook_client_config())
}

/// The names Amazon Trust Services' roots carry (`Amazon Root CA 1`–`4`, and
/// `Starfield Services Root Certificate Authority - G2`, which cross-signs them): a
/// root's subject names it, and for a root the issuer is the subject.
const AMAZON_ROOT_NAMES: [&[u8]; 2] = [
    b"Amazon Root CA ",
    b"Starfield Services Root Certificate Authority - G2",
];

/// Amazon Trust Services' roots, out of webpki-root-certs' bundle.
fn amazon_roots() -> rustls::RootCertStore {
    let finders = AMAZON_ROOT_NAMES.map(memchr::memmem::Finder::new);
    let mut roots = rustls::RootCertStore::empty();
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter(|der| finders.iter().any(|f| f.find(der).is_some()))
    {
        // Every certificate of the bundle parses (its own tests say so); one that did
        // not would only be one root fewer.
        let _ = roots.add(der.clone());
    }
    roots
}

/// The TLS configuration of the AWS SDK's client ([`crate::aws_http`]): Amazon Trust
/// Services' roots only, TLS 1.2 and 1.3, HTTP/1.1.
///
/// The roots are found by searching each of webpki-root-certs' DER certificates for
/// the names with `memchr`'s vectorised substring search: the naive window-by-window
/// comparison over some 150 certificates was 6 % of a cold start's CPU (`perf` over
/// the cold-start runs).
pub fn aws_client_config() -> rustls::ClientConfig {
    #[allow(clippy::expect_used)] // ring supports the default protocol versions
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(amazon_roots())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_trusts_the_five_amazon_trust_services_roots() {
        let roots = amazon_roots();
        let subjects: Vec<String> = roots
            .roots
            .iter()
            .map(|anchor| String::from_utf8_lossy(anchor.subject.as_ref()).into_owned())
            .collect();
        assert_eq!(subjects.len(), 5, "{subjects:?}");
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(subjects.iter().any(|s| s.contains(name)), "{name}");
        }
        let config = aws_client_config();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn webhooks_trust_the_mozilla_roots_over_http_1_1() {
        let config = webhook_client_config();
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(reqwest_builder().build().is_ok());
    }
}
