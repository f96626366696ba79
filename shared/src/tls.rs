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

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use base64::Engine;

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

/// Whether a root certificate (DER) is one of Amazon Trust Services' (`Amazon Root CA
/// 1`–`4`, and `Starfield Services Root Certificate Authority - G2`, which cross-signs
/// them): its subject names it, and for a root the issuer is the subject.
fn is_amazon_root(der: &[u8]) -> bool {
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    has(b"Amazon Root CA ") || has(b"Starfield Services Root Certificate Authority - G2")
}

/// Amazon Trust Services' roots as PEM, the form the SDK's trust store takes.
fn amazon_roots_pem() -> Vec<u8> {
    let mut pem = Vec::new();
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter(|c| is_amazon_root(c))
    {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// The AWS SDK's HTTP client: rustls on ring, trusting Amazon's roots only.
pub fn aws_http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(amazon_roots_pem());
    #[allow(clippy::expect_used)] // a trust store and no extra names: always valid
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a valid TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_trusts_the_five_amazon_trust_services_roots() {
        let pem = String::from_utf8(amazon_roots_pem()).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 5, "{pem}");
    }

    #[test]
    fn webhooks_trust_the_mozilla_roots_over_http_1_1() {
        let config = webhook_client_config();
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(reqwest_builder().build().is_ok());
    }
}
