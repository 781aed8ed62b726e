//! Deliberately broken servers for diagnosis and hostile-answer tests of other crates: a certificate for
//! another host name, an expired certificate, a self-signed certificate, plain HTTP, an HTML login page, and a
//! scripted server for any other hostile answer (truncated JSON, an endless body, endless pages).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::tls::{make_tls, LeafOptions};
use crate::SimError;

/// A running broken server. Dropping it stops the server.
#[derive(Debug)]
pub struct BrokenServer {
    /// The loopback port.
    pub port: u16,
    /// PEM of the CA that signed its certificate (empty for plain HTTP).
    pub ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl BrokenServer {
    /// `127.0.0.1:PORT`.
    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for BrokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\" action=\"/login\"><input name=\"username\"><input name=\"password\" type=\"password\"></form></body></html>";

fn http_response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) {
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        // A TLS ClientHello (0x16) on the plain server: answer at once, like any HTTP server would.
        if seen.first() == Some(&0x16) {
            break;
        }
        if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 65536 {
            break;
        }
    }
}

async fn tls_server(
    opts: LeafOptions,
    body: &'static str,
    content_type: &'static str,
) -> Result<BrokenServer, SimError> {
    let tls = make_tls(opts)?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(SimError::Bind)?;
    let port = listener.local_addr().map_err(SimError::Bind)?.port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server_config));
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut s) = acceptor.accept(tcp).await {
                    read_head(&mut s).await;
                    let _ = s.write_all(&http_response("200 OK", content_type, body)).await;
                    let _ = s.shutdown().await;
                }
            });
        }
    });
    Ok(BrokenServer {
        port,
        ca_pem: tls.ca_pem,
        task,
    })
}

/// A TLS server whose certificate names `other.example.invalid` only (hostname mismatch).
pub async fn wrong_host_server() -> Result<BrokenServer, SimError> {
    tls_server(
        LeafOptions {
            names: vec!["other.example.invalid".into()],
            ..LeafOptions::default()
        },
        "{}",
        "application/json",
    )
    .await
}

/// A TLS server whose certificate expired in 2021.
pub async fn expired_cert_server() -> Result<BrokenServer, SimError> {
    tls_server(
        LeafOptions {
            expired: true,
            ..LeafOptions::default()
        },
        "{}",
        "application/json",
    )
    .await
}

/// A TLS server whose certificate is what `openssl req -x509` makes: self-signed with `CA:TRUE`, for `names`
/// (expired when `expired`). `ca_pem` holds that certificate.
pub async fn openssl_style_server(names: &[&str], expired: bool) -> Result<BrokenServer, SimError> {
    let opts = LeafOptions {
        names: names.iter().map(|n| n.to_string()).collect(),
        expired,
        self_signed_ca: true,
    };
    tls_server(opts, "{}", "application/json").await
}

/// A TLS server (valid certificate) that answers every request with an HTML login page, like an
/// authenticating proxy in front of Rancher.
pub async fn html_login_server() -> Result<BrokenServer, SimError> {
    tls_server(LeafOptions::default(), LOGIN_PAGE, "text/html; charset=utf-8").await
}

/// A plain-HTTP (no TLS) server answering `{"type":"error"...}`-free JSON.
pub async fn plain_http_server() -> Result<BrokenServer, SimError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(SimError::Bind)?;
    let port = listener.local_addr().map_err(SimError::Bind)?.port();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut tcp).await;
                let _ = tcp.write_all(&http_response("200 OK", "text/plain", "pong")).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    Ok(BrokenServer {
        port,
        ca_pem: String::new(),
        task,
    })
}

/// A TLS server whose certificate is self-signed for `127.0.0.1` (no CA behind it): untrusted unless the client
/// is told to trust exactly this certificate. `ca_pem` holds the certificate itself.
pub async fn self_signed_server() -> Result<BrokenServer, SimError> {
    let key = rcgen::KeyPair::generate().map_err(|e| SimError::Tls(e.to_string()))?;
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(|e| SimError::Tls(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| SimError::Tls(e.to_string()))?;
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    serve_tls(
        Arc::new(config),
        cert.pem(),
        Arc::new(|_: &SeenRequest| Answer::json(200, "{}")),
    )
    .await
}

/// A request as a [`scripted_server`] saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// The raw request head (request line and headers).
    pub head: String,
}

/// What a [`scripted_server`] answers to one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A complete answer.
    Full {
        /// Status code.
        status: u16,
        /// Content type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// A `200` whose body is `len` bytes of JSON-looking filler, written in chunks and never held whole by the
    /// server. With `declare_length` the length is announced up front (`content-length`); without it the body
    /// simply runs until the connection closes.
    Huge {
        /// Body length in bytes.
        len: u64,
        /// Send `content-length`.
        declare_length: bool,
    },
    /// A `200` with a `content-length` longer than the body actually sent, then a close: truncated JSON.
    Truncated {
        /// The JSON text, of which only the first half is sent.
        body: String,
    },
}

impl Answer {
    /// A complete JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Answer {
        Answer::Full {
            status,
            content_type: "application/json".into(),
            body: body.into().into_bytes(),
        }
    }
}

/// A scripted answer function.
pub type Script = Arc<dyn Fn(&SeenRequest) -> Answer + Send + Sync>;

/// A TLS server with a valid certificate for `127.0.0.1` (its CA in `ca_pem`) that answers each request with
/// what `script` returns: hostile answers for client tests (an HTML page, truncated JSON, an endless body,
/// endless pages, links elsewhere). One request per connection.
pub async fn scripted_server(
    script: impl Fn(&SeenRequest) -> Answer + Send + Sync + 'static,
) -> Result<BrokenServer, SimError> {
    let tls = make_tls(LeafOptions::default())?;
    serve_tls(tls.server_config, tls.ca_pem, Arc::new(script)).await
}

async fn read_request<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<SeenRequest> {
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    let end = loop {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if seen.len() > 65536 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    // Drain a request body, if any, so the client sees its request fully sent.
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut have = seen.len() - end;
    while have < length {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    Some(SeenRequest { method, target, head })
}

async fn answer<S: AsyncWriteExt + Unpin>(s: &mut S, a: Answer) {
    match a {
        Answer::Full {
            status,
            content_type,
            body,
        } => {
            let head = format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
        }
        Answer::Huge { len, declare_length } => {
            let length = if declare_length {
                format!("content-length: {len}\r\n")
            } else {
                String::new()
            };
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = Vec::with_capacity(64 * 1024);
            chunk.push(b'[');
            while chunk.len() < 64 * 1024 {
                chunk.extend_from_slice(b"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",");
            }
            let mut sent = 0u64;
            while sent < len {
                let n = chunk.len().min((len - sent) as usize);
                if s.write_all(&chunk[..n]).await.is_err() {
                    return; // the client stopped reading: what it should do
                }
                sent += n as u64;
            }
        }
        Answer::Truncated { body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body.as_bytes()[..body.len() / 2]).await;
        }
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

async fn serve_tls(
    config: Arc<rustls::ServerConfig>,
    ca_pem: String,
    script: Script,
) -> Result<BrokenServer, SimError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(SimError::Bind)?;
    let port = listener.local_addr().map_err(SimError::Bind)?.port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, script) = (acceptor.clone(), script.clone());
            tokio::spawn(async move {
                if let Ok(mut s) = acceptor.accept(tcp).await {
                    if let Some(req) = read_request(&mut s).await {
                        let a = script(&req);
                        answer(&mut s, a).await;
                    }
                }
            });
        }
    });
    Ok(BrokenServer { port, ca_pem, task })
}
