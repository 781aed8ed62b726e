//! Errors: why the service did not start ([`Error`]), and how a failed API call is answered ([`ApiError`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (plain HTTP off loopback, a bad webhook URL, an unreadable secret, ...).
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free port (`127.0.0.1:0` picks one)")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The service's own Rancher connection failed.
    #[error("the service account's Rancher connection failed: {0}; check the domain, token and CA of the service's connection")]
    Rancher(#[source] rancher_workflows::Error),
    /// A startup job (reconcile, expiry) failed.
    #[error("startup: {0}")]
    Startup(#[source] rancher_workflows::Error),
}

/// An API error: an HTTP status and one line naming the cause, answered as `{"error": "..."}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// Seconds to wait before trying again, answered as `Retry-After` (a 429 of the throttle).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 429 with `Retry-After: secs` (at least one second).
    pub fn too_many(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            retry_after: Some(secs.max(1)),
        }
    }

    /// 500, for a failed internal task.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status.as_u16())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": self.message}))).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        r
    }
}

impl From<rancher_approval::Error> for ApiError {
    fn from(e: rancher_approval::Error) -> Self {
        use rancher_approval::Error as E;
        let status = match &e {
            E::NotFound { .. } | E::NotInstalled { .. } | E::GrantNotFound { .. } => StatusCode::NOT_FOUND,
            E::InvalidRequestId { .. }
            | E::ReasonRequired { .. }
            | E::InvalidPolicy { .. }
            | E::InvalidDuration { .. }
            | E::DurationRefused { .. } => StatusCode::BAD_REQUEST,
            E::NotEligible { .. } => StatusCode::FORBIDDEN,
            E::AlreadyInstalled { .. }
            | E::NotPending { .. }
            | E::Expired { .. }
            | E::AlreadyClaimed { .. }
            | E::NotApproved { .. }
            | E::StaleClaim { .. }
            | E::NotInDoubt { .. }
            | E::AuditBroken { .. }
            | E::GrantRevoked { .. }
            | E::NotRevocable { .. }
            | E::StaleRevocation { .. }
            | E::LeaseHeld { .. }
            | E::Conflict { .. }
            | E::ContentChanged { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            chain(&e)
        } else {
            e.to_string()
        };
        ApiError::new(status, message)
    }
}

impl From<rancher_workflows::Error> for ApiError {
    fn from(e: rancher_workflows::Error) -> Self {
        use rancher_workflows::Error as E;
        match e {
            E::Approval(a) => a.into(),
            E::UnknownWorkflow(_) | E::NotInstalled(_) | E::NotFound(_) => ApiError::not_found(e.to_string()),
            E::Input { .. } => ApiError::bad_request(e.to_string()),
            E::NotAllowed(_) => ApiError::forbidden(e.to_string()),
            // The request cannot be done as asked (a malformed or ambiguous name, a refused combination): the
            // input is at fault, not the state of a request, so 422 rather than 409.
            E::Refused(_) | E::TestFailed(_) | E::AlreadyHeld(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            // The service's own state (the audit log does not verify from its anchor), not the input.
            E::Halted(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            E::Api(ref api) => {
                let status = match api.status() {
                    Some(403) => StatusCode::FORBIDDEN,
                    Some(404) => StatusCode::NOT_FOUND,
                    Some(409) => StatusCode::CONFLICT,
                    Some(400 | 422) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::BAD_GATEWAY,
                };
                ApiError::new(status, format!("Rancher: {}", chain(&e)))
            }
            _ => ApiError::internal(chain(&e)),
        }
    }
}

/// The error and its sources on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
