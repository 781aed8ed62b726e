//! TLS for the client: the system's roots plus any extra CA certificates; never a way to skip verification.
//!
//! One allowance, as curl, kubectl and the Python clients make it: a server certificate that is byte-identical to a
//! certificate the user gave in the CA bundle is accepted even when it says `CA:TRUE` (what `openssl req -x509`
//! makes, and what many self-hosted Rancher installs serve). Its host name and validity are still checked.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{ConnectFailure, Error};

/// Parses a PEM bundle (one or more certificates). An empty bundle, or one with no certificate, is an error.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => {
                return Err(Error::Config(format!(
                    "the CA bundle is not valid PEM ({e}); give the file with the -----BEGIN CERTIFICATE----- blocks"
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Config(
            "the CA bundle holds no certificate; give the PEM file with the -----BEGIN CERTIFICATE----- blocks (Rancher serves it at /v3/settings/cacerts)"
                .into(),
        ));
    }
    Ok(certs)
}

/// Builds the rustls client configuration: system roots (when `system_roots`), plus `extra` CA certificates.
pub fn client_config(extra: &[CertificateDer<'static>], system_roots: bool) -> Result<rustls::ClientConfig, Error> {
    let mut roots = RootCertStore::empty();
    if system_roots {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
    }
    for cert in extra {
        roots.add(cert.clone()).map_err(|e| {
            Error::Config(format!(
                "a certificate of the CA bundle cannot be used as a trust anchor: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Config(
            "no trusted CA certificate: give the server's CA bundle".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?;
    let verifier = Arc::new(GivenCertificates {
        inner,
        given: extra.to_vec(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// WebPKI verification, plus the `openssl req -x509` allowance for certificates the user gave (see the module doc).
#[derive(Debug)]
struct GivenCertificates {
    inner: Arc<WebPkiServerVerifier>,
    given: Vec<CertificateDer<'static>>,
}

/// Did webpki refuse the certificate because it is a CA certificate presented as a server certificate?
pub(crate) fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o)) if o.to_string().contains("CaUsedAsEndEntity"))
}

impl ServerCertVerifier for GivenCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(e) if is_ca_used_as_end_entity(&e) && self.given.iter().any(|g| g.as_ref() == end_entity.as_ref()) => {
                // webpki checks the validity dates before the basic constraints (rustls-webpki verify_cert.rs
                // `check_issuer_independent_properties`), so an expired certificate never gets here; the name is
                // checked now.
                verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Names the cause of a certificate refusal that is not one of the common ones (untrusted, wrong name, expired).
pub(crate) fn certificate_failure(e: &rustls::Error) -> Option<ConnectFailure> {
    if is_ca_used_as_end_entity(e) {
        return Some(ConnectFailure::CaCertificateAsServer);
    }
    match e {
        rustls::Error::InvalidCertificate(c) => Some(ConnectFailure::BadCertificate(format!("{c:?}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_bundles_are_refused_with_a_remedy() {
        let e = parse_ca_bundle(b"").unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
        let e = parse_ca_bundle(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not valid PEM") || e.contains("trust anchor") || e.contains("no certificate"),
            "{e}"
        );
    }
}
