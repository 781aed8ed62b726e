//! One error type for every failure of a call, saying where it failed: never sent, could not connect, timed out,
//! unreadable answer, or refused by the server (with the server's own error body).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::Status;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a connection could not be made (decided from the transport's error chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on that port.
    Refused,
    /// The server's certificate is not signed by a trusted CA.
    UntrustedCertificate,
    /// The certificate is valid but for another host name.
    WrongHostname,
    /// The certificate has expired or is not yet valid.
    ExpiredCertificate,
    /// The server does not speak TLS (plain HTTP on an HTTPS port, or another protocol).
    NotTls,
    /// The server presents a CA certificate (`CA:TRUE`, as `openssl req -x509` makes) as its own certificate, and it
    /// is not a certificate the user gave.
    CaCertificateAsServer,
    /// Another certificate problem; the text names it.
    BadCertificate(String),
    /// Another TLS failure; the text says which.
    Tls(String),
    /// The connection was reset or closed before an answer.
    Closed,
    /// Anything else.
    Other,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Dns => f.write_str("the host name does not resolve"),
            ConnectFailure::Refused => f.write_str("the connection was refused"),
            ConnectFailure::UntrustedCertificate => f.write_str("the server certificate is not trusted"),
            ConnectFailure::WrongHostname => f.write_str("the server certificate is for another host name"),
            ConnectFailure::ExpiredCertificate => f.write_str("the server certificate has expired or is not yet valid"),
            ConnectFailure::NotTls => f.write_str("the server does not speak HTTPS"),
            ConnectFailure::CaCertificateAsServer => f.write_str(
                "the server certificate is a CA certificate (CA:TRUE, as `openssl req -x509` makes) that was not given as the CA",
            ),
            ConnectFailure::BadCertificate(s) => write!(f, "the server certificate was refused: {s}"),
            ConnectFailure::Tls(s) => write!(f, "TLS failed: {s}"),
            ConnectFailure::Closed => f.write_str("the connection was closed before an answer"),
            ConnectFailure::Other => f.write_str("the connection failed"),
        }
    }
}

/// The error body of a norman `/v3` (or legacy 1.x) answer: `{type: "error", status, code, message}`.
/// `status` is a number on most errors but a string on 401s, so it is read leniently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NormanError {
    /// Always `error`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// HTTP status (a string on 401s).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_i64"
    )]
    pub status: Option<i64>,
    /// Machine-readable code, e.g. `NotFound`, `PermissionDenied`, `MissingRequired` (absent on 401s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The field at fault, for validation errors.
    #[serde(rename = "fieldName", default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// Extra detail (1.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// What the server said when it refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerError {
    /// A Kubernetes `Status` (RK-API).
    Kubernetes(Box<Status>),
    /// A norman `/v3` error body.
    Norman(NormanError),
    /// A legacy 1.x `/v1` error body.
    Legacy(NormanError),
    /// An answer that is not a known error shape (an HTML page from a proxy, plain text, other JSON).
    Unparsed {
        /// Its content type.
        content_type: Option<String>,
        /// The first few hundred characters.
        snippet: String,
    },
}

impl ServerError {
    /// The machine-readable reason or code, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ServerError::Kubernetes(s) => s.reason.as_deref(),
            ServerError::Norman(e) | ServerError::Legacy(e) => e.code.as_deref(),
            ServerError::Unparsed { .. } => None,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> Option<&str> {
        match self {
            ServerError::Kubernetes(s) => s.message.as_deref(),
            ServerError::Norman(e) | ServerError::Legacy(e) => e.message.as_deref(),
            ServerError::Unparsed { snippet, .. } => Some(snippet.as_str()),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.reason(), self.message()) {
            (_, _) if matches!(self, ServerError::Unparsed { .. }) => {
                let ServerError::Unparsed { content_type, snippet } = self else {
                    unreachable!()
                };
                let ct = content_type.as_deref().unwrap_or("");
                if snippet.trim().is_empty() {
                    f.write_str("empty answer")
                } else if ct.starts_with("text/plain") {
                    // Plain words (steve's `not authorized`), already one bounded, escaped line.
                    f.write_str(&one_line(snippet, 120))
                } else {
                    write!(
                        f,
                        "unexpected {} answer: {}",
                        if ct.is_empty() { "untyped" } else { ct },
                        one_line(snippet, 120)
                    )
                }
            }
            // The server's words, kept to one bounded, printable line (a hostile server may send anything).
            (Some(r), Some(m)) if !m.is_empty() => write!(f, "{}: {}", one_line(r, 80), one_line(m, 300)),
            (Some(r), _) => f.write_str(&one_line(r, 80)),
            (None, Some(m)) => f.write_str(&one_line(m, 300)),
            (None, None) => f.write_str("no detail"),
        }
    }
}

