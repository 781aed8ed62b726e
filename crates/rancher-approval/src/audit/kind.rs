//! The kinds of audit entries, named by the entries and by their typed details.

use serde::{Deserialize, Serialize};

/// What an audit entry records.
///
/// Stored as its name (`request_created`, ...). A name this build does not know (a log written by a newer build)
/// reads as [`AuditKind::Other`], keeping the name: the entry still loads, verifies and shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A request was opened.
    RequestCreated,
    /// A reviewer decided.
    Decided,
    /// A request was cancelled.
    Cancelled,
    /// A request expired.
    Expired,
    /// An executor claimed a request.
    ExecutionClaimed,
    /// An executor recorded the outcome.
    ExecutionFinished,
    /// An in-doubt execution was settled by hand.
    Reconciled,
    /// A workflow was installed.
    Installed,
    /// A workflow's policy changed.
    PolicyChanged,
    /// An approved request was refused at execution because it does not match its audit record.
    ExecutionRefused,
    /// An executor whose lease ran out (or whose process is gone) was replaced by another, with a new epoch.
    ExecutionTakenOver,
    /// A time-bound grant was revoked (or found already removed or changed on the server).
    GrantRevoked,
    /// A due grant could not be revoked (Rancher unreachable or refused); it is retried with backoff.
    GrantOverdue,
    /// Someone ended a time-bound grant before its due time.
    GrantEndedEarly,
    /// A write sent straight to Rancher (`rancherctl api --yes`), outside any workflow; recorded before it is sent.
    DirectWrite,
    /// A pending request's approvers were reminded, or its fallback approvers were called in (escalation).
    Reminded,
    /// The watcher saw an access object change in Rancher (a binding made or removed), matched to the request that
    /// made it or made outside the product (out of band).
    AccessObserved,
    /// A kind this build does not know, by its stored name (never one of the names above).
    Other(String),
}

impl AuditKind {
    /// Every kind this build writes.
    pub const ALL: [AuditKind; 17] = [
        Self::RequestCreated,
        Self::Decided,
        Self::Cancelled,
        Self::Expired,
        Self::ExecutionClaimed,
        Self::ExecutionFinished,
        Self::Reconciled,
        Self::Installed,
        Self::PolicyChanged,
        Self::ExecutionRefused,
        Self::ExecutionTakenOver,
        Self::GrantRevoked,
        Self::GrantOverdue,
        Self::GrantEndedEarly,
        Self::DirectWrite,
        Self::Reminded,
        Self::AccessObserved,
    ];

    /// The stored name (`request_created`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::RequestCreated => "request_created",
            Self::Decided => "decided",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::ExecutionClaimed => "execution_claimed",
            Self::ExecutionFinished => "execution_finished",
            Self::Reconciled => "reconciled",
            Self::Installed => "installed",
            Self::PolicyChanged => "policy_changed",
            Self::ExecutionRefused => "execution_refused",
            Self::ExecutionTakenOver => "execution_taken_over",
            Self::GrantRevoked => "grant_revoked",
            Self::GrantOverdue => "grant_overdue",
            Self::GrantEndedEarly => "grant_ended_early",
            Self::DirectWrite => "direct_write",
            Self::Reminded => "reminded",
            Self::AccessObserved => "access_observed",
            Self::Other(name) => name,
        }
    }

    /// Parses the name of a kind this build knows.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a stored name stands for: a known kind, or [`AuditKind::Other`] keeping the name.
    pub fn from_stored(s: &str) -> Self {
        Self::parse(s).unwrap_or_else(|| Self::Other(s.to_owned()))
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self::from_stored(&String::deserialize(d)?))
    }
}
