//! Purpose-built local servers for the diagnoses the simulator does not play, and small helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rancher_auth::{BearerToken, CaSource, Connection, InstanceDomain};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A connection with short test timeouts.
pub fn conn(domain: &str, token: &str, ca: Option<&str>) -> Connection {
    Connection::new(
        InstanceDomain::parse(domain).expect("domain"),
        BearerToken::parse(token).expect("token"),
    )
    .with_ca(ca.map(|p| CaSource::Pem(p.to_string())))
    .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
}

/// A stopped-on-drop local server.
pub struct Local {
    pub port: u16,
    pub ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Local {
    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One canned answer: status line, content type, body.
pub type Answer = (&'static str, &'static str, String);

/// An HTTPS server with a valid certificate for 127.0.0.1 (its CA in `ca_pem`) answering by request path.
pub async fn https_server(answer: fn(&str) -> Answer) -> Local {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rancher-auth test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let head = read_head(&mut s).await;
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, ct, body) = answer(&path);
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Local {
        port,
        ca_pem: ca_cert.pem(),
        task,
    }
}

/// Accepts connections and never answers (holds them open).
pub async fn silent_server() -> Local {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    Local {
        port,
        ca_pem: String::new(),
        task,
    }
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    listener.local_addr().unwrap().port()
    // dropped here: the port is closed
}

async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) -> String {
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 65536 {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// A plain-HTTP server that answers whatever arrives (even a TLS hello) with `400 Bad Request`, as nginx does.
pub async fn plain_http_server() -> Local {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let body =
                    "<html><body><h1>400 Bad Request</h1>The plain HTTP request was sent to HTTPS port</body></html>";
                let resp = format!("HTTP/1.1 400 Bad Request\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    Local {
        port,
        ca_pem: String::new(),
        task,
    }
}
