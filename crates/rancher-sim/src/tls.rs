//! Throwaway certificate authority and server certificates (rcgen), and the rustls server config.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimError;

/// A CA plus one server certificate signed by it.
pub(crate) struct TlsMaterial {
    /// PEM of the CA certificate (what clients trust).
    pub ca_pem: String,
    /// The rustls config serving the leaf certificate.
    pub server_config: Arc<ServerConfig>,
}

fn tls_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

/// Options for the leaf certificate (the `testing` module uses the odd ones).
pub(crate) struct LeafOptions {
    pub names: Vec<String>,
    pub expired: bool,
    /// One self-signed certificate with `CA:TRUE` serving as the server certificate, as `openssl req -x509`
    /// makes; clients are given that certificate itself.
    pub self_signed_ca: bool,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            names: vec!["127.0.0.1".into(), "localhost".into()],
            expired: false,
            self_signed_ca: false,
        }
    }
}

/// Makes a fresh CA and a leaf certificate for `opts.names`.
pub(crate) fn make_tls(opts: LeafOptions) -> Result<TlsMaterial, SimError> {
    if opts.self_signed_ca {
        return openssl_style(&opts);
    }
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "rancher-sim throwaway CA");
    dn.push(DnType::OrganizationName, "rancher-sim");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(tls_err)?;
    let mut leaf_params = CertificateParams::new(opts.names.clone()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, opts.names.first().cloned().unwrap_or_default());
    leaf_params.distinguished_name = dn;
    if opts.expired {
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(tls_err)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        server_config: server_config(chain, &leaf_key)?,
    })
}

/// The rustls server configuration serving `chain` with `key` (HTTP/1.1).
fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Result<Arc<ServerConfig>, SimError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What `openssl req -x509 -newkey ... -subj /CN=<name> -addext subjectAltName=...` makes: a self-signed certificate
/// whose basic constraints say `CA:TRUE`, served as the server's own certificate.
fn openssl_style(opts: &LeafOptions) -> Result<TlsMaterial, SimError> {
    let key = KeyPair::generate().map_err(tls_err)?;
    let mut params = CertificateParams::new(opts.names.clone()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, opts.names.first().cloned().unwrap_or_default());
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if opts.expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).map_err(tls_err)?;
    Ok(TlsMaterial {
        ca_pem: cert.pem(),
        server_config: server_config(vec![cert.der().clone()], &key)?,
    })
}
