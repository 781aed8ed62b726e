//! Why a connection test failed: the first real cause, what was observed, and what to do about it.

use std::fmt;

/// The cause a failed connection test is put down to. Each has its own remedy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// The CA bundle given could not be used (not PEM, no certificate).
    InvalidCaBundle,
    /// The host name does not resolve.
    DnsFailure,
    /// Nothing listens on that address and port.
    ConnectionRefused,
    /// No answer in time.
    TimedOut,
    /// The server's certificate is not signed by a trusted CA.
    UntrustedCertificate,
    /// The certificate is valid but for another host name.
    WrongHostname,
    /// The certificate has expired or is not yet valid.
    ExpiredCertificate,
    /// The server does not speak HTTPS on that port (plain HTTP, another protocol).
    NotHttps,
    /// The connection was closed or failed before an answer.
    ConnectionFailed,
    /// Something answered, but it is not a Rancher API (an HTML page, other JSON, a proxy).
    NotRancher,
    /// The server rejected the token (401); the likely causes are listed.
    TokenRejected,
    /// The token has expired.
    TokenExpired,
    /// The token no longer exists (deleted, or purged after it expired).
    TokenDeleted,
    /// The token is scoped to one cluster and cannot reach the management API.
    ClusterScopedToken,
    /// The token is valid, but its user may not list users.
    CannotListUsers,
    /// The server failed (5xx) or answered an unexpected error.
    ServerError,
}

impl Cause {
    /// A stable kebab-case name (for `-o json` and scripts).
    pub fn code(&self) -> &'static str {
        match self {
            Cause::InvalidCaBundle => "invalid-ca-bundle",
            Cause::DnsFailure => "dns-failure",
            Cause::ConnectionRefused => "connection-refused",
            Cause::TimedOut => "timed-out",
            Cause::UntrustedCertificate => "untrusted-certificate",
            Cause::WrongHostname => "wrong-hostname",
            Cause::ExpiredCertificate => "expired-certificate",
            Cause::NotHttps => "not-https",
            Cause::ConnectionFailed => "connection-failed",
            Cause::NotRancher => "not-rancher",
            Cause::TokenRejected => "token-rejected",
            Cause::TokenExpired => "token-expired",
            Cause::TokenDeleted => "token-deleted",
            Cause::ClusterScopedToken => "cluster-scoped-token",
            Cause::CannotListUsers => "cannot-list-users",
            Cause::ServerError => "server-error",
        }
    }
}

/// A failed connection test: the cause, what was seen, the remedy, and (for a rejected token) the likely reasons.
/// Never holds the token or its secret (only the access key and the masked form).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// What was observed, one sentence.
    pub summary: String,
    /// What to do about it.
    pub remedy: String,
    /// When the server does not say which, the possible reasons, most likely first, each with its fix.
    pub likely_causes: Vec<String>,
    /// The step that failed (`GET /ping`, `GET /v3/users?me=true`, ...).
    pub step: &'static str,
    /// The underlying error, one line, for the curious.
    pub detail: Option<String>,
}

impl Diagnosis {
    pub(crate) fn new(
        cause: Cause,
        step: &'static str,
        summary: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Diagnosis {
        Diagnosis {
            cause,
            summary: summary.into(),
            remedy: remedy.into(),
            likely_causes: Vec::new(),
            step,
            detail: None,
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl fmt::Display) -> Diagnosis {
        self.detail = Some(detail.to_string());
        self
    }

    /// A multi-line explanation: summary, remedy, likely causes, detail.
    pub fn explain(&self) -> String {
        let mut out = format!("{}\nFix: {}", self.summary, self.remedy);
        if !self.likely_causes.is_empty() {
            out.push_str("\nLikely causes, in order:");
            for (i, c) in self.likely_causes.iter().enumerate() {
                out.push_str(&format!("\n  {}. {c}", i + 1));
            }
        }
        if let Some(d) = &self.detail {
            out.push_str(&format!("\n(step {}: {d})", self.step));
        }
        out
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Fix: {}", self.summary, self.remedy)
    }
}

impl std::error::Error for Diagnosis {}
