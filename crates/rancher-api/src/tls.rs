//! TLS for the client: the system's roots plus any extra CA certificates; never a way to skip verification.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::Error;

/// Parses a PEM bundle (one or more certificates). An empty bundle, or one with no certificate, is an error.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => return Err(Error::Config(format!("the CA bundle is not valid PEM ({e}); give the file with the -----BEGIN CERTIFICATE----- blocks"))),
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
        roots
            .add(cert.clone())
            .map_err(|e| Error::Config(format!("a certificate of the CA bundle cannot be used as a trust anchor: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Config("no trusted CA certificate: give the server's CA bundle".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_bundles_are_refused_with_a_remedy() {
        let e = parse_ca_bundle(b"").unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
        let e = parse_ca_bundle(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap_err().to_string();
        assert!(e.contains("not valid PEM") || e.contains("trust anchor") || e.contains("no certificate"), "{e}");
    }
}