/// Every failure of a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was not sent: it is invalid (bad parameter, missing body, ...).
    #[error("{operation}: invalid request: {message}")]
    InvalidRequest {
        /// Operation id.
        operation: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The operation id is not in the endpoint list.
    #[error("unknown operation `{id}`{}; `rancherctl api list` shows every id", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownOperation {
        /// The id asked for.
        id: String,
        /// The closest known id.
        suggestion: Option<&'static str>,
    },
    /// The client could not be built (bad CA bundle, bad base URL, ...).
    #[error("client configuration: {0}")]
    Config(String),
    /// No connection could be made.
    #[error("{operation}: could not connect to {host}: {failure}")]
    Connect {
        /// Operation id.
        operation: String,
        /// `host:port` tried.
        host: String,
        /// The cause, classified.
        failure: ConnectFailure,
        /// The transport's error.
        #[source]
        source: Option<BoxError>,
    },
    /// No answer in time.
    #[error("{operation}: timed out after {after:?}")]
    Timeout {
        /// Operation id.
        operation: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// The server answered with an error status.
    #[error("{operation}: {status} {server}{}", gate_hint(*status, server))]
    Api {
        /// Operation id.
        operation: String,
        /// HTTP status.
        status: u16,
        /// The parsed error body.
        server: ServerError,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The server answered 2xx but the body could not be read as the expected type.
    #[error("{operation}: unreadable {status} answer ({}): {detail}", content_type.as_deref().unwrap_or("no content type"))]
    Decode {
        /// Operation id.
        operation: String,
        /// HTTP status.
        status: u16,
        /// Content type of the answer.
        content_type: Option<String>,
        /// What did not fit, with a short snippet of the body.
        detail: String,
        /// The parser's error.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The answer was larger than the configured limit; reading stopped.
    #[error("{operation}: the answer is larger than the {limit}-byte limit")]
    TooLarge {
        /// Operation id.
        operation: String,
        /// The limit.
        limit: usize,
    },
    /// A list could not be followed safely.
    #[error("{operation}: {problem}")]
    Pagination {
        /// Operation id.
        operation: String,
        /// What went wrong.
        problem: String,
    },
    /// The transport failed after the connection was made (reset mid-answer, I/O).
    #[error("{operation}: the connection failed mid-request: {message}")]
    Transport {
        /// Operation id.
        operation: String,
        /// What happened.
        message: String,
        /// The transport's error.
        #[source]
        source: Option<BoxError>,
    },
}

fn is_empty_answer(server: &ServerError) -> bool {
    matches!(server, ServerError::Unparsed { snippet, .. } if snippet.trim().is_empty())
}

/// What an empty 403 means on Rancher, added to the error's line.
fn gate_hint(status: u16, server: &ServerError) -> &'static str {
    if status == 403 && is_empty_answer(server) {
        " (Rancher refuses kinds outside its RK-API allow-list this way to callers without access to the local cluster, and to invalid tokens)"
    } else {
        ""
    }
}

/// A boxed error from below (transport, TLS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// HTTP status of an [`Error::Api`] or [`Error::Decode`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error body, if it refused the request.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Api { server, .. } => Some(server),
            _ => None,
        }
    }

    /// The operation id the error belongs to.
    pub fn operation(&self) -> Option<&str> {
        match self {
            Error::InvalidRequest { operation, .. }
            | Error::Connect { operation, .. }
            | Error::Timeout { operation, .. }
            | Error::Api { operation, .. }
            | Error::Decode { operation, .. }
            | Error::TooLarge { operation, .. }
            | Error::Pagination { operation, .. }
            | Error::Transport { operation, .. } => Some(operation),
            Error::UnknownOperation { id, .. } => Some(id),
            Error::Config(_) => None,
        }
    }

    /// `Retry-After` the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// 404 (or a `NotFound` reason).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.server_error().and_then(ServerError::reason) == Some("NotFound")
    }

    /// 409 (`AlreadyExists` or `Conflict`).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// 409 with reason `AlreadyExists`.
    pub fn is_already_exists(&self) -> bool {
        self.is_conflict() && self.server_error().and_then(ServerError::reason) == Some("AlreadyExists")
    }

    /// 403.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// A 403 with an empty body: Rancher's answer for a management kind off its RK-API allow-list (role templates;
    /// users before 2.13) to a caller without access to the local cluster, or with an invalid token
    /// (rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster`).
    pub fn is_local_cluster_gate(&self) -> bool {
        matches!(self, Error::Api { status: 403, server, .. } if is_empty_answer(server))
    }

    /// 401.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// The failure happened before anything reached the server, or the server said it did not act
    /// (connection refused or not made, 429/503 with nothing applied). Used to decide that a write was not applied.
    pub fn never_reached_server(&self) -> bool {
        matches!(
            self,
            Error::InvalidRequest { .. } | Error::UnknownOperation { .. } | Error::Config(_) | Error::Connect { .. }
        )
    }
}

