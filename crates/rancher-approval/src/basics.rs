//! The small value types the other modules all name (a request's state, a vote, the server a request belongs
//! to), kept at the bottom of the crate so that errors, grants and evaluation can use them without depending on
//! requests. Re-exported from [`crate::request`].

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a request is in its lifecycle.
///
/// `pending -> approved -> executing -> succeeded | failed`; `pending -> denied | expired | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for decisions.
    Pending,
    /// Approved, waiting to be claimed for execution.
    Approved,
    /// Claimed by an executor; the outcome is not recorded yet.
    Executing,
    /// Executed successfully.
    Succeeded,
    /// Executed and failed.
    Failed,
    /// Denied by an eligible reviewer.
    Denied,
    /// Not decided in time.
    Expired,
    /// Withdrawn before a decision.
    Cancelled,
}

impl RequestState {
    /// Every state, in lifecycle order.
    pub const ALL: [RequestState; 8] = [
        Self::Pending,
        Self::Approved,
        Self::Executing,
        Self::Succeeded,
        Self::Failed,
        Self::Denied,
        Self::Expired,
        Self::Cancelled,
    ];

    /// The state's name as stored and shown (`pending`, `approved`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Executing => "executing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether nothing can change the request any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Denied | Self::Expired | Self::Cancelled
        )
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown request state `{s}`"))
    }
}

/// A reviewer's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// Yes.
    Approve,
    /// No: a single deny by an eligible reviewer denies the request.
    Deny,
}

impl std::fmt::Display for Vote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        })
    }
}

/// Which Rancher server a request belongs to: the domain it was filed through and the installation's own id
/// (Rancher's `install-uuid` setting), read at submit. Decisions and execution must come through the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// The instance domain (`rancher.example.com[:port]`).
    pub domain: String,
    /// The installation id, when the server reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_uuid: Option<String>,
}

impl ServerIdentity {
    /// A server known by its domain and, when it has one, its installation id.
    pub fn new(domain: impl Into<String>, install_uuid: Option<String>) -> Self {
        Self {
            domain: domain.into(),
            install_uuid: install_uuid.filter(|u| !u.trim().is_empty()),
        }
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.install_uuid {
            Some(u) => write!(f, "{} (installation {u})", self.domain),
            None => f.write_str(&self.domain),
        }
    }
}
