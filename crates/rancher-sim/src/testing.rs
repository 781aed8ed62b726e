//! Deliberately broken servers for diagnosis tests of other crates: a certificate for another host
//! name, an expired certificate, plain HTTP, and an HTML login page.

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
    format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
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

async fn tls_server(opts: LeafOptions, body: &'static str, content_type: &'static str) -> Result<BrokenServer, SimError> {
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
    Ok(BrokenServer { port, ca_pem: tls.ca_pem, task })
}

/// A TLS server whose certificate names `other.example.invalid` only (hostname mismatch).
pub async fn wrong_host_server() -> Result<BrokenServer, SimError> {
    tls_server(LeafOptions { names: vec!["other.example.invalid".into()], expired: false }, "{}", "application/json").await
}

/// A TLS server whose certificate expired in 2021.
pub async fn expired_cert_server() -> Result<BrokenServer, SimError> {
    tls_server(LeafOptions { expired: true, ..LeafOptions::default() }, "{}", "application/json").await
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
    Ok(BrokenServer { port, ca_pem: String::new(), task })
}
