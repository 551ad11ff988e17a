//! TLS to the school's MQTT broker.
//!
//! A device trusts exactly one certificate authority for its broker: the one
//! its provisioning file pins (the school's Guardian CA, or the CA of the
//! school's own broker). The system's store is never consulted, there is no
//! "accept any certificate" switch, and a device with a pinned CA never
//! speaks plain MQTT: a wrong name, an expired certificate or a plain-text
//! broker all end the attempt with an error a technician can act on.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// A pinned CA that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerCaError {
    #[error("the broker CA is not a PEM certificate: {0}")]
    NotPem(String),

    #[error("the broker CA holds no certificate")]
    Empty,

    #[error("the broker CA certificate is unusable as a trust anchor: {0}")]
    Unusable(String),

    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Checks that `pem` holds at least one CA certificate and returns them.
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, BrokerCaError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| BrokerCaError::NotPem(error.to_string()))?;
    if certificates.is_empty() {
        return Err(BrokerCaError::Empty);
    }
    Ok(certificates)
}

/// A TLS client setup that trusts only the CA certificates in `ca_pem`.
pub fn pinned_client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, BrokerCaError> {
    let mut roots = RootCertStore::empty();
    for certificate in parse_ca(ca_pem)? {
        roots
            .add(certificate)
            .map_err(|error| BrokerCaError::Unusable(error.to_string()))?;
    }

    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| BrokerCaError::Setup(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The cryptography behind every TLS connection Guardian makes or accepts:
/// *ring*, chosen explicitly so that no process-wide default is needed.
///
/// rustls now steers towards aws-lc-rs, whose key exchange includes a
/// post-quantum hybrid; *ring* has none. We stay with *ring* because it
/// cross-compiles for every Raspberry Pi target with a C compiler alone, where
/// aws-lc-rs needs CMake and per-target toolchains. The cost: traffic recorded
/// today is not protected against a future quantum computer.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Says in words why a TLS connection to `host` failed, when the cause is
/// one a technician fixes (a certificate's names or dates, the wrong CA, a
/// plain-text port); `None` when the error is no TLS failure (the broker
/// is down, the network is cut).
pub fn explain_failure(host: &str, error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let tls = find_rustls_error(error)?;
    let reason = match tls {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the broker's certificate does not name {host}; issue one that includes \
                 {host} (guardian-hub tls issue --name {host} …)"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired; issue a new one (guardian-hub tls issue)"
                    .to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet; check this device's clock".to_owned()
            }
            CertificateError::UnknownIssuer => {
                "the broker's certificate is not signed by the CA in this device's \
                 provisioning file; re-provision the device or fix the broker's certificate"
                    .to_owned()
            }
            other => format!("the broker's certificate was refused: {other:?}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the broker did not answer in TLS; is this its plain MQTT port?".to_owned()
        }
        other => format!("TLS failed: {other}"),
    };
    Some(reason)
}

/// The rustls error somewhere in a chain of errors, also where an
/// `io::Error` wraps it (as tokio-rustls does).
fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls);
            }
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_must_be_a_pem_certificate() {
        assert!(matches!(parse_ca(""), Err(BrokerCaError::Empty)));
        assert!(matches!(
            parse_ca("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(BrokerCaError::NotPem(_))
        ));
    }

    #[test]
    fn tls_failures_are_explained_through_io_errors() {
        let wrong_name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, wrong_name);
        let text = explain_failure("192.0.2.10", &wrapped).unwrap();
        assert!(text.contains("does not name 192.0.2.10"), "{text}");

        let expired = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        );
        assert!(explain_failure("hub.local", &expired)
            .unwrap()
            .contains("expired"));

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(explain_failure("hub.local", &refused), None);
    }
}
