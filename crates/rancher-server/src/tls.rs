//! The service's TLS: certificate chain and key from PEM files.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// A TLS acceptor for the files (HTTP/1.1 only).
pub(crate) fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| Error::Tls(format!("cannot read the certificate {}: {e}", files.cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Tls(format!("the certificate file {} is not PEM: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "no certificate in {}; pass the PEM certificate chain, leaf first",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        Error::Tls(format!(
            "no private key in {}: {e}; pass the PEM key of the certificate",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(format!("the certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