/// The first `max` characters of `s` on one line, with control characters (terminal escapes) escaped.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        if out.len() > max * 4 {
            break; // enough to cut below; never copy a huge answer
        }
    }
    if out.chars().count() > max {
        format!("{}...", out.chars().take(max).collect::<String>())
    } else {
        out
    }
}

/// Parses an error answer into one of the known shapes, or keeps a bounded snippet.
pub fn parse_server_error(surface: crate::Surface, content_type: Option<&str>, body: &[u8]) -> ServerError {
    let json_like = content_type.is_none_or(|c| c.contains("json")) || body.first() == Some(&b'{');
    if json_like {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if v.get("kind").and_then(|k| k.as_str()) == Some("Status") {
                if let Ok(s) = serde_json::from_value::<Status>(v.clone()) {
                    return ServerError::Kubernetes(Box::new(s));
                }
            }
            if v.get("type").and_then(|k| k.as_str()) == Some("error") {
                if let Ok(e) = serde_json::from_value::<NormanError>(v.clone()) {
                    return if surface == crate::Surface::V1 {
                        ServerError::Legacy(e)
                    } else {
                        ServerError::Norman(e)
                    };
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(600)]);
    ServerError::Unparsed {
        content_type: content_type.map(str::to_string),
        snippet: one_line(&text, 300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Surface;

    #[test]
    fn kubernetes_status_is_parsed() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"users.management.cattle.io \"u-x\" not found","reason":"NotFound","code":404,"details":{"name":"u-x","kind":"users"}}"#;
        let e = parse_server_error(Surface::Rk, Some("application/json"), body);
        assert_eq!(e.reason(), Some("NotFound"));
        assert!(e.to_string().starts_with("NotFound: users.management.cattle.io"));
    }

    #[test]
    fn norman_401_with_string_status() {
        let body = br#"{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}"#;
        let e = parse_server_error(Surface::V3, Some("application/json"), body);
        let ServerError::Norman(n) = &e else { panic!("{e:?}") };
        assert_eq!(n.status, Some(401));
        assert_eq!(n.code, None);
        assert_eq!(e.to_string(), "Unauthorized 401: must authenticate");
    }

    #[test]
    fn norman_error_with_code_and_field() {
        let body = br#"{"baseType":"error","type":"error","status":422,"code":"MissingRequired","message":"","fieldName":"globalRoleId"}"#;
        let e = parse_server_error(Surface::V3, None, body);
        let ServerError::Norman(n) = &e else { panic!() };
        assert_eq!(n.field_name.as_deref(), Some("globalRoleId"));
        assert_eq!(e.to_string(), "MissingRequired");
    }

    #[test]
    fn legacy_error_shape() {
        let body = br#"{"id":"x","type":"error","links":{},"actions":{},"status":401,"code":"Unauthorized","message":"Unauthorized","detail":null}"#;
        let e = parse_server_error(Surface::V1, Some("application/json"), body);
        assert!(matches!(e, ServerError::Legacy(_)));
        assert_eq!(e.reason(), Some("Unauthorized"));
    }

    #[test]
    fn html_from_a_proxy_keeps_a_bounded_snippet() {
        let mut body = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>".to_vec();
        body.extend(std::iter::repeat_n(b'x', 100_000));
        let e = parse_server_error(Surface::V3, Some("text/html; charset=utf-8"), &body);
        let ServerError::Unparsed { content_type, snippet } = &e else {
            panic!()
        };
        assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
        assert!(snippet.len() <= 310);
        assert!(e.to_string().contains("text/html"));
    }

    #[test]
    fn server_words_stay_one_bounded_printable_line() {
        // Found by the `error_shapes` fuzz target: a message with a carriage return broke the line.
        let body = br#"{"type":"error","status":401,"code":"Unauthorized","message":"Unautho\rized"}"#;
        assert_eq!(
            parse_server_error(Surface::V3, None, body).to_string(),
            "Unauthorized: Unautho ized"
        );
        let long = format!(
            r#"{{"kind":"Status","status":"Failure","reason":"Invalid","message":"{}\u001b[2J"}}"#,
            "x".repeat(5000)
        );
        let shown = parse_server_error(Surface::Rk, None, long.as_bytes()).to_string();
        assert!(shown.len() < 400 && !shown.contains('\u{1b}'), "{shown}");
        let escape = br#"{"type":"error","code":"X","message":"a\u001b[31mred"}"#;
        assert_eq!(
            parse_server_error(Surface::V3, None, escape).to_string(),
            "X: a\\u{1b}[31mred"
        );
    }

    #[test]
    fn steve_plain_text_401_and_gated_empty_403_read_as_one_clear_line() {
        // rancher/steve pkg/proxy/proxy.go: `http.Error(rw, "not authorized", 401)` without credentials.
        let e = parse_server_error(Surface::Rk, Some("text/plain; charset=utf-8"), b"not authorized\n");
        assert_eq!(e.to_string(), "not authorized");
        // rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster`: 403 with no body at all.
        let gated = Error::Api {
            operation: "rk.roletemplates.list".into(),
            status: 403,
            server: parse_server_error(Surface::Rk, None, b""),
            retry_after: None,
        };
        assert!(gated.is_forbidden() && gated.is_local_cluster_gate());
        assert_eq!(
            gated.to_string(),
            "rk.roletemplates.list: 403 empty answer (Rancher refuses kinds outside its RK-API allow-list this way to callers without access to the local cluster, and to invalid tokens)"
        );
        let plain = Error::Api {
            operation: "rk.users.list".into(),
            status: 403,
            server: ServerError::Kubernetes(Box::new(Status {
                reason: Some("Forbidden".into()),
                ..Default::default()
            })),
            retry_after: None,
        };
        assert!(!plain.is_local_cluster_gate());
    }

    #[test]
    fn helpers_classify() {
        let e = Error::Api {
            operation: "rk.globalrolebindings.create".into(),
            status: 409,
            server: ServerError::Kubernetes(Box::new(Status {
                reason: Some("AlreadyExists".into()),
                ..Default::default()
            })),
            retry_after: None,
        };
        assert!(e.is_conflict() && e.is_already_exists() && !e.is_not_found() && !e.is_forbidden());
        assert_eq!(e.to_string(), "rk.globalrolebindings.create: 409 AlreadyExists");
    }
}
