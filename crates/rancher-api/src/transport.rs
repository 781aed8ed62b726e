//! The transport seam: one buffered HTTP exchange. The client talks to any [`Transport`]; the default is
//! reqwest over rustls. Unit tests put a mock here; integration tests use the simulator over real HTTPS.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use url::Url;

use crate::error::{BoxError, ConnectFailure};

/// A boxed future, as the transport returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request, fully built. Header values holding secrets are marked sensitive.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Full URL (never carries a secret).
    pub url: Url,
    /// Headers (the `Authorization` value is marked sensitive, so `Debug` hides it).
    pub headers: HeaderMap,
    /// Body.
    pub body: Option<Bytes>,
}

/// One answer, read in full (up to the size limit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// How an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection (nothing was sent).
    #[error("could not connect: {failure}")]
    Connect {
        /// Classified cause.
        failure: ConnectFailure,
        /// Underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// No answer in time (the request may have reached the server).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The answer exceeded the size limit.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// The connection broke after the request was sent (the server may have acted on it).
    #[error("connection failed: {message}")]
    Io {
        /// What happened.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// An answer whose body is read as it arrives (a watch stream).
pub struct StreamingResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The body's chunks; `None` when it ended.
    pub body: Box<dyn BodyChunks>,
}

impl std::fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The chunks of a body read as it arrives.
pub trait BodyChunks: Send {
    /// The next chunk, `None` at the end.
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, TransportError>>;
}

/// Sends one request and reads the whole answer.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Performs the exchange.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;

    /// Sends one request and hands the body over as it arrives, for as long as `timeout` (a watch). Transports
    /// that cannot stream refuse.
    fn open(
        &self,
        _request: HttpRequest,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<StreamingResponse, TransportError>> {
        Box::pin(async {
            Err(TransportError::Io {
                message: "this transport cannot stream an answer (a watch needs the default transport)".into(),
                source: None,
            })
        })
    }
}

/// reqwest's body, chunk by chunk.
struct ReqwestChunks {
    resp: reqwest::Response,
    timeout: Duration,
}

impl BodyChunks for ReqwestChunks {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, TransportError>> {
        Box::pin(async move { self.resp.chunk().await.map_err(|e| classify(e, self.timeout)) })
    }
}

/// The default transport: reqwest with a rustls configuration built by the client.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_body: usize,
    timeout: Duration,
}

impl ReqwestTransport {
    /// Wraps a reqwest client; answers above `max_body` bytes are refused.
    pub fn new(client: reqwest::Client, max_body: usize, timeout: Duration) -> Self {
        ReqwestTransport {
            client,
            max_body,
            timeout,
        }
    }
}

impl Transport for ReqwestTransport {
    fn open(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<StreamingResponse, TransportError>> {
        Box::pin(async move {
            // The client's own timeout covers whole answers; a stream lasts as long as it was asked to.
            let resp = self
                .client
                .request(request.method, request.url)
                .headers(request.headers)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| classify(e, self.timeout))?;
            Ok(StreamingResponse {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
                body: Box::new(ReqwestChunks { resp, timeout }),
            })
        })
    }

    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let mut rb = self
                .client
                .request(request.method, request.url)
                .headers(request.headers);
            if let Some(body) = request.body {
                rb = rb.body(body);
            }
            let mut resp = rb.send().await.map_err(|e| classify(e, self.timeout))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            if let Some(len) = resp.content_length() {
                if len as usize > self.max_body {
                    return Err(TransportError::TooLarge(self.max_body));
                }
            }
            let mut buf = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if buf.len() + chunk.len() > self.max_body {
                            return Err(TransportError::TooLarge(self.max_body));
                        }
                        buf.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(classify(e, self.timeout)),
                }
            }
            Ok(HttpResponse {
                status,
                headers,
                body: Bytes::from(buf),
            })
        })
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout(timeout);
    }
    let failure = classify_chain(&e);
    if e.is_connect() || matches!(failure, Some(ConnectFailure::Dns | ConnectFailure::Refused)) || is_tls(&failure) {
        return TransportError::Connect {
            failure: failure.unwrap_or(ConnectFailure::Other),
            source: Some(Box::new(e)),
        };
    }
    TransportError::Io {
        message: chain_text(&e),
        source: Some(Box::new(e)),
    }
}

fn is_tls(f: &Option<ConnectFailure>) -> bool {
    matches!(
        f,
        Some(
            ConnectFailure::UntrustedCertificate
                | ConnectFailure::WrongHostname
                | ConnectFailure::ExpiredCertificate
                | ConnectFailure::NotTls
                | ConnectFailure::Tls(_)
        )
    )
}

/// The messages of an error and its sources, joined.
pub(crate) fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Finds a rustls error anywhere in a chain: through `source()` and through `io::Error`s that wrap another error
/// directly (hyper-util nests the TLS error two `io::Error`s deep, and `io::Error::source` skips the inner one).
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static), depth: usize) -> Option<&'a rustls::Error> {
    if depth > 16 {
        return None;
    }
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref() {
            if let Some(found) = find_tls(inner, depth + 1) {
                return Some(found);
            }
        }
    }
    e.source().and_then(|s| find_tls(s, depth + 1))
}

/// Classifies a connection failure from its error chain (rustls, io, resolver).
pub(crate) fn classify_chain(e: &(dyn std::error::Error + 'static)) -> Option<ConnectFailure> {
    if let Some(tls) = find_tls(e, 0) {
        return Some(classify_tls(tls));
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(ConnectFailure::Refused),
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe => return Some(ConnectFailure::Closed),
                _ => {}
            }
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
        {
            return Some(ConnectFailure::Dns);
        }
        cur = err.source();
    }
    let text = chain_text(e).to_ascii_lowercase();
    if text.contains("connection closed") || text.contains("incomplete message") || text.contains("connection reset") {
        return Some(ConnectFailure::Closed);
    }
    None
}

fn classify_tls(e: &rustls::Error) -> ConnectFailure {
    use rustls::{CertificateError, Error as E};
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer)
        | E::InvalidCertificate(CertificateError::BadSignature)
        | E::InvalidCertificate(CertificateError::UnhandledCriticalExtension) => ConnectFailure::UntrustedCertificate,
        E::InvalidCertificate(CertificateError::NotValidForName)
        | E::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => ConnectFailure::WrongHostname,
        E::InvalidCertificate(CertificateError::Expired)
        | E::InvalidCertificate(CertificateError::ExpiredContext { .. })
        | E::InvalidCertificate(CertificateError::NotValidYet)
        | E::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => ConnectFailure::ExpiredCertificate,
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            ConnectFailure::NotTls
        }
        other => crate::tls::certificate_failure(other).unwrap_or_else(|| ConnectFailure::Tls(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_nested_in_io_errors_are_found() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(inner);
        assert_eq!(classify_chain(&outer), Some(ConnectFailure::UntrustedCertificate));
        let name = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ));
        assert_eq!(classify_chain(&name), Some(ConnectFailure::WrongHostname));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_chain(&refused), Some(ConnectFailure::Refused));
    }
}
